"""Writers at once, and a writer killed: parallel ``keyscope scan --db`` processes and
parallel recorders on one SQLite file (WAL, busy timeout) and one PostgreSQL
database (row locks, upserts) lose no update and enqueue each alert once; a scan
process killed while recording leaves whole batches and an unfinished scan, and the
next scan completes the inventory."""

from __future__ import annotations

import base64
import hashlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from keyscope.explain import explain
from keyscope.inventory import record
from keyscope.inventory.record import Recording
from keyscope.inventory.store import open_store
from keyscope.model import Finding, Location
from tests.inventory_support import connection_string, counts, leak, rows

SRC = Path(__file__).resolve().parents[1] / "src"
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _keyscope(*argv: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen([sys.executable, "-m", "keyscope", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _key(i: int) -> str:
    return base64.b64encode(hashlib.sha512(f"key {i}".encode()).digest()).decode()


def test_parallel_scan_processes_write_one_inventory(db_url: str, tmp_path: Path) -> None:
    shared = [_key(i) for i in range(120)]
    trees = []
    for w in range(4):
        tree = tmp_path / f"tree{w}"
        for i, key in enumerate(shared):
            leak(tree / f"shared{i}.env", f"acct{i}", key=key)
        for i in range(15):
            leak(tree / f"own{i}.env", f"own{w}x{i}")
        trees.append(tree)
    writers = [_keyscope("scan", "-q", "-j", "1", "--no-git", "--fail-on", "never",
                         "--format", "json", "-o", str(tmp_path / f"out{w}.json"),
                         f"--db={db_url}", str(tree)) for w, tree in enumerate(trees)]
    for w in writers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err.decode()
    got = counts(db_url)
    assert (got["scans"], got["credentials"], got["occurrences"], got["alerts"]) == (
        4, 120 + 60, 4 * 135, 180)
    assert all(s["finished_at"] for s in rows(db_url, "SELECT * FROM scans"))
    per_key = rows(db_url, "SELECT fingerprint, count(*) AS n FROM alerts GROUP BY fingerprint")
    assert {r["n"] for r in per_key} == {1} and len(per_key) == 180


def _findings(n: int, source: int) -> list[Finding]:
    """``n`` real explanations of fixed account keys, each seen once in ``source``."""
    out = []
    for i in range(n):
        [exp] = explain(connection_string(f"acct{i}", _key(i)), T0)
        loc = Location(path=f"w{source}/f{i}.env", line=1, column=1, end_line=1, end_column=2,
                       snippet="")
        out.append(Finding(exp.fingerprint, "azure-storage-connection-string", exp, [loc]))
    return out


def _writer(url: str, w: int, n: int) -> None:
    record.BATCH = 25  # many small transactions, so the writers interleave
    findings = _findings(n, w)
    with open_store(url) as store:
        rec = Recording.start(store, [f"w{w}"], {"writer": w}, T0 + timedelta(minutes=w))
        rec.record(findings)
        rec.finish(complete=True)


def test_parallel_recorders_lose_no_update(db_url: str) -> None:
    n, writers = 300, 4
    open_store(db_url).close()  # migrated once before they start
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(db_url, w, n)) for w in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    got = counts(db_url)
    assert (got["scans"], got["credentials"], got["occurrences"], got["alerts"]) == (
        writers, n, n * writers, n)
    last = {r["last_seen"] for r in rows(db_url, "SELECT last_seen FROM credentials")}
    first = {r["first_seen"] for r in rows(db_url, "SELECT first_seen FROM credentials")}
    assert last == {"2026-11-26T12:03:00Z"}  # the latest writer's time, never overwritten
    assert first <= {f"2026-11-26T12:0{w}:00Z" for w in range(writers)}
    sources = rows(db_url, "SELECT source, count(*) AS n, sum(present) AS p FROM occurrences "
                           "GROUP BY source")
    assert sorted((r["n"], r["p"]) for r in sources) == [(n, n)] * writers


def _poll(url: str) -> tuple[int, bool]:
    """(credentials recorded, whether the first scan finished)."""
    with open_store(url, migrate=False) as store:
        try:
            creds = int(store.scalar("SELECT count(*) FROM credentials"))
            done = store.scalar("SELECT finished_at FROM scans WHERE id = 1")
        except Exception:
            return 0, False
        return creds, done is not None


def test_a_scan_killed_while_recording_leaves_a_consistent_inventory(
    db_url: str, tmp_path: Path
) -> None:
    total = 1500
    tree = tmp_path / "tree"
    for i in range(total):
        leak(tree / f"d{i // 100}" / f"f{i}.env", f"acct{i}", key=_key(i))
    argv = ("scan", "-q", "-j", "1", "--no-git", "--fail-on", "never", "--format", "json",
            "-o", str(tmp_path / "out.json"), f"--db={db_url}", str(tree))
    proc = _keyscope(*argv)
    deadline = time.monotonic() + 240
    recorded = 0
    while time.monotonic() < deadline and proc.poll() is None:
        recorded, finished = _poll(db_url)
        if recorded and not finished:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(60)
    assert proc.returncode == -signal.SIGKILL, "the scan ended before it could be killed"

    with open_store(db_url) as store:
        [scan] = store.rows("SELECT * FROM scans")
        assert scan["finished_at"] is None and scan["complete"] == 0
        creds = int(store.scalar("SELECT count(*) FROM credentials"))
        assert 0 < creds < total and creds % record.BATCH == 0  # whole batches only
        # each recorded credential has its occurrence and its alert: nothing half-written
        assert store.scalar("SELECT count(*) FROM credentials c WHERE NOT EXISTS "
                            "(SELECT 1 FROM occurrences o WHERE o.credential_id = c.id)") == 0
        assert int(store.scalar("SELECT count(*) FROM alerts")) == creds
        if store.dialect == "sqlite":
            assert store.scalar("PRAGMA integrity_check") == "ok"
            assert store.rows("PRAGMA foreign_key_check") == []

    again = _keyscope(*argv)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err.decode()
    got = counts(db_url)
    assert (got["scans"], got["credentials"], got["occurrences"], got["alerts"]) == (
        2, total, total, total)
    per_key = rows(db_url, "SELECT count(*) AS n FROM alerts GROUP BY fingerprint")
    assert {r["n"] for r in per_key} == {1}
