"""A git repository as a source: every unique blob of its history (by ``Selection``)
plus the work tree's uncommitted changes; the provenance of what matched is found
after the scan, in one history walk per repository."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from keyscope.model import RawFinding, Skipped
from keyscope.sources.files import PathsUnit, batches, walk, walk_options
from keyscope.sources.git import (
    BlobReader,
    GitBlobRef,
    GitError,
    Selection,
    find_repository,
    is_bare,
    list_blobs,
    worktree_changes,
)
from keyscope.sources.git_provenance import ProvenanceIndex, prefetch
from keyscope.sources.interface import (
    Batch,
    Blob,
    BlobScan,
    Source,
    SourceOptions,
    Unit,
    WorkerContext,
)

BATCH_REFS = 1024  # blob refs per unit
BATCH_BYTES = 16 * 1024 * 1024

Locate = Callable[[], tuple[Path | None, str]]  # → (repository or None, shown name)


@dataclass(frozen=True)
class GitUnit:
    """Blobs of one repository, read through the worker's ``git cat-file --batch``."""

    repo: str  # repository to read blobs from
    shown: str  # prefix for the paths reports show
    refs: list[GitBlobRef]

    def read(self, ctx: WorkerContext) -> Iterator[Blob | Skipped]:
        def start() -> BlobReader:
            return BlobReader(Path(self.repo), ctx.max_file_size)

        return ctx.kept(("git", self.repo), start).read(self.refs)


class GitSource(Source):
    """A repository's top level (or a bare repository), unless ``git=False``; with
    ``git=True`` every root, and one that is not a repository is an error."""

    name = "git"

    def __init__(self, options: SourceOptions) -> None:
        super().__init__(options)
        self._roots: list[tuple[str, Locate]] = []  # (name shown, locate)
        self._repos: dict[str, str] = {}  # repository → shown name
        self._held: list[tuple[GitUnit, RawFinding]] = []

    def claim(self, root: str) -> bool:
        if self.options.git is False:
            return False
        repo = find_repository(Path(root))
        if repo is None and self.options.git is not True:
            return False
        self.take(root, lambda: (repo, root))
        return True

    def take(self, root: str, locate: Locate, shown: str | None = None) -> None:
        """Scan ``root`` (named ``shown`` in reports: a URL without its credentials) as
        a repository; ``locate`` (called when its turn comes) finds it: a remote is
        mirrored first."""
        self._roots.append((shown or root, locate))

    def units(self, skipped: list[Skipped], jobs: int) -> Iterator[Unit]:
        selection = self.options.selection
        for name, locate in self._roots:
            try:
                repo, shown = locate()
            except GitError as exc:
                if len(self._roots) == 1:
                    raise  # the one repository asked for: an error
                # one of many (a target list): the others are scanned all the same
                skipped.append(Skipped(name, f"not scanned: {exc}"))
                continue
            if repo is None:
                raise GitError(f"{shown}: not a git repository")
            self._repos[str(repo)] = shown
            yield from self._blob_units(repo, shown, skipped)
            if selection == Selection() and self._worktree() and not is_bare(repo):
                changed = [str(repo / p) for p in worktree_changes(repo)]
                options = walk_options(self.options)
                for batch in batches(walk(changed, options), skipped):
                    yield PathsUnit(batch)

    def _blob_units(self, repo: Path, shown: str, skipped: list[Skipped]) -> Iterator[GitUnit]:
        batch: list[GitBlobRef] = []
        size = 0
        limit = self.options.max_file_size
        for ref in list_blobs(repo, self.options.selection):
            if not self._wants(ref.oid):
                continue
            if ref.size > limit:
                skipped.append(
                    Skipped(
                        _join(shown, ref.path),
                        f"larger than --max-file-size ({ref.size} bytes, blob {ref.oid[:12]})",
                    )
                )
                continue
            batch.append(ref)
            size += ref.size
            if len(batch) >= BATCH_REFS or size >= BATCH_BYTES:
                yield GitUnit(str(repo), shown, batch)
                batch, size = [], 0
        if batch:
            yield GitUnit(str(repo), shown, batch)

    def absorb(self, unit: Unit, batch: Batch) -> Batch:
        if not isinstance(unit, GitUnit):
            return batch  # work-tree files: reported as they come
        # Provenance waits for the end of the scan: one history pass answers for every
        # matched blob of a repository; git starts that pass at the first one, while
        # the rest of the history is scanned (staged content has no history)
        self._held.extend((unit, f) for f in batch.findings)
        if batch.findings and not self.options.selection.staged:
            prefetch(Path(unit.repo))
        models = [replace(m, path=_join(unit.shown, m.path)) for m in batch.model_findings]
        return replace(batch, findings=[], model_findings=models)

    def finish(self, scan: BlobScan) -> Batch:
        selection = self.options.selection
        if selection.staged:  # staged content has no history yet
            return Batch(
                findings=[
                    replace(
                        f,
                        location=replace(
                            f.location, path=_join(u.shown, f.location.path), git=None
                        ),
                    )
                    for u, f in self._held
                ]
            )
        rescan = self._rescan_for(scan)
        rejected: Counter[str] = Counter()
        found: list[RawFinding] = []
        for f in _with_provenance_all(self._held, rescan):
            g = f.location.git
            if g is not None and not self._wants(g.blob):
                continue  # another part of the history reports it
            if g is not None and g.commit is None and not selection.all_objects:
                # Listed from the object database but on no branch, tag or stash.
                rejected["unreachable git object (use --all-objects)"] += 1
                continue
            found.append(f)
        return Batch(findings=found, rejected=rejected)

    # Hooks for a scan of one part of a repository's blobs (``fleet/repo_pieces.py``).
    def _wants(self, oid: str) -> bool:
        """Is blob ``oid`` this source's to scan and to report from? (all of them)"""
        return True

    def _worktree(self) -> bool:
        """Are a work tree's uncommitted changes scanned with the history? (yes)"""
        return True

    def _rescan_for(self, scan: BlobScan) -> Callable[[str, list[str]], list[RawFinding]] | None:
        """How other versions of the matched files are scanned for provenance: not at
        all after a scan of the whole history."""
        selection = self.options.selection
        complete = selection in (Selection(), Selection(all_objects=True))
        return None if complete else self._rescanner(scan)

    def _rescanner(self, scan: BlobScan) -> Callable[[str, list[str]], list[RawFinding]]:
        def rescan(repo: str, oids: list[str]) -> list[RawFinding]:
            """The findings in these blobs of ``repo`` (for provenance, not reported)."""
            reader = BlobReader(Path(repo), self.options.max_file_size)
            try:
                refs = [GitBlobRef(oid, 0, oid) for oid in oids]
                return scan(reader.read(refs)).findings
            finally:
                reader.close()

        return rescan

    def history_cut(self) -> dict[str, list[str]]:
        cut = {}
        for repo, shown in self._repos.items():
            boundary = ProvenanceIndex(Path(repo)).shallow_boundary()
            if boundary:
                cut[shown] = sorted(boundary)
        return cut


def _with_provenance_all(
    found: list[tuple[GitUnit, RawFinding]],
    rescan: Callable[[str, list[str]], list[RawFinding]] | None = None,
) -> list[RawFinding]:
    """One location per secret and path it was at in the history (the blobs holding
    the same secret are followed together, so an edit of another line is no event).

    After a scan of part of the history (``rescan`` given), the other versions of the
    files that matched are scanned too, to know which of them hold the same secrets."""
    shown: dict[str, str] = {}
    groups: dict[tuple[str, str], dict[str, list[RawFinding]]] = {}  # (repo, fp) → blob → raw
    out: list[RawFinding] = []
    for unit, f in found:
        if f.location.git is None:
            out.append(
                replace(f, location=replace(f.location, path=_join(unit.shown, f.location.path)))
            )
            continue
        shown[unit.repo] = unit.shown
        by_blob = groups.setdefault((unit.repo, f.explanation.fingerprint), {})
        by_blob.setdefault(f.location.git.blob, []).append(f)
    indexes = {repo: ProvenanceIndex(Path(repo)) for repo in shown}
    for (repo, _), by_blob in groups.items():
        for oid in by_blob:
            indexes[repo].want(oid)
    if rescan is not None:
        for repo, index in indexes.items():
            known = {oid for (r, _), by_blob in groups.items() if r == repo for oid in by_blob}
            for f in rescan(repo, sorted(index.follow_paths() - known)):
                assert f.location.git is not None
                group = groups.get((repo, f.explanation.fingerprint))
                if group is not None:  # only secrets found in the part scanned
                    group.setdefault(f.location.git.blob, []).append(f)
    for (repo, _), by_blob in groups.items():
        for p in indexes[repo].presence(set(by_blob)):
            for f in by_blob[p.blob]:
                path = _join(shown[repo], p.path or f.location.path)
                out.append(replace(f, location=replace(f.location, path=path, git=p.provenance)))
    return out


def _join(prefix: str, path: str) -> str:
    return path if prefix in ("", ".") else f"{prefix.rstrip('/')}/{path}"
