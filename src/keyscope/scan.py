"""``keyscope.scan``: find credentials in files, directories and standard input.

The parent process walks the sources and hands batches of paths to worker
processes (all cores by default); each worker compiles the rules once and runs
every file through one engine pass. Findings come back, are merged by fingerprint
(one secret in N places is one finding with N locations) and sorted.
"""

from __future__ import annotations

import mmap
import multiprocessing.util
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from keyscope.analyze.policy import DEFAULT_POLICY, Policy
from keyscope.detect.engine import default_cache_dir, make_engine
from keyscope.detect.rules import Rule, load_rules
from keyscope.explain import resolve_now
from keyscope.model import (
    Finding,
    Location,
    ModelFinding,
    Progress,
    RawFinding,
    ScanResult,
    ScanStats,
    Severity,
    Skipped,
)
from keyscope.modelfiles.analyzer import analyze_model, model_kind
from keyscope.pipeline import BlobScanner
from keyscope.sources.files import (
    DEFAULT_MAX_FILE_SIZE,
    FileEntry,
    WalkOptions,
    read_file,
    walk,
)
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
from keyscope.sources.git_provenance import ProvenanceIndex
from keyscope.sources.interface import Blob
from keyscope.sources.remote import is_remote, mirror, remote_label

JOBS_PER_CORE = 4  # --jobs is capped at this many worker processes per core
BATCH_FILES = 256
BATCH_BYTES = 16 * 1024 * 1024
STDIN = "-"


@dataclass(frozen=True)
class ScanOptions:
    """Everything that changes what a scan reads or reports."""

    respect_gitignore: bool = True
    excludes: tuple[str, ...] = ()
    follow_symlinks: bool = False
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    jobs: int = 0  # 0: all cores
    engine: str = "auto"
    rule_dirs: tuple[Path, ...] = ()
    policy: Policy = DEFAULT_POLICY
    show_secrets: bool = False
    now: datetime | None = None
    cache_dir: Path | None = None
    git: bool | None = None  # None: a repository's top level is scanned as its history
    secrets: bool = True  # look for credentials
    models: bool = True  # judge model files (pickles that would run code)
    selection: Selection = field(default_factory=Selection)
    keep_credentials: bool = False  # keep parsed credentials in memory for a live check





@dataclass(frozen=True)
class _Batch:
    findings: list[RawFinding]
    skipped: list[Skipped]
    files: int
    bytes: int
    rejected: Counter[str]
    model_findings: list[ModelFinding] = field(default_factory=list)


@dataclass(frozen=True)
class _FilesTask:
    paths: list[str]
    models_only: bool = False  # files over --max-file-size: judge model files only


@dataclass(frozen=True)
class _GitTask:
    repo: str  # repository to read blobs from
    shown: str  # prefix for the paths reports show
    refs: list[GitBlobRef]


_Task = _FilesTask | _GitTask


def scan(
    paths: Iterable[str | Path],
    options: ScanOptions = ScanOptions(),
    *,
    on_finding: Callable[[RawFinding], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stdin: bytes | None = None,
) -> ScanResult:
    """Scan files, directories and git repositories (``-`` is standard input, given as
    ``stdin``). A directory that is a repository's top level is scanned as its whole
    history (every unique blob once) plus uncommitted changes, unless ``git=False``.

    ``on_finding`` sees each credential as soon as it is found (for streaming
    output); ``on_progress`` sees running totals.
    """
    started = time.monotonic()
    now = resolve_now(options.now)
    rules = load_rules(options.rule_dirs)
    engine_name = _engine_name(options.engine)
    roots = [str(p) for p in paths]
    stats = ScanStats()
    skipped: list[Skipped] = []
    raw: list[RawFinding] = []
    models: list[ModelFinding] = []
    in_history: list[tuple[_GitTask, RawFinding]] = []

    def absorb(batch: _Batch, task: _Task | None = None) -> None:
        stats.files += batch.files
        stats.bytes += batch.bytes
        stats.rejected.update(batch.rejected)
        skipped.extend(batch.skipped)
        for m in batch.model_findings:
            shown = _join(task.shown, m.path) if isinstance(task, _GitTask) else m.path
            models.append(replace(m, path=shown))
        for f in batch.findings:
            if isinstance(task, _GitTask):
                # Provenance waits for the end of the scan: one history pass answers
                # for every matched blob of a repository.
                in_history.append((task, f))
                continue
            raw.append(f)
            if on_finding:
                on_finding(f)
        if on_progress:
            on_progress(Progress(stats.files, stats.bytes, len(raw), time.monotonic() - started))

    state = _WorkerState(rules, engine_name, now, options)
    if STDIN in roots:
        roots.remove(STDIN)
        absorb(state.scan_blobs([Blob(path="<stdin>", data=stdin or b"")]))

    repos: dict[str, str] = {}  # repository → shown name
    tasks = _tasks(roots, options, skipped, repos)
    jobs = min(options.jobs or os.cpu_count() or 1, max_jobs())
    if jobs == 1:
        for task in tasks:
            absorb(state.run(task), task)
    else:
        _run_parallel(tasks, jobs, rules, engine_name, now, options, absorb)
    state.close()
    if options.selection.staged:  # staged content has no history yet
        in_history = [
            (
                t,
                replace(
                    f, location=replace(f.location, path=_join(t.shown, f.location.path), git=None)
                ),
            )
            for t, f in in_history
        ]
        raw.extend(f for _, f in in_history)
        if on_finding:
            for _, f in in_history:
                on_finding(f)
        in_history = []
    complete = options.selection in (Selection(), Selection(all_objects=True))
    for f in _with_provenance_all(in_history, None if complete else state.rescan):
        g = f.location.git
        if g is not None and g.commit is None and not options.selection.all_objects:
            # Listed from the object database but on no branch, tag or stash.
            stats.rejected["unreachable git object (use --all-objects)"] += 1
            continue
        raw.append(f)
        if on_finding:
            on_finding(f)

    stats.seconds = time.monotonic() - started
    models.sort(key=lambda m: (-m.severity, m.path, m.where))
    return ScanResult(
        findings=merge(raw),
        skipped=skipped,
        stats=stats,
        rules=rules,
        engine=engine_name,
        now=now,
        model_findings=models,
        history_cut=_history_cut(repos),
    )


def _with_provenance_all(
    found: list[tuple[_GitTask, RawFinding]],
    rescan: Callable[[str, list[str]], list[RawFinding]] | None = None,
) -> list[RawFinding]:
    """One location per secret and path it was at in the history (the blobs holding
    the same secret are followed together, so an edit of another line is no event).

    After a scan of part of the history (``rescan`` given), the other versions of the
    files that matched are scanned too, to know which of them hold the same secrets."""
    shown: dict[str, str] = {}
    groups: dict[tuple[str, str], dict[str, list[RawFinding]]] = {}  # (repo, fp) → blob → raw
    out: list[RawFinding] = []
    for task, f in found:
        if f.location.git is None:
            out.append(
                replace(f, location=replace(f.location, path=_join(task.shown, f.location.path)))
            )
            continue
        shown[task.repo] = task.shown
        by_blob = groups.setdefault((task.repo, f.explanation.fingerprint), {})
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


def _history_cut(repos: dict[str, str]) -> dict[str, list[str]]:
    """Shallow repositories among those scanned: shown name → boundary commits."""
    cut = {}
    for repo, shown in repos.items():
        boundary = ProvenanceIndex(Path(repo)).shallow_boundary()
        if boundary:
            cut[shown] = sorted(boundary)
    return cut


def _join(prefix: str, path: str) -> str:
    return path if prefix in ("", ".") else f"{prefix.rstrip('/')}/{path}"


def _tasks(
    roots: list[str], options: ScanOptions, skipped: list[Skipped], repos: dict[str, str]
) -> Iterator[_Task]:
    walk_options = WalkOptions(
        respect_gitignore=options.respect_gitignore,
        excludes=options.excludes,
        follow_symlinks=options.follow_symlinks,
        max_file_size=options.max_file_size,
    )
    plain: list[str] = []
    for root in roots:
        source = root
        if is_remote(root):
            source = str(mirror(root, (options.cache_dir or default_cache_dir()) / "repos"))
        repo = None if options.git is False else find_repository(Path(source))
        if repo is None:
            if options.git is True or source != root:
                raise GitError(
                    f"{remote_label(root) if source != root else root}: not a git repository"
                )
            plain.append(root)
            continue
        shown = root if source == root else remote_label(root)
        repos[str(repo)] = shown
        yield from _git_tasks(repo, shown, options, skipped)
        if options.selection == Selection() and not is_bare(repo):
            changed = [str(repo / p) for p in worktree_changes(repo)]
            for batch in _batches(walk(changed, walk_options), skipped):
                yield _FilesTask(batch)
    oversize: list[str] = []
    for batch in _batches(walk(plain, walk_options), skipped, oversize):
        yield _FilesTask(batch)
    if options.models:
        for start in range(0, len(oversize), 8):
            yield _FilesTask(oversize[start : start + 8], models_only=True)


def _git_tasks(
    repo: Path, shown: str, options: ScanOptions, skipped: list[Skipped]
) -> Iterator[_GitTask]:
    batch: list[GitBlobRef] = []
    size = 0
    for ref in list_blobs(repo, options.selection):
        if ref.size > options.max_file_size:
            skipped.append(
                Skipped(
                    _join(shown, ref.path),
                    f"larger than --max-file-size ({ref.size} bytes, blob {ref.oid[:12]})",
                )
            )
            continue
        batch.append(ref)
        size += ref.size
        if len(batch) >= BATCH_FILES * 4 or size >= BATCH_BYTES:
            yield _GitTask(str(repo), shown, batch)
            batch, size = [], 0
    if batch:
        yield _GitTask(str(repo), shown, batch)


def merge(raw: list[RawFinding]) -> list[Finding]:
    """One finding per secret, its locations in path/line order; worst first."""
    by_fp: dict[str, Finding] = {}
    seen: set[tuple[str, Location]] = set()  # a set: one secret may be in 100,000 places
    for r in raw:
        fp = r.explanation.fingerprint
        if fp not in by_fp:
            by_fp[fp] = Finding(
                fingerprint=fp,
                rule_id=r.rule_id,
                explanation=r.explanation,
                locations=[],
                credential=r.credential,
            )
        if (fp, r.location) not in seen:
            seen.add((fp, r.location))
            by_fp[fp].locations.append(r.location)
    findings = list(by_fp.values())
    for f in findings:
        f.locations.sort(key=lambda loc: (loc.path, loc.origin, loc.line, loc.column))
    findings.sort(key=lambda f: (-f.severity, f.locations[0].path, f.locations[0].line))
    return findings


def max_jobs() -> int:
    """The most worker processes a scan starts: JOBS_PER_CORE per core."""
    return JOBS_PER_CORE * (os.cpu_count() or 1)


def at_or_above(findings: list[Finding], threshold: Severity) -> list[Finding]:
    return [f for f in findings if f.severity >= threshold]


def fails(result: ScanResult, threshold: Severity) -> bool:
    """Is any credential or model finding at or above ``threshold``?"""
    return bool(at_or_above(result.findings, threshold)) or any(
        m.severity >= threshold for m in result.model_findings
    )


class _WorkerState:
    """What one process keeps between tasks: the compiled engine, the analyzers and a
    ``git cat-file`` reader per repository."""

    def __init__(
        self, rules: tuple[Rule, ...], engine_name: str, now: datetime, options: ScanOptions
    ) -> None:
        cache = options.cache_dir or default_cache_dir()
        engine = make_engine(engine_name, rules, cache)
        self.scanner = BlobScanner(
            engine,
            now,
            options.policy,
            options.show_secrets,
            secrets=options.secrets,
            models=options.models,
            keep_credentials=options.keep_credentials,
        )
        self.max_size = options.max_file_size
        self.allow = options.policy.model_allow
        self._readers: dict[str, BlobReader] = {}

    def run(self, task: _Task) -> _Batch:
        if isinstance(task, _GitTask):
            reader = self._readers.get(task.repo)
            if reader is None:
                reader = self._readers[task.repo] = BlobReader(Path(task.repo), self.max_size)
            return self.scan_blobs(reader.read(task.refs))
        if task.models_only:
            return self._models_only(task.paths)
        return self.scan_blobs(self._read(task.paths))

    def _models_only(self, paths: list[str]) -> _Batch:
        """Big files are not scanned for secrets, but a big checkpoint is exactly where a
        payload hides: judge model files through a memory map, reading only what the
        loader would unpickle."""
        found: list[ModelFinding] = []
        skipped: list[Skipped] = []
        for path in paths:
            try:
                with open(path, "rb") as f:
                    head = f.read(512)
                    # a model format, or a pickle opcode first (a header-less pickle:
                    # the parser decides, through the map, reading only what it needs);
                    # analyze_model sniffs the whole map, not just this head
                    if model_kind(head, partial=True) is None:
                        continue
                    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                        found.extend(analyze_model(path, mm, self.allow))  # type: ignore[arg-type]
            except (OSError, ValueError):
                continue
            except Exception as exc:  # one hostile file never ends the scan: it is skipped
                skipped.append(Skipped(path, f"could not be scanned ({type(exc).__name__})"))
        return _Batch([], skipped, 0, 0, Counter(), found)

    def scan_blobs(self, blobs: Iterable[Blob | Skipped]) -> _Batch:
        findings: list[RawFinding] = []
        model_findings: list[ModelFinding] = []
        skipped: list[Skipped] = []
        rejected: Counter[str] = Counter()
        files = size = 0
        for blob in blobs:
            if isinstance(blob, Skipped):
                skipped.append(blob)
                continue
            files += 1
            size += len(blob.data)
            try:
                result = self.scanner.scan(blob)
            except Exception as exc:  # one hostile blob never ends the scan: it is skipped
                skipped.append(Skipped(blob.path, f"could not be scanned ({type(exc).__name__})"))
                continue
            findings.extend(result.findings)
            model_findings.extend(result.model_findings)
            rejected.update(result.rejected)
        return _Batch(findings, skipped, files, size, rejected, model_findings)

    def rescan(self, repo: str, oids: list[str]) -> list[RawFinding]:
        """The findings in these blobs of ``repo`` (for provenance, not reported)."""
        reader = BlobReader(Path(repo), self.max_size)
        try:
            refs = [GitBlobRef(oid, 0, oid) for oid in oids]
            return self.scan_blobs(reader.read(refs)).findings
        finally:
            reader.close()

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()

    def _read(self, paths: list[str]) -> Iterator[Blob | Skipped]:
        for path in paths:
            data = read_file(path, self.max_size)
            yield data if isinstance(data, Skipped) else Blob(path=path, data=data)


_STATE: _WorkerState | None = None


def _init_worker(
    rules: tuple[Rule, ...], engine_name: str, now: datetime, options: ScanOptions
) -> None:
    global _STATE
    # Ctrl-C reaches the whole process group: the parent alone decides, and stops the
    # workers with SIGTERM (and they end with it should the parent die).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    _STATE = _WorkerState(rules, engine_name, now, options)
    # Worker processes end with os._exit: close their git readers on the way out.
    multiprocessing.util.Finalize(None, _STATE.close, exitpriority=10)


def _work(task: _Task) -> _Batch:
    assert _STATE is not None
    return _STATE.run(task)


def _die_with_parent() -> None:
    """Linux: the kernel sends this worker SIGTERM when the process that started it
    ends, even by SIGKILL."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _run_parallel(
    tasks: Iterator[_Task],
    jobs: int,
    rules: tuple[Rule, ...],
    engine_name: str,
    now: datetime,
    options: ScanOptions,
    absorb: Callable[[_Batch, _Task], None],
) -> None:
    pool = ProcessPoolExecutor(
        max_workers=jobs, initializer=_init_worker, initargs=(rules, engine_name, now, options)
    )
    try:
        pending: dict[Future[_Batch], _Task] = {}
        for task in tasks:
            pending[pool.submit(_work, task)] = task
            if len(pending) >= jobs * 3:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    absorb(fut.result(), pending.pop(fut))
        for fut, task in pending.items():
            absorb(fut.result(), task)
    except BaseException:
        # An error, Ctrl-C or SIGTERM: drop the queued tasks and end the workers now
        # rather than waiting for every task already handed out.
        _stop_workers(pool)
        raise
    pool.shutdown()


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    workers = list((pool._processes or {}).values())
    for worker in workers:
        worker.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + 5
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            worker.kill()
            worker.join(1)


def _batches(
    entries: Iterator[FileEntry | Skipped],
    skipped: list[Skipped],
    oversize: list[str] | None = None,
) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for entry in entries:
        if isinstance(entry, Skipped):
            skipped.append(entry)
            if entry.oversize and oversize is not None:
                oversize.append(entry.path)
            continue
        batch.append(entry.path)
        size += entry.size
        if len(batch) >= BATCH_FILES or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _engine_name(name: str) -> str:
    from keyscope.detect.engine import hyperscan_available

    if name == "auto":
        return "hyperscan" if hyperscan_available() else "re"
    if name not in ("hyperscan", "re"):
        raise ValueError(f"unknown engine {name!r}")
    return name
