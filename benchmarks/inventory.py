"""Inventory benchmark: recording 100,000 occurrences of 10,000 credentials, then an
unchanged rescan, on SQLite and on PostgreSQL (a throwaway server started as the
tests start it: tests/postgres.py). Target: under 10 s per recording on each; the
rescan must add a scan row and nothing else.

    python benchmarks/inventory.py [--rounds 3] [--credentials 10000] [--per 10]

Writes benchmarks/inventory-results.json and prints a table. Run from the project
root with keyscope's environment (psycopg from the ``postgres`` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "benchmarks")]

from common import fmt, logger, machine, median, wait_quiet  # noqa: E402
from tests.postgres import Postgres  # noqa: E402

from keyscope.analyze.fingerprint import fingerprint  # noqa: E402
from keyscope.explain import explain  # noqa: E402
from keyscope.inventory.record import Recording  # noqa: E402
from keyscope.inventory.store import Store, open_store  # noqa: E402
from keyscope.model import Finding, GitProvenance, Location  # noqa: E402

TABLES = ("scans", "credentials", "occurrences", "verifications", "triage_events", "alerts",
          "deliveries")
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KEY = "A" * 86 + "=="  # one explanation, reused: recording does not depend on its text
log = logger("inventory")


def findings(credentials: int, per: int) -> list[Finding]:
    """``credentials`` findings of ``per`` locations each; every other one from git."""
    [base] = explain(
        "DefaultEndpointsProtocol=https;AccountName=benchacct;AccountKey="
        + KEY.replace("A", "B", 1) + ";EndpointSuffix=core.windows.net", T0)
    out = []
    for i in range(credentials):
        fp = fingerprint("account-key", f"bench secret {i}")
        locations = []
        for j in range(per):
            git = None
            if j % 2:
                git = GitProvenance(blob=f"{i:020x}{j:020x}", commit=f"{i * per + j:040x}",
                                    author=f"dev{j}", email=f"dev{j}@example.org",
                                    committer=f"dev{j}")
            locations.append(Location(path=f"repo/svc{i % 50}/file{i}-{j}.env", line=j + 1,
                                      column=1, end_line=j + 1, end_column=90, snippet="",
                                      git=git))
        out.append(Finding(fp, "azure-storage-connection-string",
                           replace(base, fingerprint=fp), locations))
    return out


def count(url: str) -> dict[str, int]:
    with open_store(url) as store:
        return {t: int(store.scalar(f"SELECT count(*) FROM {t}")) for t in TABLES}


def _backend_cpu(store: Store) -> float:
    """CPU seconds of the PostgreSQL backend serving ``store`` (0 for SQLite)."""
    if store.dialect != "postgresql":
        return 0.0
    pid = int(store.scalar("SELECT pg_backend_pid()"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def record_once(url: str, found: list[Finding], now: datetime) -> tuple[float, float, float]:
    """(wall seconds, this process's CPU seconds, the server's CPU seconds)."""
    with open_store(url) as store:
        started, cpu, server = time.perf_counter(), time.process_time(), _backend_cpu(store)
        recording = Recording.start(store, ["repo"], {"benchmark": True}, now)
        recording.record(found)
        recording.finish(complete=True)
        return (time.perf_counter() - started, time.process_time() - cpu,
                _backend_cpu(store) - server)


def run(name: str, make_url: Callable[[], str], found: list[Finding], rounds: int,
        wait: float) -> dict[str, object]:
    firsts: list[tuple[float, float, float]] = []
    rescans: list[tuple[float, float, float]] = []
    loads, rows_ok, before = [], True, {}
    for r in range(rounds):
        wait_quiet(wait, log)
        loads.append(round(os.getloadavg()[0], 2))
        url = make_url()
        first = record_once(url, found, T0)
        before = count(url)
        rescan = record_once(url, found, T0 + timedelta(hours=1))
        after = count(url)
        added = {t: after[t] - before[t] for t in TABLES if after[t] != before[t]}
        rows_ok &= added == {"scans": 1}
        log(f"{name} round {r + 1} (load average {loads[-1]}): record {first[0]:.2f} s "
            f"(CPU {first[1]:.2f} s here, {first[2]:.2f} s server), unchanged rescan "
            f"{rescan[0]:.2f} s (CPU {rescan[1]:.2f} s, {rescan[2]:.2f} s server), "
            f"rows added by the rescan {added}")
        firsts.append(first)
        rescans.append(rescan)
    return {
        "record": {"wall": [f[0] for f in firsts], "cpu": [f[1] for f in firsts],
                   "server_cpu": [f[2] for f in firsts]},
        "rescan": {"wall": [f[0] for f in rescans], "cpu": [f[1] for f in rescans],
                   "server_cpu": [f[2] for f in rescans]},
        "record_median": median(f[0] for f in firsts),
        "rescan_median": median(f[0] for f in rescans),
        "load_average_at_start": loads,
        "rescan_adds_only_a_scan_row": rows_ok, "rows": before,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--credentials", type=int, default=10_000)
    parser.add_argument("--per", type=int, default=10, help="occurrences per credential")
    parser.add_argument("--wait", type=float, default=120,
                        help="wait up to this long for other processes to go quiet")
    args = parser.parse_args()
    found = findings(args.credentials, args.per)
    log(f"{len(found)} credentials, {sum(len(f.locations) for f in found)} occurrences")
    work = Path(tempfile.mkdtemp(prefix="keyscope-inventory-bench-"))
    server = Postgres()
    results: dict[str, object] = {}
    try:
        server.start()
        counter = iter(range(1, 1000))
        results["sqlite"] = run("sqlite", lambda: str(work / f"inv{next(counter)}.sqlite3"),
                                found, args.rounds, args.wait)
        results["postgresql"] = run("postgresql", server.database, found, args.rounds,
                                    args.wait)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    document = {
        "credentials": args.credentials,
        "occurrences": args.credentials * args.per,
        "rounds": args.rounds,
        "target_seconds": 10,
        "machine": asdict(machine()),
        "results": results,
    }
    (ROOT / "benchmarks" / "inventory-results.json").write_text(
        json.dumps(document, indent=2) + "\n")
    print(f"{'database':<12} {'record (median s)':>18} {'rescan (median s)':>18}  rescan rows")
    for name, r in results.items():
        assert isinstance(r, dict)
        print(f"{name:<12} {fmt(r['record_median'], 2):>18} {fmt(r['rescan_median'], 2):>18}  "
              f"{'scan row only' if r['rescan_adds_only_a_scan_row'] else 'MORE'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
