"""Signals to a real ``python -m keyscope`` scan in progress: the workers end, no
traceback, and the -o file is written whole or not at all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.sdk import incident_url, new_key

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _tree(root: Path, files: int = 1200, copies: int = 13) -> Path:
    """Enough credentials that a two-worker scan runs for many seconds, in folders of
    400 files, so that the walk makes units of work for both workers (a scan of one
    unit is read without starting workers)."""
    tree = root / "tree"
    line = incident_url("signalacct", new_key()) + "\n"
    for i in range(files):
        folder = tree / f"d{i // 400}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:04d}.txt").write_text(line * copies)
    return tree


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_scan(tmp_path: Path, out: Path) -> tuple[subprocess.Popen[str], set[int]]:
    tree = _tree(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "keyscope", "scan", "-q", "-j", "2", "--format", "json",
         "-o", str(out), str(tree)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while len(workers) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the scan never started its workers"
        time.sleep(0.1)
        workers = _children(proc.pid)
    time.sleep(1.5)  # the workers are busy with the first batches
    assert proc.poll() is None, "the scan ended before the signal: make the tree bigger"
    return proc, workers


@pytest.mark.parametrize(("signum", "code", "word"), [
    (signal.SIGINT, 130, "interrupted"),
    (signal.SIGTERM, 143, "terminated"),
])
def test_signal_stops_workers_and_leaves_no_partial_output(
        tmp_path: Path, signum: int, code: int, word: str) -> None:
    out = tmp_path / "report.json"
    out.write_text("the previous report\n")
    proc, workers = _start_scan(tmp_path, out)
    os.kill(proc.pid, signum)
    started = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 15, "shutdown waited for the queued tasks"
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert err.strip() == f"keyscope: {word}"
    # the old report is untouched, and no temporary file is left behind
    assert out.read_text() == "the previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "tree"]
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "worker processes outlived the scan"


def test_ctrl_c_to_the_process_group_prints_no_worker_traceback(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the parent and every worker at once."""
    out = tmp_path / "report.json"
    proc, workers = _start_scan(tmp_path, out)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert not out.exists()
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)


def test_an_interrupted_json_lines_stream_ends_with_an_incomplete_line(tmp_path: Path) -> None:
    """JSON lines on standard output cannot be taken back: a stream cut short by a
    signal ends with an "incomplete" record instead of a summary."""
    tree = _tree(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "keyscope", "scan", "-q", "-j", "2", "--format", "jsonl",
         str(tree)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().decode()  # a finding was streamed: the scan is under way
    assert '"type": "finding"' in first, first
    os.kill(proc.pid, signal.SIGINT)
    # communicate() reads the pipe past what readline() buffered: the rest may start
    # inside a UTF-8 sequence, so it is decoded here, not by the pipe.
    out, err = proc.communicate(timeout=30)
    rest = out.decode(errors="replace")
    assert proc.returncode == 130, err
    last = json.loads(rest.splitlines()[-1])
    assert last["type"] == "incomplete" and last["reason"] == "interrupted"
    assert '"type": "summary"' not in rest
