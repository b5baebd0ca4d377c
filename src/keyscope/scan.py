"""``keyscope.scan``: find credentials in files, directories and standard input.

Each root goes to the first source that claims it (``sources/registry.py``); the
sources cut their roots into units, which worker processes read and scan (all cores
by default; each worker compiles the rules once and runs every blob through one
engine pass). Findings come back, pass the sources' post-passes (git provenance), are
merged by fingerprint (one secret in N places is one finding with N locations) and
sorted.
"""

from __future__ import annotations

import gc
import itertools
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from keyscope.analyze.policy import DEFAULT_POLICY, Policy
from keyscope.children import die_with_parent
from keyscope.detect.engine import default_cache_dir, make_engine
from keyscope.detect.rules import Rule, load_rules
from keyscope.explain import resolve_now
from keyscope.heap import collector_paused, return_large_buffers
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
from keyscope.modelfiles.containers import MAX_DEPTH as MODEL_DEPTH
from keyscope.modelfiles.containers import MAX_MEMBERS as MODEL_MEMBERS
from keyscope.modelfiles.containers import Reach, walks_members
from keyscope.modelfiles.formats.registry import sniff
from keyscope.modelfiles.kinds import model_kind
from keyscope.pipeline import BlobResult, BlobScanner
from keyscope.sources.download import DEFAULT_DOWNLOAD_LIMIT
from keyscope.sources.files import DEFAULT_MAX_FILE_SIZE
from keyscope.sources.git import Selection
from keyscope.sources.git_provenance import drop_prefetched
from keyscope.sources.interface import WAIT, Batch, Blob, Deferred, Source, Unit, WorkerContext
from keyscope.sources.registry import claim, make_sources
from keyscope.unpack.archives import ZipExpander
from keyscope.unpack.image_roots import ImageSource
from keyscope.unpack.interface import DEFAULT_DEPTH, Budget, UnpackLimits, member_path
from keyscope.unpack.registry import expander_for
from keyscope.unpack.warc import is_warc

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

JOBS_PER_CORE = 4  # --jobs is capped at this many worker processes per core
# Workers start once this many units wait, or once the parent has read units for this
# long and three wait: below that, starting them (and their imports) costs more than
# they save.
READY_UNITS = 8
PARENT_SECONDS = 0.1


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
    unpack_depth: int = DEFAULT_DEPTH  # containers inside containers (0: none unpacked)
    download_limit: int = DEFAULT_DOWNLOAD_LIMIT  # an http(s) URL of a file: its most bytes




def cache_dir(options: ScanOptions) -> Path:
    """keyscope's cache folder for this scan (compiled rules, remote mirrors)."""
    return options.cache_dir or default_cache_dir()


def scan(
    paths: Iterable[str | Path],
    options: ScanOptions = ScanOptions(),
    *,
    on_finding: Callable[[RawFinding], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stdin: bytes | None = None,
    extra: Sequence[Source] = (),
) -> ScanResult:
    """Scan files, directories and git repositories (``-`` is standard input, given as
    ``stdin``). A directory that is a repository's top level is scanned as its whole
    history (every unique blob once) plus uncommitted changes, unless ``git=False``.

    ``on_finding`` sees each credential as soon as it is found (for streaming
    output); ``on_progress`` sees running totals. ``extra``: sources asked before
    the registry's (``keyscope crawl``'s).
    """
    started = time.monotonic()
    now = resolve_now(options.now)
    rules = load_rules(options.rule_dirs)
    engine_name = _engine_name(options.engine)
    stats = ScanStats()
    skipped: list[Skipped] = []
    raw: list[RawFinding] = []
    models: list[ModelFinding] = []

    def report(batch: Batch) -> None:
        stats.files += batch.files
        stats.bytes += batch.bytes
        stats.rejected.update(batch.rejected)
        skipped.extend(batch.skipped)
        models.extend(batch.model_findings)
        for f in batch.findings:
            raw.append(f)
            if on_finding:
                on_finding(f)

    def absorb(source: Source, unit: Unit, batch: Batch) -> None:
        report(source.absorb(unit, batch))
        if on_progress:
            on_progress(Progress(stats.files, stats.bytes, len(raw), time.monotonic() - started))

    return_large_buffers()  # large members freed go back to the system (keyscope.heap)
    state = _WorkerState(rules, engine_name, now, options)
    registered = make_sources(options, stdin=stdin, cache=cache_dir(options))
    # unpack/: sources/ may not import it
    sources = [*extra, ImageSource(options), *registered]
    for root in paths:
        claim(str(root), sources)
    jobs = min(options.jobs or os.cpu_count() or 1, max_jobs())
    for source in sources:
        if source.in_parent:
            for unit in source.units(skipped, 1):
                if unit is not WAIT:  # one process: every unit was taken in already
                    absorb(source, unit, state.run(unit))
    units = (
        (source, unit)
        for source in sources
        if not source.in_parent
        for unit in source.units(skipped, jobs)
    )
    # With workers, the parent mostly unpickles their findings and keeps them all: no
    # garbage for the cycle collector, whose passes over the growing heap cost more than
    # the unpickling and the merge (1.3 s of 1.5 s, and 0.3 s of 0.6 s, for 10,000
    # explained credentials).
    try:
        with collector_paused(jobs > 1):
            if jobs == 1:
                for source, unit in units:
                    if unit is not WAIT:
                        absorb(source, unit, state.run(unit))
            else:
                _in_parent_or_parallel(units, state, absorb, lambda rest: _run_parallel(
                    rest, jobs, rules, engine_name, now, options, absorb))
            state.close()
            history_cut: dict[str, list[str]] = {}
            for source in sources:  # the post-passes (git provenance)
                report(source.finish(state.scan_blobs))
                history_cut.update(source.history_cut())
            findings = merge(raw)
    finally:  # a history walk started early and not read (an error, a stop)
        drop_prefetched()

    stats.seconds = time.monotonic() - started
    models.sort(key=lambda m: (-m.severity, m.path, m.where))
    return ScanResult(
        findings=findings,
        skipped=skipped,
        stats=stats,
        rules=rules,
        engine=engine_name,
        now=now,
        model_findings=models,
        history_cut=history_cut,
    )


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
    # a total order (column, origin, fingerprint break ties): the same whatever order
    # the units ended in, on one machine or a cluster
    findings.sort(key=lambda f: (-f.severity, f.locations[0].path, f.locations[0].line,
                                 f.locations[0].column, f.locations[0].origin, f.fingerprint))
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
    """What one process keeps between units: the compiled engine, the analyzers and
    what the sources keep (``WorkerContext``: a ``git cat-file`` per repository…)."""

    def __init__(
        self, rules: tuple[Rule, ...], engine_name: str, now: datetime, options: ScanOptions
    ) -> None:
        cache = cache_dir(options)
        engine = make_engine(engine_name, rules, cache)
        self.scanner = BlobScanner(
            engine,
            now,
            options.policy,
            options.show_secrets,
            secrets=options.secrets,
            models=options.models,
            keep_credentials=options.keep_credentials,
            # the model walk reaches every member unpacked (a compressed tar is two
            # of its steps, one unpacking step), so members it reads are not judged again
            model_reach=Reach(
                depth=max(MODEL_DEPTH, 2 * options.unpack_depth),
                members=max(MODEL_MEMBERS, UnpackLimits().members),
            ),
        )
        self.allow = options.policy.model_allow
        self.context = WorkerContext(options.max_file_size)
        # `keyscope models` unpacks nothing: the model walk reads archives itself
        self.limits = UnpackLimits(depth=options.unpack_depth if options.secrets else 0)

    def run(self, unit: Unit) -> Batch:
        return self.scan_blobs(unit.read(self.context))

    def _models_only(self, blob: Blob) -> tuple[list[ModelFinding], Skipped | None]:
        """Big files are not scanned for secrets, but a big checkpoint is exactly where a
        payload hides: judge model files through the memory map, reading only what the
        loader would unpickle."""
        try:
            head = blob.data[:512]
            # a model format, or a pickle opcode first (a header-less pickle:
            # the parser decides, through the map, reading only what it needs);
            # analyze_model sniffs the whole map, not just this head; a web archive
            # is no model file (the unit that unpacks it judges its records)
            if model_kind(head, partial=True) is None or is_warc(bytes(blob.data[:4096])):
                return [], None
            from keyscope.modelfiles.analyzer import analyze_model

            reach = self.scanner.model_reach
            return analyze_model(blob.path, blob.data, self.allow, reach=reach), None
        except (OSError, ValueError):
            return [], None
        except Exception as exc:  # one hostile file never ends the scan: it is skipped
            return [], Skipped(blob.path, f"could not be scanned ({type(exc).__name__})")

    def scan_blobs(self, blobs: Iterable[Blob | Skipped | Deferred]) -> Batch:
        findings: list[RawFinding] = []
        model_findings: list[ModelFinding] = []
        skipped: list[Skipped] = []
        deferred: list[Deferred] = []
        rejected: Counter[str] = Counter()
        files = size = 0
        for blob in blobs:
            if isinstance(blob, Deferred):  # results of a file read elsewhere go here
                deferred.append(
                    replace(blob, findings=len(findings), skipped=len(skipped),
                            models=len(model_findings))
                )  # fmt: skip
                continue
            if isinstance(blob, Skipped):
                skipped.append(blob)
                continue
            if blob.models_only:
                found, failed = self._models_only(blob)
                model_findings.extend(found)
                if failed:
                    skipped.append(failed)
                continue
            items = self._piece(blob) if blob.part else self._unpacked(blob, None, 0, blob.walked)
            if items is None:  # a piece over its share of the budget: read the file whole
                deferred.append(Deferred(blob.path, (), len(findings), len(skipped),
                                         len(model_findings)))  # fmt: skip
                continue
            if not blob.part or blob.part[0] == 0:  # a file in pieces counts once
                files += 1
                size += len(blob.data)
            for item in items:
                if isinstance(item, Skipped):
                    skipped.append(item)
                    continue
                findings.extend(item.findings)
                model_findings.extend(item.model_findings)
                rejected.update(item.rejected)
        return Batch(findings, skipped, files, size, rejected, model_findings, deferred)

    def _piece(self, blob: Blob) -> list[BlobResult | Skipped] | None:
        """The scan of the members of one piece of a large zip (``Blob.part``), with its
        share of the unpack budget; None when it needs more than its share (or the
        file is no longer such a zip): the file is then read whole, as with one worker.
        The file is judged as a model file by a unit of its own."""
        assert blob.part is not None
        parts = blob.part[2]
        limits = self.limits.share(parts)
        # a file this large cannot hit the ratio limit before the byte limit: shares hold
        if (
            not ZipExpander().claims(blob)
            or not self.limits.depth
            or len(blob.data) * limits.ratio < self.limits.total_bytes
        ):
            return None
        budget = Budget(limits, len(blob.data))
        items = list(self._unpacked(blob, budget, 0, walked=True))
        return None if budget.stopped else items

    def _unpacked(
        self, blob: Blob, budget: Budget | None, depth: int, walked: bool
    ) -> Iterator[BlobResult | Skipped]:
        """The scan of ``blob`` and, when an expander claims it, of its members instead
        of its raw bytes (to ``limits.depth``; one budget for the outermost blob).
        Each blob is judged as a model file once: by the model walk of a container
        that holds it (``walked``: ``modelfiles/`` reads zip, tar, 7z and compressed
        members itself, as deep as they are unpacked here), or on its own, a member
        then named ``outer!/member`` (a notebook's attachment, a member of a container
        the walk does not read)."""
        try:
            expander = expander_for(blob) if depth < self.limits.depth else None
            if expander is None and self.scanner.secrets:
                blob = _whole(blob)
            at_limit = depth > 0 and depth >= self.limits.depth  # else expander_for said None
            if at_limit and (deeper := expander_for(blob)) is not None:
                reason = f"{deeper.name}: nested deeper than {depth} containers, not unpacked"
                yield Skipped(member_path(blob), reason)
            name = member_path(blob) if blob.origin else None
            # a web archive is no model file: its records are judged one by one
            models = not walked and not (expander is not None and expander.independent)
            yield self.scanner.scan(blob, secrets=expander is None, models=models, name=name)
        except Exception as exc:  # one hostile blob never ends the scan: it is skipped
            yield Skipped(member_path(blob), f"could not be scanned ({type(exc).__name__})")
            return
        if expander is None:
            return
        if budget is None:
            budget = Budget(self.limits, len(blob.data))
        # judged or walked, this blob's walk reads its members when it is such a container,
        # or a pickle: its walk reads the checkpoints it holds as bytes (a zip found at
        # its end is torch.storage._load_from_bytes' argument, already judged there)
        kind = sniff(blob.data)
        # a web archive's records are judged one by one (the walk reads the stream whole)
        inner_walked = (walks_members(kind) or kind == "pickle") and not expander.independent
        opened = False
        try:
            for member in expander.expand(blob, budget):
                if isinstance(member, Skipped):
                    yield member
                elif _same(member.data, blob.data):  # a quine: the member is its archive
                    reason = f"{expander.name}: the member is the archive itself (a quine)"
                    yield Skipped(member_path(member), f"{reason}, not unpacked again")
                else:
                    opened = True
                    # an independent member (a web archive's record) has a budget of its own
                    inner = budget
                    if expander.independent:
                        inner = Budget(self.limits, len(member.data))
                    yield from self._unpacked(member, inner, depth + 1, inner_walked)
        except Exception as exc:  # a hostile container: what was read stays
            reason = f"{expander.name}: could not be unpacked ({type(exc).__name__})"
            yield Skipped(member_path(blob), reason)
        # nothing read out of it (damaged, refused): its raw bytes are scanned; not for a
        # piece of a large zip, whose bytes are the whole file's (its last piece scans
        # what lies outside the members)
        if not opened and blob.part is None:
            yield self.scanner.scan(_whole(blob), secrets=True, models=False)

    def close(self) -> None:
        self.context.close()


def _whole(blob: Blob) -> Blob:
    """``blob`` with its bytes in memory: a memory-mapped file (``read_blobs``) is
    scanned for secrets as bytes, as it would have been read (not a piece of a zip)."""
    if isinstance(blob.data, bytes) or blob.part is not None:
        return blob
    return replace(blob, data=bytes(blob.data))


def _same(a: bytes, b: bytes) -> bool:
    """Whether two blobs' bytes are equal (either may be a memory map)."""
    return len(a) == len(b) and memoryview(a) == memoryview(b)


_STATE: _WorkerState | None = None


def _init_worker(
    rules: tuple[Rule, ...], engine_name: str, now: datetime, options: ScanOptions
) -> None:
    global _STATE
    # Ctrl-C reaches the whole process group: the parent alone decides, and stops the
    # workers with SIGTERM (and they end with it should the parent die).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent()
    return_large_buffers()
    _STATE = _WorkerState(rules, engine_name, now, options)
    gc.freeze()  # the rules and the engine stay: the collector need not walk them
    # Worker processes end with os._exit: close their git readers on the way out.
    import multiprocessing.util

    multiprocessing.util.Finalize(None, _STATE.close, exitpriority=10)


def _work(unit: Unit) -> Batch:
    assert _STATE is not None
    return _STATE.run(unit)


def _run_parallel(
    units: Iterator[tuple[Source, Unit]],
    jobs: int,
    rules: tuple[Rule, ...],
    engine_name: str,
    now: datetime,
    options: ScanOptions,
    absorb: Callable[[Source, Unit, Batch], None],
) -> None:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(
        max_workers=jobs, initializer=_init_worker, initargs=(rules, engine_name, now, options)
    )
    try:
        pending: dict[Future[Batch], tuple[Source, Unit]] = {}
        for source, unit in units:
            if unit is not WAIT:
                pending[pool.submit(_work, unit)] = (source, unit)
            if pending and (unit is WAIT or len(pending) >= jobs * 3):
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    absorb(*pending.pop(fut), fut.result())
        for fut, (source, unit) in pending.items():
            absorb(source, unit, fut.result())
    except BaseException:
        # An error, Ctrl-C or SIGTERM: drop the queued units and end the workers now
        # rather than waiting for every unit already handed out.
        _stop_workers(pool)
        raise
    pool.shutdown()


def _in_parent_or_parallel(
    units: Iterator[tuple[Source, Unit]],
    state: _WorkerState,
    absorb: Callable[[Source, Unit, Batch], None],
    parallel: Callable[[Iterator[tuple[Source, Unit]]], None],
) -> None:
    """Worker processes only when the work is worth them. The parent reads units itself
    while fewer than ``READY_UNITS`` are waiting, and fewer than three or it has spent
    less than ``PARENT_SECONDS`` on them: a small scan (a few files, a folder of model files)
    never starts workers, and when they do start they are forked from a parent whose
    imports (the model analyzer, an archive reader) are already done. A unit read here
    may reveal more (a large zip's pieces): those go to the workers."""
    pending: deque[tuple[Source, Unit]] = deque()
    spent = 0.0
    more = True
    while True:
        while more and len(pending) < READY_UNITS:
            item = next(units, None)
            if item is None:
                more = False
            elif item[1] is WAIT:  # the source waits for what it handed out
                break
            else:
                pending.append(item)
        if len(pending) >= READY_UNITS or (len(pending) >= 3 and spent >= PARENT_SECONDS):
            parallel(itertools.chain(pending, units))
            return
        if not pending:
            if not more:
                return
            continue
        source, unit = pending.popleft()
        began = time.monotonic()
        absorb(source, unit, state.run(unit))
        spent += time.monotonic() - began


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


def _engine_name(name: str) -> str:
    from keyscope.detect.engine import hyperscan_available

    if name == "auto":
        return "hyperscan" if hyperscan_available() else "re"
    if name not in ("hyperscan", "re"):
        raise ValueError(f"unknown engine {name!r}")
    return name
