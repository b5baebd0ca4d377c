"""keyscope usage benchmark: generated storage logs (Azure Monitor resource-log JSON
lines and classic $logs v2.0 lines, half each), read by ``keyscope usage`` looking for
a few leaked tokens (one of them used once per 1,000 requests). Reports lines per
second and the peak RSS of the process tree (main process and workers), at two sizes
to show that memory does not grow with the logs. Target: at least 300,000 lines/s.

    python benchmarks/usage.py [--lines 5000000] [--small 1000000] [--rounds 3] [-j 0]

Writes benchmarks/usage-results.json and prints a table. Run from the project root
with keyscope's environment (azure-storage-blob mints the tokens).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "benchmarks")]

from common import fmt, logger, machine, measure, median, wait_quiet  # noqa: E402
from tests.storage_logs import (  # noqa: E402
    Request,
    classic_line,
    key_hash,
    resource_line,
    sas_hash,
)

ACCOUNT = "benchacct"
KEY = base64.b64encode(hashlib.sha512(b"usage benchmark key").digest()).decode()
T0 = datetime(2026, 11, 1, tzinfo=UTC)
FILE_LINES = 250_000  # lines per generated file
EVERY = 1000  # one request in this many is made with the leaked token
log = logger("usage")


def tokens() -> list[str]:
    """Five watched SAS URLs (the first is the one in use) and ten others in the logs."""
    from azure.storage.blob import generate_account_sas

    out = []
    for i in range(15):
        sas = generate_account_sas(ACCOUNT, KEY, resource_types="sco", permission="rl",
                                   services="b", expiry=datetime(2030, 1, 1, tzinfo=UTC)
                                   + timedelta(seconds=i * 37))
        out.append(f"https://{ACCOUNT}.blob.core.windows.net/data/f{i}.bin?{sas}")
    return out


def _request(i: int, url: str, when: datetime) -> Request:
    return Request(time=when, operation="GetBlob", status=200, status_text="Success",
                   classic_status="SASSuccess", url=url, ip=f"10.{i % 200}.{i % 250}.9",
                   port=40000 + i % 20000, user_agent="azsdk-python-storage-blob/12.19.0",
                   account=ACCOUNT, auth_type="SAS",
                   token_hash=f"key1({key_hash(KEY)}),SasSignature({sas_hash(url)})",
                   category="StorageRead", response_bytes=1000 + i % 7)


def generate(directory: Path, lines: int, urls: list[str]) -> int:
    """``lines`` log lines, half resource-log JSON, half $logs; the bytes written."""
    directory.mkdir(parents=True, exist_ok=True)
    used, others = urls[0], urls[5:]
    samples = {}
    for form, render in (("resource", resource_line), ("classic", classic_line)):
        # a template per token: the time and address vary per line
        samples[form] = [render(_request(0, u, T0)) for u in [used, *others]]
    written = 0
    for form in ("resource", "classic"):
        total = lines // 2
        stamp0 = T0.strftime("%Y-%m-%dT%H:%M:%S")
        for part in range(0, total, FILE_LINES):
            name = "PT1H.json" if form == "resource" else "000000.log"
            path = directory / form / f"{part // FILE_LINES:04d}" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            chunk = []
            for i in range(part, min(part + FILE_LINES, total)):
                template = samples[form][0 if i % EVERY == 0 else 1 + i % 10]
                when = (T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S")
                chunk.append(template.replace(stamp0, when, 1)
                             .replace("10.0.0.9:40000", f"10.{i % 200}.{i % 250}.9:{i % 60000}"))
            data = ("\n".join(chunk) + "\n").encode()
            path.write_bytes(data)
            written += len(data)
    return written


def run_once(directory: Path, urls: list[str], jobs: int, work: Path) -> dict[str, object]:
    argv = [sys.executable, "-m", "keyscope", "usage", "--logs", str(directory),
            "--format", "json", "-o", str(work / "out.json"), "-j", str(jobs)]
    for url in urls[:5]:
        argv += ["--credential", url]
    usage = measure(argv, cwd=ROOT, stdout=work / "stdout", stderr=work / "stderr",
                    timeout=3600, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    doc = json.loads((work / "out.json").read_text())
    return {"wall": usage.wall, "returncode": usage.returncode,
            "peak_rss_kb": usage.tree_rss_kb, "lines": doc["logs"]["lines"],
            "bytes": doc["logs"]["bytes"], "requests": doc["credentials"][0]["requests"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-j", "--jobs", type=int, default=0)
    args = parser.parse_args()
    urls = tokens()
    results: dict[str, object] = {}
    work = Path(tempfile.mkdtemp(prefix="keyscope-usage-bench-"))
    try:
        for label, lines in (("small", args.small), ("full", args.lines)):
            data = work / label
            log(f"generating {lines:,} lines")
            size = generate(data, lines, urls)
            rounds = []
            for r in range(args.rounds):
                wait_quiet(30, log)
                one = run_once(data, urls, args.jobs, work)
                log(f"{label} round {r + 1}: {one['wall']:.1f} s, "
                    f"{one['lines'] / one['wall']:,.0f} lines/s, "  # type: ignore[operator]
                    f"peak RSS {one['peak_rss_kb'] / 1024:.0f} MiB")  # type: ignore[operator]
                rounds.append(one)
            wall = median(r["wall"] for r in rounds)  # type: ignore[misc]
            assert wall is not None
            results[label] = {
                "lines": lines,
                "bytes": size,
                "rounds": rounds,
                "median_wall_s": wall,
                "lines_per_s": lines / wall,
                "median_peak_rss_kb": median(r["peak_rss_kb"] for r in rounds),  # type: ignore[misc]
                "attributed": rounds[0]["requests"],
                "expected": 2 * len(range(0, lines // 2, EVERY)),
            }
            shutil.rmtree(data)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    document = {"machine": machine().__dict__, "jobs": args.jobs or "one per core",
                "results": results}
    (ROOT / "benchmarks" / "usage-results.json").write_text(json.dumps(document, indent=2)
                                                            + "\n")
    print(f"{'size':<6} {'lines':>10} {'MB':>7} {'wall s':>7} {'lines/s':>10} {'peak MiB':>9}")
    for label, r in results.items():
        assert isinstance(r, dict)
        print(f"{label:<6} {fmt(r['lines'], 0):>10} {r['bytes'] / 1e6:>7.0f} "
              f"{r['median_wall_s']:>7.1f} {fmt(r['lines_per_s'], 0):>10} "
              f"{(r['median_peak_rss_kb'] or 0) / 1024:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
