#!/usr/bin/env python3
"""How the HTML report holds up at size: N credentials (default 10,000 account keys and
one SAS, the same bytes every run) scanned with ``--format html``; the page opened in
Debian's chromium (tests/browser/drive.mjs, playwright-core) ``--runs`` times: when it
becomes interactive (from navigation start), how long drawing takes, and how long a
search and a severity filter take (measured in the page). Writes
benchmarks/html-results.json and prints a table. See benchmarks/README.md.

    python benchmarks/html_report.py [--findings 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import fmt, logger, machine, median  # noqa: E402
from tests.browser import drive  # noqa: E402

log = logger("html")


def tree(where: Path, n: int) -> None:
    """``n`` connection strings with account keys, and an account SAS, from a fixed seed."""
    rnd = random.Random(18)
    lines = [
        f"S{i}=DefaultEndpointsProtocol=https;AccountName=bench{i:05d};"
        f"AccountKey={base64.b64encode(rnd.randbytes(64)).decode()};EndpointSuffix=core.windows.net"
        for i in range(n)
    ]
    where.mkdir(parents=True, exist_ok=True)
    (where / "settings.env").write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--findings", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "tree"
        tree(src, args.findings)
        page = Path(tmp) / "report.html"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "keyscope", "scan", "-q", "-j", "1", "--now",
                        "2026-11-26T00:00:00Z", "--format", "html", "-o", str(page), str(src)],
                       env=env, check=False)
        scan_seconds = time.perf_counter() - t
        size = page.stat().st_size
        log(f"{args.findings} findings: scan and page {scan_seconds:.1f} s, {size:,} bytes")
        runs = []
        for i in range(args.runs):
            run = drive({"url": page.as_uri(), "steps": [
                {"fill": "#f-search", "value": "bench04242"},
                {"fill": "#f-search", "value": ""},
                {"check": "#f-sev-critical", "value": False},
            ]})
            if run["errors"] or run["requests"] != [page.as_uri()]:
                raise SystemExit(f"the page misbehaved: {run['errors']} {run['requests']}")
            r = {"interactive_ms": run["load"]["report"]["interactiveAt"],
                 "render_ms": run["load"]["report"]["renderMs"],
                 "search_ms": run["steps"][0]["report"]["applyMs"],
                 "filter_ms": run["steps"][2]["report"]["applyMs"]}
            log(f"run {i + 1}: " + ", ".join(f"{k} {v:.0f}" for k, v in r.items()))
            runs.append(r)
    result = {
        "findings": args.findings,
        "page_bytes": size,
        "scan_and_page_seconds": round(scan_seconds, 2),
        "median": {k: median(r[k] for r in runs) for k in runs[0]},
        "runs": runs,
        "chromium": subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True,
                                   text=True, check=False).stdout.strip(),
        "machine": asdict(machine()),
    }
    (ROOT / "benchmarks" / "html-results.json").write_text(json.dumps(result, indent=2) + "\n")
    m = result["median"]
    print("| findings | page | scan + page | interactive | drawing | search | filter |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {args.findings:,} | {fmt(size / 1e6)} MB | {fmt(scan_seconds)} s | "
          f"{fmt(m['interactive_ms'], 0)} ms | {fmt(m['render_ms'], 0)} ms | "
          f"{fmt(m['search_ms'], 0)} ms | {fmt(m['filter_ms'], 0)} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
