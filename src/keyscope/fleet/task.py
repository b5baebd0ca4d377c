"""One target scanned where a task runs (a Dask worker, or this process): the whole
of ``keyscope.scan.scan`` over that target alone, with one process (a Dask worker's
process may not start a pool of its own), and what comes back: its findings, not a
report. Imports no Dask."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from keyscope.model import Finding, ModelFinding, RawFinding, Skipped

if TYPE_CHECKING:
    from keyscope.fleet.pieces import Piece
    from keyscope.scan import ScanOptions


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

    def raw(self) -> list[RawFinding]:
        """The findings one location each, as the scan found them (for ``scan.merge``)."""
        return [
            RawFinding(f.rule_id, f.explanation, loc, f.credential)
            for f in self.findings
            for loc in f.locations
        ]


def scan_target(target: str | Piece, options: ScanOptions) -> TargetResult:
    """Scan ``target`` (or one piece of a large web archive) in this process; an error
    ends this target only."""
    from keyscope.fleet.pieces import PieceSource
    from keyscope.redact import mask
    from keyscope.scan import scan

    piece = None if isinstance(target, str) else target
    root = target if isinstance(target, str) else target.target
    try:
        extra = [PieceSource(options, piece)] if piece else []
        result = scan([root], replace(options, jobs=1), extra=extra)
    except Exception as exc:  # auth, network, a corrupt target: skipped with the reason
        reason = mask(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        name = root if piece is None else piece.name
        return TargetResult(name, failed=f"could not be scanned: {reason[:300]}")
    stats = result.stats
    if piece is not None and piece.index > 0:  # a file in pieces counts once
        stats.files = max(0, stats.files - 1)
    return TargetResult(
        root if piece is None else piece.name,
        findings=result.findings,
        model_findings=result.model_findings,
        skipped=result.skipped,
        files=stats.files,
        bytes=stats.bytes,
        rejected=stats.rejected,
        history_cut=result.history_cut,
        engine=result.engine,
    )
