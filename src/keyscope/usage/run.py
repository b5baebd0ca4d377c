"""Read storage logs and attribute each request to the watched credentials it was
made with: every file (or range of a large one) read by a worker process, each
worker's tallies merged in the parent. Memory stays flat whatever the logs' size."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from keyscope.usage.logfiles import MAX_LINE, Counts, LogFile, blocks, json_records, plan
from keyscope.usage.matching import match
from keyscope.usage.needles import Finder
from keyscope.usage.records import (
    LogRecord,
    Malformed,
    from_analytics,
    from_classic,
    from_csv_line,
    from_resource,
)
from keyscope.usage.tally import Tally
from keyscope.usage.watched import Watched


@dataclass
class UsageResult:
    """Each watched credential's tally (absent: never seen) and what was read."""

    watched: list[Watched]
    tallies: dict[int, Tally] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    files: int = 0
    seconds: float = 0.0


def finder_for(watched: Sequence[Watched]) -> Finder:
    return Finder([(n, i) for i, w in enumerate(watched) for n in w.needles()])


def find_usage(paths: Iterable[str | Path], watched: Sequence[Watched],
               jobs: int = 0) -> UsageResult:
    """Read every log under ``paths``; ``jobs`` processes (0: one per core)."""
    started = time.monotonic()
    jobs = jobs or os.cpu_count() or 1
    logs, skipped = plan(paths, jobs)
    result = UsageResult(list(watched), files=len({log.path for log in logs}))
    result.counts.skipped += skipped
    if jobs > 1 and len(logs) > 1:
        ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
        with ctx.Pool(min(jobs, len(logs)), initializer=_init, initargs=(list(watched),)) as pool:
            parts = list(pool.imap_unordered(_work, logs))
    else:
        finder = finder_for(watched)
        parts = [read_log(log, watched, finder) for log in logs]
    for counts, tallies in parts:
        result.counts.merge(counts)
        for idx, tally in tallies.items():
            mine = result.tallies.get(idx)
            if mine is None:
                result.tallies[idx] = tally
            else:
                mine.merge(tally)
    result.seconds = time.monotonic() - started
    return result


_STATE: dict[str, object] = {}


def _init(watched: list[Watched]) -> None:
    _STATE["watched"] = watched
    _STATE["finder"] = finder_for(watched)


def _work(log: LogFile) -> tuple[Counts, dict[int, Tally]]:
    watched = _STATE["watched"]
    finder = _STATE["finder"]
    assert isinstance(watched, list) and isinstance(finder, Finder)
    return read_log(log, watched, finder)


def read_log(log: LogFile, watched: Sequence[Watched],
             finder: Finder) -> tuple[Counts, dict[int, Tally]]:
    """One file or range: its counts and the tallies of the credentials seen in it."""
    counts = Counts()
    tallies: dict[int, Tally] = {}
    everyone = range(len(watched))

    def attribute(rec: LogRecord, who: Iterable[int]) -> None:
        for idx in who:
            w = watched[idx]
            found = match(rec, w)
            if found is not None:
                tally = tallies.get(idx)
                if tally is None:
                    tally = tallies[idx] = Tally()
                tally.add(rec, found[0], found[1], w.leaked_at)

    def element(obj: object) -> None:
        for rec in _records(obj):
            attribute(rec, everyone)

    try:
        if log.form == "json":
            json_records(log, counts, element)
            return counts, tallies
        for block, lo, hi in blocks(log, counts):
            for start, (end, who) in sorted(finder.lines(block, lo, hi).items()):
                if end - start > MAX_LINE:
                    counts.oversize += 1
                    continue
                counts.candidates += 1
                try:
                    records = parse_line(block[start:end], log)
                except Malformed:
                    counts.malformed += 1
                    continue
                for rec in records:
                    attribute(rec, sorted(who))
    except (OSError, EOFError, zlib.error) as exc:
        counts.skipped.append((log.path, f"read error (what came before was read): {exc}"))
    return counts, tallies


def parse_line(line: bytes, log: LogFile) -> list[LogRecord]:
    """The request(s) on one line of ``log``'s format."""
    try:
        text = line.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        raise Malformed("not UTF-8") from None
    if log.form == "classic":
        return [from_classic(text)]
    if log.form == "csv":
        return [from_csv_line(text, log.columns)]
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise Malformed("not a JSON line") from None
    return _records(obj)


def _records(obj: object) -> list[LogRecord]:
    if not isinstance(obj, dict):
        raise Malformed("not a JSON object")
    inner = obj.get("records")
    if isinstance(inner, list):  # {"records": […]}: the Event Hubs / archive envelope
        out: list[LogRecord] = []
        for item in inner:
            out += _records(item)
        return out
    if "TimeGenerated" in obj:
        return [from_analytics(obj)]
    return [from_resource(obj)]
