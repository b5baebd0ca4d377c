"""``keyscope.scan``: find credentials in files, directories and standard input.

The parent process walks the sources and hands batches of paths to worker
processes (all cores by default); each worker compiles the rules once and runs
every file through one engine pass. Findings come back, are merged by fingerprint
(one secret in N places is one finding with N locations) and sorted.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from keyscope.analyze.policy import DEFAULT_POLICY, Policy
from keyscope.detect.engine import default_cache_dir, make_engine
from keyscope.detect.rules import Rule, load_rules
from keyscope.explain import resolve_now
from keyscope.model import Finding, Severity
from keyscope.pipeline import BlobScanner, RawFinding
from keyscope.sources.files import (
    DEFAULT_MAX_FILE_SIZE,
    FileEntry,
    WalkOptions,
    read_file,
    walk,
)
from keyscope.sources.interface import Blob, Skipped

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


@dataclass
class ScanStats:
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    rejected: Counter[str] = field(default_factory=Counter)


@dataclass
class ScanResult:
    findings: list[Finding]
    skipped: list[Skipped]
    stats: ScanStats
    rules: tuple[Rule, ...]
    engine: str
    now: datetime


@dataclass(frozen=True)
class Progress:
    """Sent to ``on_progress`` after each batch."""

    files: int
    bytes: int
    findings: int
    seconds: float


@dataclass(frozen=True)
class _Batch:
    findings: list[RawFinding]
    skipped: list[Skipped]
    files: int
    bytes: int
    rejected: Counter[str]


def scan(
    paths: Iterable[str | Path],
    options: ScanOptions = ScanOptions(),
    *,
    on_finding: Callable[[RawFinding], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stdin: bytes | None = None,
) -> ScanResult:
    """Scan files and directories (``-`` is standard input, given as ``stdin``).

    ``on_finding`` sees each credential as soon as it is found (for streaming
    output); ``on_progress`` sees running totals.
    """
    started = time.monotonic()
    now = resolve_now(options.now)
    rules = load_rules(options.rule_dirs)
    engine_name = _engine_name(options.engine)
    roots = [str(p) for p in paths]
    walk_options = WalkOptions(
        respect_gitignore=options.respect_gitignore,
        excludes=options.excludes,
        follow_symlinks=options.follow_symlinks,
        max_file_size=options.max_file_size,
    )
    stats = ScanStats()
    skipped: list[Skipped] = []
    raw: list[RawFinding] = []

    def absorb(batch: _Batch) -> None:
        stats.files += batch.files
        stats.bytes += batch.bytes
        stats.rejected.update(batch.rejected)
        skipped.extend(batch.skipped)
        for f in batch.findings:
            raw.append(f)
            if on_finding:
                on_finding(f)
        if on_progress:
            on_progress(Progress(stats.files, stats.bytes, len(raw), time.monotonic() - started))

    state = _WorkerState(rules, engine_name, now, options)
    if STDIN in roots:
        roots.remove(STDIN)
        absorb(state.scan_blobs([Blob(path="<stdin>", data=stdin or b"")]))

    batches = _batches(walk(roots, walk_options), skipped)
    jobs = options.jobs or os.cpu_count() or 1
    if jobs == 1:
        for batch in batches:
            absorb(state.scan_paths(batch))
    else:
        _run_parallel(batches, jobs, rules, engine_name, now, options, absorb)

    stats.seconds = time.monotonic() - started
    return ScanResult(
        findings=merge(raw), skipped=skipped, stats=stats, rules=rules, engine=engine_name, now=now
    )


def merge(raw: list[RawFinding]) -> list[Finding]:
    """One finding per secret, its locations in path/line order; worst first."""
    by_fp: dict[str, Finding] = {}
    for r in raw:
        fp = r.explanation.fingerprint
        if fp not in by_fp:
            by_fp[fp] = Finding(
                fingerprint=fp, rule_id=r.rule_id, explanation=r.explanation, locations=[]
            )
        if r.location not in by_fp[fp].locations:
            by_fp[fp].locations.append(r.location)
    findings = list(by_fp.values())
    for f in findings:
        f.locations.sort(key=lambda loc: (loc.path, loc.origin, loc.line, loc.column))
    findings.sort(key=lambda f: (-f.severity, f.locations[0].path, f.locations[0].line))
    return findings


def at_or_above(findings: list[Finding], threshold: Severity) -> list[Finding]:
    return [f for f in findings if f.severity >= threshold]


class _WorkerState:
    """What one process keeps between batches: the compiled engine and analyzers."""

    def __init__(
        self, rules: tuple[Rule, ...], engine_name: str, now: datetime, options: ScanOptions
    ) -> None:
        cache = options.cache_dir or default_cache_dir()
        engine = make_engine(engine_name, rules, cache)
        self.scanner = BlobScanner(engine, now, options.policy, options.show_secrets)
        self.max_size = options.max_file_size

    def scan_paths(self, paths: list[str]) -> _Batch:
        return self.scan_blobs(self._read(paths))

    def scan_blobs(self, blobs: Iterable[Blob | Skipped]) -> _Batch:
        findings: list[RawFinding] = []
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
            except (RecursionError, MemoryError, ValueError) as exc:
                skipped.append(Skipped(blob.path, f"could not be scanned ({type(exc).__name__})"))
                continue
            findings.extend(result.findings)
            rejected.update(result.rejected)
        return _Batch(findings, skipped, files, size, rejected)

    def _read(self, paths: list[str]) -> Iterator[Blob | Skipped]:
        for path in paths:
            data = read_file(path, self.max_size)
            yield data if isinstance(data, Skipped) else Blob(path=path, data=data)


_STATE: _WorkerState | None = None


def _init_worker(
    rules: tuple[Rule, ...], engine_name: str, now: datetime, options: ScanOptions
) -> None:
    global _STATE
    _STATE = _WorkerState(rules, engine_name, now, options)


def _work(paths: list[str]) -> _Batch:
    assert _STATE is not None
    return _STATE.scan_paths(paths)


def _run_parallel(
    batches: Iterator[list[str]],
    jobs: int,
    rules: tuple[Rule, ...],
    engine_name: str,
    now: datetime,
    options: ScanOptions,
    absorb: Callable[[_Batch], None],
) -> None:
    with ProcessPoolExecutor(
        max_workers=jobs, initializer=_init_worker, initargs=(rules, engine_name, now, options)
    ) as pool:
        pending: set[Future[_Batch]] = set()
        for batch in batches:
            pending.add(pool.submit(_work, batch))
            if len(pending) >= jobs * 3:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    absorb(fut.result())
        for fut in pending:
            absorb(fut.result())


def _batches(entries: Iterator[FileEntry | Skipped], skipped: list[Skipped]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for entry in entries:
        if isinstance(entry, Skipped):
            skipped.append(entry)
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
