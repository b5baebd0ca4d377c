"""Helpers shared by the benchmark scripts (run.py, history.py, models.py, outputs.py).

Logging, running a command once and measuring it (wall, CPU, memory of its process
tree, the machine's load meanwhile), waiting for a quiet machine and redoing a run that
other processes disturbed, the machine's description, medians and number formatting,
pip installs. Standard library only; Linux (/proc) for the load and memory figures.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import random
import signal
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

TIME_BIN = Path("/usr/bin/time")  # GNU time: CPU and peak RSS of a command and its children
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


# --------------------------------------------------------------------------- one run


@dataclass
class Usage:
    """What one run of a command took. CPU figures are (user s, system s, max RSS KiB)."""

    wall: float  # seconds, from start to the exit of the direct child
    returncode: int  # negative: killed by that signal
    timed_out: bool
    timed: tuple[float, float, int] | None  # by /usr/bin/time: the command and its children
    rusage: tuple[float, float, int]  # of the direct child (/usr/bin/time itself, if used)
    orphans: tuple[float, float, int]  # adopted orphans reaped after the run (subreaper)
    busy: tuple[float, float] | None  # the whole machine's busy and steal CPU s meanwhile
    tree_rss_kb: int  # sampled peak of the process tree's summed RSS; 0 if not sampled
    rss_by_process: dict[str, dict[str, int]]


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux prctl PR_SET_CHILD_SUBREAPER), so that a helper a
    tool leaves running (e.g. a ``git cat-file`` whose parent exited without waiting for it)
    is still reaped here and its CPU time counted."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(36, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def reap_orphans(deadline: float) -> tuple[float, float, int]:
    """Wait (until the ``time.monotonic()`` deadline) for adopted orphans; their
    (user s, sys s, max RSS KiB)."""
    user = system = 0.0
    rss = 0
    while True:
        try:
            pid, _status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
            continue
        user += usage.ru_utime
        system += usage.ru_stime
        rss = max(rss, usage.ru_maxrss)
    return user, system, rss


def measure(
    argv: Sequence[str],
    *,
    cwd: Path,
    stdout: Path,
    stderr: Path,
    timeout: float,
    use_time: bool = True,
    sample: bool = True,
    interval: float = 0.1,
    subreaper: bool = False,
    env: dict[str, str] | None = None,
) -> Usage:
    """Run ``argv`` once in its own session, output to the files ``stdout`` and ``stderr``;
    after ``timeout`` s the session is killed. With ``use_time`` it runs under
    /usr/bin/time (its figures go to ``stdout`` with the suffix ``.time``). With
    ``sample``, a ``TreeRss`` samples the process tree every ``interval`` s: the child's
    tree, or with ``subreaper`` (see ``become_subreaper``) everything this process has
    adopted too, whose orphans are then reaped (up to 10 s) and counted."""
    time_file = stdout.with_suffix(".time")
    time_file.unlink(missing_ok=True)  # never read a figure left by an earlier run
    full = [str(TIME_BIN), "-f", "%e %U %S %M", "-o", str(time_file), *argv] if use_time else argv
    killed = threading.Event()
    finished = threading.Lock()

    with stdout.open("wb") as out, stderr.open("wb") as err:
        before = cpu_counters()
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(full),
            cwd=cwd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )

        def kill() -> None:
            with finished:
                if proc.returncode is None:
                    killed.set()
                    with contextlib.suppress(ProcessLookupError):  # the session of this run
                        os.killpg(proc.pid, signal.SIGKILL)

        sampler = (
            TreeRss(os.getpid(), skip={proc.pid}, interval=interval)
            if subreaper
            else TreeRss(proc.pid, include_root=not use_time, interval=interval)
        )
        if sample:
            sampler.start()
        timer = threading.Timer(timeout, kill)
        timer.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        with finished:
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        timer.cancel()
        orphans = reap_orphans(time.monotonic() + 10) if subreaper else (0.0, 0.0, 0)
        after = cpu_counters()
        if sample:
            sampler.stop.set()
            sampler.join()
    timed: tuple[float, float, int] | None = None
    if use_time and time_file.exists():
        lines = time_file.read_text().strip().splitlines()
        fields = lines[-1].split() if lines else []
        if len(fields) == 4 and fields[0].replace(".", "", 1).isdigit():
            timed = float(fields[1]), float(fields[2]), int(fields[3])
    return Usage(
        wall=wall,
        returncode=proc.returncode,
        timed_out=killed.is_set(),
        timed=timed,
        rusage=(usage.ru_utime, usage.ru_stime, usage.ru_maxrss),
        orphans=orphans,
        busy=(after[0] - before[0], after[1] - before[1]) if before and after else None,
        tree_rss_kb=sampler.peak_kb,
        rss_by_process=sampler.by_label(),
    )


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
