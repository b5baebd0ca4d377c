"""``--cluster``: every target a task on a Dask cluster, the results merged into one
``ScanResult`` exactly as one machine would have merged them (``scan.merge`` over
the findings in target order), streamed to ``on_finding`` as each target ends (one
secret at one place once), and with ``--db`` written to the inventory target by
target so that an interrupted run resumes (``resume.py``)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TextIO

from keyscope.errors import KeyscopeError
from keyscope.fleet.pieces import DEFAULT_SPLIT_BYTES, warc_pieces
from keyscope.fleet.progress import Tally, TargetsLine
from keyscope.fleet.task import TargetResult
from keyscope.model import (
    Finding,
    Location,
    ModelFinding,
    RawFinding,
    RuleInfo,
    ScanResult,
    ScanStats,
    Skipped,
)

if TYPE_CHECKING:
    from keyscope.fleet.resume import TargetLog
    from keyscope.fleet.task import Task
    from keyscope.inventory.record import Recording
    from keyscope.scan import ScanOptions

RESUMED = "finished by an earlier run of this target list (resumed from the inventory)"


@dataclass(frozen=True)
class ClusterOptions:
    """Where the tasks run: ``tcp://HOST:PORT`` (a running scheduler) or ``local:N``."""

    address: str
    quiet: bool = False
    # a larger gzip web archive: tasks by byte ranges; a repository with a larger
    # history: tasks by ranges of blob ids (``repo_pieces.py``)
    split_bytes: int = DEFAULT_SPLIT_BYTES


def scan_fleet(
    targets: Sequence[str],
    options: ScanOptions,
    cluster: ClusterOptions,
    *,
    on_finding: Callable[[RawFinding], None] | None = None,
    recording: Recording | None = None,
    stream: TextIO | None = None,
) -> tuple[ScanResult, bool]:
    """Scan each target as a task; the merged result, and whether targets finished
    by an interrupted earlier run were left out (their findings are in the
    inventory already)."""
    from keyscope.detect.rules import load_rules
    from keyscope.explain import resolve_now
    from keyscope.fleet.cluster import Cluster
    from keyscope.scan import merge

    started = time.monotonic()
    options = replace(options, now=resolve_now(options.now))  # one clock for every worker
    rules = load_rules(options.rule_dirs)  # a bad --rules fails here, before any task
    targets = list(dict.fromkeys(targets))
    if "-" in targets:
        raise KeyscopeError("--cluster: standard input (-) cannot be a task's target")
    tasks: list[Task] = []
    for target in targets:
        tasks.extend(warc_pieces(target, cluster.split_bytes) or [target])
    log, finished = _resume(targets, options, recording)
    todo = [t for t in tasks if log is None or _shown(t) not in finished]
    resumed = [t for t in tasks if t not in todo]
    # results in target order, a repository's pieces where the repository was
    order = {i: (i, -1) for i in range(len(todo))}
    results: dict[tuple[int, int], TargetResult] = {}
    tally = Tally(total=len(tasks), done=len(tasks) - len(todo))
    err = stream or sys.stderr
    line = None if cluster.quiet else TargetsLine(err, terminal=err.isatty())
    seen: set[tuple[str, Location]] = set()
    fingerprints: set[str] = set()

    def taken(i: int, result: TargetResult) -> list[Task]:
        if result.pieces:  # a large repository: its pieces are tasks now
            fresh = [p for p in result.pieces if log is None or _shown(p) not in finished]
            resumed.extend(p for p in result.pieces if p not in fresh)
            for k, piece in enumerate(fresh):
                order[len(todo) + k] = (order[i][0], piece.index)
            todo.extend(fresh)
            tally.total += len(result.pieces) - 1
            tally.done += len(result.pieces) - len(fresh)
            if line:
                line.update(tally)
            return list(fresh)
        results[order[i]] = result
        tally.done += 1
        tally.failed += result.failed is not None
        tally.bytes += result.bytes
        for raw in result.raw():
            key = (raw.explanation.fingerprint, raw.location)
            if key not in seen:
                seen.add(key)
                fingerprints.add(key[0])
                if on_finding:
                    on_finding(raw)
        tally.findings = len(fingerprints)
        if recording is not None and log is not None:
            recording.record(result.findings)
            log.done(result.target, recording.now, failed=result.failed,
                     size=result.bytes, findings=len(result.findings))  # fmt: skip
        if line:
            tally.running = runner.running()
            line.update(tally)
        return []

    runner = Cluster(cluster.address)
    try:
        if line:
            line.announce(runner.address, runner.dashboard())
        runner.run(list(todo), options, taken, cluster.split_bytes)
    finally:
        runner.close()
        if line:
            tally.running = 0
            line.update(tally, last=True)
            line.close()
    if log is not None:
        log.forget()
    ordered = [results[i] for i in sorted(results)]
    result = _merged(ordered, merge, rules, options, time.monotonic() - started)
    result.skipped[:0] = [Skipped(_shown(t), RESUMED) for t in resumed]
    return result, bool(resumed)


def _shown(task: Task) -> str:
    """A task as the inventory keeps it: the target (a piece: with its byte or blob
    range), without credentials."""
    from keyscope.fleet.resume import shown_target

    return shown_target(task if isinstance(task, str) else task.name)


def _resume(
    targets: list[str], options: ScanOptions, recording: Recording | None
) -> tuple[TargetLog | None, dict[str, int]]:
    """The target log of this list in the inventory, and the targets it finished."""
    if recording is None:
        return None, {}
    from keyscope.fleet.resume import TargetLog, run_key
    from keyscope.inventory.record import describe

    settings = {k: v for k, v in describe(options).items() if k not in ("jobs",)}
    log = TargetLog(recording.store, run_key(targets, settings), recording.scan_id)
    return log, log.finished()


def _merged(
    results: list[TargetResult],
    merge: Callable[[list[RawFinding]], list[Finding]],
    rules: tuple[RuleInfo, ...],
    options: ScanOptions,
    seconds: float,
) -> ScanResult:
    stats = ScanStats(seconds=seconds, rejected=Counter())
    skipped: list[Skipped] = []
    raw: list[RawFinding] = []
    models: list[ModelFinding] = []
    cut: dict[str, list[str]] = {}
    for r in results:
        stats.files += r.files
        stats.bytes += r.bytes
        stats.rejected.update(r.rejected)
        if r.failed:
            skipped.append(Skipped(_shown(r.target), r.failed))
        skipped.extend(r.skipped)
        raw.extend(r.raw())
        models.extend(r.model_findings)
        cut.update(r.history_cut)
    models.sort(key=lambda m: (-m.severity, m.path, m.where))
    engine = next((r.engine for r in results if r.engine), options.engine)
    assert options.now is not None
    return ScanResult(
        findings=merge(raw), skipped=skipped, stats=stats, rules=rules,
        engine=engine, now=options.now, model_findings=models, history_cut=cut,
    )  # fmt: skip
