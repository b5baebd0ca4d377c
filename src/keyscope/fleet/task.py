"""One target scanned where a task runs (a Dask worker, or this process): the whole
of ``keyscope.scan.scan`` over that target alone, with one process (a Dask worker's
process may not start a pool of its own), and what comes back: its findings, not a
report. A repository too large for one task comes back as its pieces instead
(``repo_pieces.py``), each then a task of its own. Imports no Dask."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from keyscope.model import Finding, ModelFinding, RawFinding, Skipped

if TYPE_CHECKING:
    from keyscope.fleet.pieces import Piece
    from keyscope.fleet.repo_pieces import RepoPiece
    from keyscope.scan import ScanOptions
    from keyscope.sources.interface import Source

    Task = str | Piece | RepoPiece


@dataclass(frozen=True)
class TargetResult:
    """What one target gave: its findings (merged within the target), model
    findings, skipped entries and counts; ``failed``: why the target could not be
    scanned at all (the scan of the others goes on)."""

    target: str
    findings: list[Finding] = field(default_factory=list)
    model_findings: list[ModelFinding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    history_cut: dict[str, list[str]] = field(default_factory=dict)
    engine: str = ""
    failed: str | None = None
    pieces: list[RepoPiece] = field(default_factory=list)  # not scanned: too large, cut

    def raw(self) -> list[RawFinding]:
        """The findings one location each, as the scan found them (for ``scan.merge``)."""
        return [
            RawFinding(f.rule_id, f.explanation, loc, f.credential)
            for f in self.findings
            for loc in f.locations
        ]


def scan_target(target: Task, options: ScanOptions, split_bytes: int = 0) -> TargetResult:
    """Scan ``target`` (or one piece of a large web archive or repository) in this
    process; an error ends this target only. A repository whose history is larger than
    ``split_bytes`` (0: never cut) comes back as its pieces, unscanned."""
    from keyscope.fleet.pieces import Piece, PieceSource
    from keyscope.redact import mask
    from keyscope.scan import scan

    root = target if isinstance(target, str) else target.target
    name = target if isinstance(target, str) else target.name
    try:
        extra: list[Source] = []
        if isinstance(target, Piece):
            extra = [PieceSource(options, target)]
        elif isinstance(target, str):
            extra, pieces = _whole_or_pieces(target, options, split_bytes)
            if pieces:
                return TargetResult(target, pieces=pieces)
        else:
            extra = [_piece_source(target, options)]
        result = scan([root], replace(options, jobs=1), extra=extra)
    except Exception as exc:  # auth, network, a corrupt target: skipped with the reason
        reason = mask(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return TargetResult(name, failed=f"could not be scanned: {reason[:300]}")
    stats = result.stats
    if isinstance(target, Piece) and target.index > 0:  # a file in pieces counts once
        stats.files = max(0, stats.files - 1)
    return TargetResult(
        name,
        findings=result.findings,
        model_findings=result.model_findings,
        skipped=result.skipped,
        files=stats.files,
        bytes=stats.bytes,
        rejected=stats.rejected,
        history_cut=result.history_cut,
        engine=result.engine,
    )


def _whole_or_pieces(
    target: str, options: ScanOptions, split_bytes: int
) -> tuple[list[Source], list[RepoPiece]]:
    """A repository target: its pieces when its history is large, else the source that
    scans the repository already found (a remote is not fetched twice)."""
    import os
    import uuid

    from keyscope.fleet import repo_pieces as rp
    from keyscope.scan import cache_dir
    from keyscope.sources.download import is_download
    from keyscope.sources.remote import is_remote

    if split_bytes <= 0 or not rp.splittable(options) or is_download(target):
        return [], []  # a file at an http(s) URL is downloaded by the scan, not cloned
    if not is_remote(target) and not os.path.isdir(target):
        return [], []
    token = uuid.uuid4().hex
    repo = rp.locate(target, options, cache_dir(options), token)
    if repo is None:
        return [], []
    n = rp.pieces_for(*rp.history_size(repo, options), split_bytes)
    if n > 1:
        return [], rp.repo_pieces(target, n, token)
    return [rp.RepoSource(options, target, repo)], []


def _piece_source(piece: RepoPiece, options: ScanOptions) -> Source:
    from keyscope.fleet import repo_pieces as rp
    from keyscope.scan import cache_dir
    from keyscope.sources.git import GitError

    repo = rp.locate(piece.target, options, cache_dir(options), piece.token)
    if repo is None:
        raise GitError(f"{piece.target}: no longer a git repository")
    return rp.RepoSource(options, piece.target, repo, piece)
