#!/usr/bin/env python3
"""``--cluster`` throughput: what one Dask worker scans per second on this machine.

Run from the project root with keyscope's own interpreter (the ``test`` extra brings
``distributed`` and warcio)::

    .venv/bin/python benchmarks/cluster.py            # build (cached), measure, print
    .venv/bin/python benchmarks/cluster.py --runs 1   # quicker

Corpus (``benchmarks/.work/cluster/``): ``--repos`` bare mirrors of this project's
own repository (its whole history: a real, mid-sized repository), and one web
archive of ``--warc-mb`` MiB of HTML-like text written by warcio, gzip per record (as
Common Crawl's are). Each case runs ``keyscope scan --targets … --cluster local:N``
for N = 1 and 2 workers, and once on one machine with ``-j 1``, taking turns, and
``--runs`` times; the medians of wall time and CPU time (the scan's whole process tree:
scheduler, workers and client) are reported, with the fixed cost of a cluster scan (a
one-file target list) measured the same way. Results: ``benchmarks/cluster-results.json``;
``docs/scale.md`` does the arithmetic on them. The repositories are scanned whole
(``--split-size 0``).

``--split-repo``: one repository alone (this project's), whole and in pieces
(``--split-size 4M``: at 3966d75, 31 MiB of blob content in 8 ranges of blob ids), on
one machine and on 1 and 2 local workers; results in
``benchmarks/cluster-split-results.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is not a package

from common import fmt, logger, machine, machine_load, median

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work" / "cluster"
RESULTS = ROOT / "benchmarks" / "cluster-results.json"
SPLIT_RESULTS = ROOT / "benchmarks" / "cluster-split-results.json"
log = logger("cluster")


def build(repos: int, warc_mb: int) -> dict[str, Path]:
    WORK.mkdir(parents=True, exist_ok=True)
    lists = {"repos": WORK / "repos.txt", "warc": WORK / "warc.txt", "tiny": WORK / "tiny.txt"}
    names = []
    for i in range(repos):
        mirror = WORK / f"repo{i:03}.git"
        if not mirror.exists():
            subprocess.run(["git", "clone", "-q", "--mirror", "--no-local", str(ROOT), str(mirror)],
                           check=True)  # fmt: skip
        names.append(str(mirror))
    lists["repos"].write_text("\n".join(names) + "\n")
    warc = WORK / f"crawl-{warc_mb}m.warc.gz"
    if not warc.exists():
        log(f"writing {warc.name}")
        warc.write_bytes(_warc(warc_mb << 20))
    lists["warc"].write_text(f"{warc}\n")
    tiny = WORK / "tiny.txt.in"
    tiny.write_text("nothing here\n")
    lists["tiny"].write_text(f"{tiny}\n")
    return lists


def _warc(size: int) -> bytes:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    rng = random.Random(19)
    words = ["<div>", "</div>", "<a href='/x'>", "</a>", "the", "of", "and", "page", "news",
             "data", "var", "function", "return", "class=\"nav\"", "2026", "login", "{", "}"]
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    written = k = 0
    while written < size:
        body = " ".join(rng.choice(words) for _ in range(rng.randint(2000, 12000))).encode()
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        record = writer.create_warc_record(f"https://site{k % 97}.example/p{k}", "response",
                                           payload=io.BytesIO(body), http_headers=http)  # fmt: skip
        writer.write_record(record)
        written += len(body)
        k += 1
    return buf.getvalue()


def run(args: list[str]) -> dict[str, Any]:
    """One scan: wall and CPU seconds of its process tree, and its stats."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "keyscope", "scan", "-q", "--format", "json",
                           "--fail-on", "never", *args],
                          capture_output=True, text=True, env=env, check=True)  # fmt: skip
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    stats = json.loads(done.stdout)["stats"]
    return {"wall": round(wall, 3), "cpu": round(cpu, 3), "files": stats["files"],
            "bytes": stats["bytes"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=16)
    parser.add_argument("--warc-mb", type=int, default=96)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--split-repo", action="store_true",
                        help="one repository, whole and in pieces (see above)")  # fmt: skip
    opts = parser.parse_args()
    lists = build(1 if opts.split_repo else opts.repos, opts.warc_mb)
    cases: dict[str, list[str]] = {}
    if opts.split_repo:
        base = ["--targets", str(lists["repos"]), "--max-file-size", "1G"]
        cases["repo -j 1"] = [*base, "-j", "1"]
        for n in (1, 2):
            cluster = [*base, "--cluster", f"local:{n}"]
            cases[f"repo local:{n} whole"] = [*cluster, "--split-size", "0"]
            cases[f"repo local:{n} pieces"] = [*cluster, "--split-size", "4M"]
    for what in () if opts.split_repo else ("tiny", "repos", "warc"):
        base = ["--targets", str(lists[what]), "--max-file-size", "1G"]
        cases[f"{what} -j 1"] = [*base, "-j", "1"]
        split = "0" if what == "repos" else "4M"  # repositories whole
        for n in (1, 2):
            cases[f"{what} local:{n}"] = [*base, "--cluster", f"local:{n}", "--split-size", split]
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in cases}
    loads = []
    for r in range(opts.runs):
        for name, args in cases.items():  # the cases take turns
            samples[name].append(run(args))
            log(f"run {r + 1}: {name}: {samples[name][-1]}")
        loads.append(machine_load())
    out: dict[str, Any] = {"machine": machine().__dict__, "repos": opts.repos,
                           "warc_mb": opts.warc_mb, "other_load_cores": loads, "cases": {}}
    for name, runs in samples.items():
        out["cases"][name] = {"wall": median(r["wall"] for r in runs),
                              "cpu": median(r["cpu"] for r in runs),
                              "files": runs[0]["files"], "bytes": runs[0]["bytes"], "runs": runs}
    (SPLIT_RESULTS if opts.split_repo else RESULTS).write_text(json.dumps(out, indent=2) + "\n")
    print(f"{'case':<22} {'wall s':>8} {'cpu s':>8} {'files':>8} {'MiB':>8}")
    for name, c in out["cases"].items():
        print(f"{name:<22} {fmt(c['wall'], 2):>8} {fmt(c['cpu'], 2):>8} {fmt(c['files']):>8} "
              f"{fmt(c['bytes'] / 2**20, 1):>8}")


if __name__ == "__main__":
    main()
