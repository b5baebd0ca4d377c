"""Helpers shared by the benchmark scripts (run.py, history.py, models.py, outputs.py).

Logging, the machine's load and waiting for a quiet machine, redoing a timed run that
other processes disturbed, sampling the memory of a process tree, the machine's
description, medians and number formatting, pip installs. Standard library only.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

QUIET = 0.25  # cores used by other processes below which the machine counts as idle
DISTURBED = 0.3  # other processes using more cores than this during a run spoil its timing

Log = Callable[[str], None]
T = TypeVar("T")


def logger(name: str, *, clock: bool = True) -> Log:
    """A ``log(message)`` that writes ``[name HH:MM:SS] message`` (``[name] message``
    without the clock) to standard error, flushed."""

    def log(message: str) -> None:
        stamp = f" {datetime.now().strftime('%H:%M:%S')}" if clock else ""
        print(f"[{name}{stamp}] {message}", file=sys.stderr, flush=True)

    return log


# --------------------------------------------------------------------------- subprocesses


def first_line(argv: Sequence[str], *, missing: str = "unknown", timeout: float = 60) -> str:
    """The first line a command prints (standard output, else standard error), or
    ``missing`` when it prints nothing, cannot start or runs over ``timeout`` seconds."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return missing
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if text else missing


def pip_install(
    python: Path, requirements: Iterable[str], *, capture: bool = False
) -> subprocess.CompletedProcess[str]:
    """``pip install --quiet`` into the environment of the interpreter ``python``. A failure
    raises, unless ``capture``: then the output is returned with the exit status."""
    return subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *requirements,
        ],
        check=not capture,
        capture_output=capture,
        text=True,
    )


# --------------------------------------------------------------------------- machine load


def cpu_counters() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in first[1:9])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def machine_busy() -> float | None:
    """Busy CPU seconds of the whole machine since boot."""
    counters = cpu_counters()
    return None if counters is None else counters[0]


def machine_load(window: float = 1.0) -> float | None:
    """Cores in use by all processes over ``window`` seconds."""
    before = machine_busy()
    time.sleep(window)
    after = machine_busy()
    return None if before is None or after is None else (after - before) / window


def wait_quiet(max_wait: float, log: Log, quiet: float = QUIET) -> None:
    """Wait (up to ``max_wait`` s) until other processes use less than ``quiet`` cores:
    the machine may be shared with other benchmarks and test runs."""
    deadline = time.monotonic() + max_wait
    while True:
        load = machine_load()
        if load is None or load < quiet:
            return
        if time.monotonic() > deadline:
            log(f"warning: {load:.1f} cores busy with other processes; timings will suffer")
            return
        log(f"machine busy ({load:.1f} cores in use by other processes); waiting")
        time.sleep(random.uniform(4, 9))  # jittered, not in step with another waiting benchmark


def wait_load_average(limit: float, below: float = 1.0) -> float:
    """Wait up to ``limit`` seconds for the 1-minute load average to fall below ``below``;
    return the load average then."""
    deadline = time.monotonic() + limit
    while os.getloadavg()[0] >= below and time.monotonic() < deadline:
        time.sleep(5)
    return round(os.getloadavg()[0], 2)


def until_undisturbed(
    once: Callable[[], T],
    other_cores: Callable[[T], float | None],
    *,
    quiet_wait: float,
    retries: int,
    label: str,
    log: Log,
) -> tuple[T, int]:
    """Run ``once()``. With ``quiet_wait``, first wait (up to that many seconds) for an
    idle machine, and redo a run during which other processes used more than
    ``DISTURBED`` cores (``other_cores(result)``; ``None``: keep it), at most ``retries``
    times. The last result and how many runs were redone."""
    attempt = 0
    while True:
        if quiet_wait:
            wait_quiet(quiet_wait, log)
        result = once()
        other = other_cores(result)
        if not quiet_wait or other is None or other <= DISTURBED:
            return result, attempt
        if attempt >= retries:
            return result, attempt
        log(f"{label}: other processes used {other:.1f} cores; repeating the run")
        attempt += 1


# --------------------------------------------------------------------------- memory


def process_label(pid: int) -> str:
    """``git rev-list``, ``git cat-file --batch``, ``python`` ...: what a process is."""
    try:
        args = Path("/proc", str(pid), "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode("utf-8", "replace") for a in args if a]
    if not words:
        return "?"
    name = Path(words[0]).name
    if name == "git":
        rest = words[1:]
        while rest[:1] in (["-C"], ["-c"]):
            rest = rest[2:]
        sub = [w for w in rest[:3] if w.startswith("--batch") or not w.startswith("-")][:2]
        return "git " + " ".join(w.split("=")[0] for w in sub)
    if name.startswith("python"):
        return (
            "python (keyscope)"
            if "keyscope" in " ".join(words) or "spawn" in " ".join(words)
            else "python"
        )
    return name


class TreeRss(threading.Thread):
    """Peak of the summed RSS of a process tree (Linux /proc), sampled every 50 ms for the
    first 2 s, then every ``interval`` s: the descendants of ``root_pid`` (and the root
    itself with ``include_root``), except the processes in ``skip`` (e.g. /usr/bin/time).
    Also the peak of each process, by kind (``by_label``)."""

    def __init__(
        self,
        root_pid: int,
        *,
        include_root: bool = False,
        skip: Iterable[int] = (),
        interval: float = 0.1,
    ) -> None:
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.include_root = include_root
        self.skip = set(skip)
        self.interval = interval
        self.peak_kb = 0
        self.per_pid: dict[int, int] = {}
        self.labels: dict[int, str] = {}
        self.stop = threading.Event()
        self.page_kb = os.sysconf("SC_PAGE_SIZE") // 1024

    def processes(self) -> list[int]:
        """The tree's processes now, minus ``skip``."""
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path("/proc", entry.name, "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        found: list[int] = []
        stack = [self.root_pid] if self.include_root else list(children.get(self.root_pid, []))
        while stack:
            pid = stack.pop()
            stack.extend(children.get(pid, []))
            if pid not in self.skip:
                found.append(pid)
        return found

    def sample(self) -> None:
        total = 0
        for pid in self.processes():
            try:
                rss = int(Path("/proc", str(pid), "statm").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
            total += rss
            if pid not in self.labels:
                self.labels[pid] = process_label(pid)
            self.per_pid[pid] = max(self.per_pid.get(pid, 0), rss * self.page_kb)
        self.peak_kb = max(self.peak_kb, total * self.page_kb)

    def by_label(self) -> dict[str, dict[str, int]]:
        """Per kind of process: how many there were and the largest one's peak RSS (KiB)."""
        out: dict[str, dict[str, int]] = {}
        for pid, peak in self.per_pid.items():
            entry = out.setdefault(self.labels.get(pid, "?"), {"processes": 0, "peak_kb": 0})
            entry["processes"] += 1
            entry["peak_kb"] = max(entry["peak_kb"], peak)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]["peak_kb"]))

    def run(self) -> None:
        if not Path("/proc/self/statm").exists():
            return
        started = time.monotonic()
        while not self.stop.wait(0.05 if time.monotonic() - started < 2 else self.interval):
            self.sample()


# --------------------------------------------------------------------------- the machine


@dataclass(frozen=True)
class Machine:
    """What the results say about the machine; ``None`` where /proc does not tell."""

    nproc: int | None
    cpu: str | None  # /proc/cpuinfo "model name"
    ram_bytes: int | None  # /proc/meminfo MemTotal
    os: str
    python: str


def machine() -> Machine:
    cpu: str | None = None
    ram: int | None = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
    except OSError:
        pass
    return Machine(os.cpu_count(), cpu, ram, platform.platform(), platform.python_version())


# --------------------------------------------------------------------------- numbers


def median(values: Iterable[float | int | None]) -> float | None:
    """The median of the values that are not ``None``; ``None`` when there are none."""
    clean = [v for v in values if v is not None]
    return statistics.median(clean) if clean else None


def fmt(value: Any, digits: int = 1, *, missing: str = "–", grouped: bool = True) -> str:
    """A table cell: ``missing`` for ``None``, floats with ``digits`` decimals, numbers
    with thousands separators when ``grouped``; anything else as ``str``."""
    if value is None:
        return missing
    comma = "," if grouped else ""
    if isinstance(value, float):
        return f"{value:{comma}.{digits}f}"
    if isinstance(value, int) and grouped:
        return f"{value:,}"
    return str(value)
