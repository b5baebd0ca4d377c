#!/usr/bin/env python3
"""Websites and web archives benchmark: ``keyscope crawl`` of the local test site, and
``keyscope scan`` of a web archive of at least 1 GB next to the plain-file scan of the
same bytes.

Run from the project root with keyscope's own interpreter (the ``test`` extra: warcio
writes the archive, the Azure SDK signs the planted tokens, esbuild from
``tests/site`` builds the site's bundle)::

    .venv/bin/python benchmarks/crawl.py               # build (cached), measure, report
    .venv/bin/python benchmarks/crawl.py --quick       # an archive of ~100 MB, 1 round

The crawl: the site of ``tests/crawl_site.py`` on loopback (every planted token must
be found), ``--rate 0``. The archive (``benchmarks/.work/crawl/``): response records
written by warcio whose bodies are real text, the interpreter's installed packages
(``.py``, ``.txt``, ``.json`` … files), repeated under other host names until the
archive reaches the target size, with a token planted every 1000 records; the same
bodies are also written as plain files. Three forms are scanned with ``-j 1``: the
uncompressed ``.warc``, the ``.warc.gz`` (gzip per record) and the folder of plain
files; the runs take turns, and medians are reported. Results:
``benchmarks/crawl-results.json`` and ``benchmarks/CRAWL.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # benchmarks/ is not a package
sys.path.insert(0, str(ROOT))  # tests/ (the site, the token signer)

from common import fmt, logger, machine, measure, median  # noqa: E402

WORK = HERE / ".work" / "crawl"
RESULTS = HERE / "crawl-results.json"
REPORT = HERE / "CRAWL.md"
MB = 1000 * 1000
TEXT = (".py", ".pyi", ".txt", ".md", ".rst", ".json", ".h", ".cpp", ".js", ".html", ".css",
        ".yaml", ".toml", ".cfg", ".ini")  # fmt: skip
PLANT_EVERY = 1000
log = logger("crawl")


def keyscope(*args: str) -> list[str]:
    return [sys.executable, "-m", "keyscope", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


# --------------------------------------------------------------------------- the crawl


def bench_crawl(rounds: int) -> dict[str, Any]:
    """Crawl the test site ``rounds`` times; pages, bytes, seconds, tokens found."""
    from urllib.parse import parse_qs, urlsplit

    from tests.crawl_site import SiteServer, build_site

    site_root = WORK / "site"
    shutil.rmtree(site_root, ignore_errors=True)
    site_root.mkdir(parents=True)
    runs: list[dict[str, Any]] = []
    with SiteServer(None, {}) as other:
        tokens = build_site(site_root, other.url)
        other.tokens = tokens
        with SiteServer(site_root / "www", tokens, other.url) as site:
            for n in range(rounds):
                site.log.clear()
                out, err = WORK / "crawl.json", WORK / "crawl.err"
                usage = measure(
                    keyscope("crawl", site.url + "/", "--allow-internal", "--rate", "0",
                             "--scope", "same-origin", "--timeout", "1", "--max-file-size",
                             "1M", "--format", "json", "--show-secrets", "-j", "1"),
                    cwd=ROOT, stdout=out, stderr=err, timeout=600, env=env(),
                )  # fmt: skip
                doc = json.loads(out.read_text())
                secrets = {loc["secret"] for f in doc["findings"] for loc in f["locations"]}
                expected = {p for p in tokens if p not in
                            ("ksprivate", "ksother", "ksoutside", "ksslow", "ksdeep",
                             "ksbroken")}  # fmt: skip
                found = {p for p in expected
                         if parse_qs(urlsplit(tokens[p]).query)["sig"][0] in secrets}  # fmt: skip
                runs.append({"wall_s": usage.wall, "requests": len(site.log),
                             "bytes": doc["stats"]["bytes"], "tokens_planted": len(expected),
                             "tokens_found": len(found)})  # fmt: skip
                log(f"crawl {n + 1}/{rounds}: {usage.wall:.2f} s, {len(site.log)} requests, "
                    f"{len(found)}/{len(expected)} tokens")  # fmt: skip
    return {"runs": runs, "wall_s": median(r["wall_s"] for r in runs)}


# --------------------------------------------------------------------------- the archive


def texts() -> Iterator[tuple[str, bytes]]:
    """(relative path, bytes) of the installed packages' text files, in a fixed order."""
    base = Path(sysconfig.get_paths()["purelib"])
    for folder, dirs, files in os.walk(base):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if name.endswith(TEXT) and not path.is_symlink():
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                if 0 < len(data) <= 4 * MB:
                    yield path.relative_to(base).as_posix(), data


def build_archive(target: int) -> dict[str, Any]:
    """``site.warc``, ``site.warc.gz`` and ``files/`` holding the same bodies, about
    ``target`` bytes of archive; cached by target size."""
    from tests.crawl_site import token
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    stamp = WORK / f"archive-{target}.json"
    if stamp.exists():
        return dict(json.loads(stamp.read_text()))
    for name in ("site.warc", "site.warc.gz", "files"):
        path = WORK / name
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    files = WORK / "files"
    planted = records = body_bytes = 0
    started = time.monotonic()
    with (WORK / "site.warc").open("wb") as plain, (WORK / "site.warc.gz").open("wb") as packed:
        writers = (WARCWriter(plain, gzip=False), WARCWriter(packed, gzip=True))
        copy = 0
        while plain.tell() < target:
            for rel, data in texts():
                if plain.tell() >= target:
                    break
                records += 1
                if records % PLANT_EVERY == 0:
                    data += f"\nMEDIA_URL = '{token(f'ksbench{records}')}'\n".encode()
                    planted += 1
                uri = f"https://mirror{copy}.example/{rel}"
                (files / f"mirror{copy}" / rel).parent.mkdir(parents=True, exist_ok=True)
                (files / f"mirror{copy}" / rel).write_bytes(data)
                body_bytes += len(data)
                for writer in writers:
                    http = StatusAndHeaders("200 OK", [("Content-Type", "text/plain"),
                                                       ("Content-Length", str(len(data)))],
                                            protocol="HTTP/1.1")  # fmt: skip
                    record = writer.create_warc_record(uri, "response",
                                                       payload=io.BytesIO(data),
                                                       http_headers=http)  # fmt: skip
                    writer.write_record(record)
            copy += 1
    info = {
        "records": records,
        "planted": planted,
        "body_bytes": body_bytes,
        "warc_bytes": (WORK / "site.warc").stat().st_size,
        "warc_gz_bytes": (WORK / "site.warc.gz").stat().st_size,
        "copies": copy,
        "build_s": round(time.monotonic() - started, 1),
    }
    stamp.write_text(json.dumps(info))
    log(f"archive: {records} records, {info['warc_bytes'] / MB:.0f} MB "
        f"({info['warc_gz_bytes'] / MB:.0f} MB gzip), {planted} tokens planted")  # fmt: skip
    return info


def bench_archive(rounds: int, info: dict[str, Any]) -> dict[str, Any]:
    """Each form scanned ``rounds`` times, taking turns; medians and throughput."""
    forms = {
        "warc": [str(WORK / "site.warc")],
        "warc.gz": [str(WORK / "site.warc.gz")],
        "plain files": [str(WORK / "files"), "--no-git", "--no-ignore"],
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in forms}
    for n in range(rounds):
        for name, args in forms.items():
            out, err = WORK / "scan.json", WORK / "scan.err"
            usage = measure(
                keyscope("scan", *args, "-j", "1", "--max-file-size", "4G", "--format", "json",
                         "--now", "2026-12-01T00:00:00Z"),
                cwd=ROOT, stdout=out, stderr=err, timeout=3600, env=env(),
            )  # fmt: skip
            doc = json.loads(out.read_text())
            found = len(doc["findings"])
            rss = usage.tree_rss_kb * 1024
            runs[name].append({"wall_s": usage.wall, "findings": found, "peak_rss_bytes": rss,
                               "skipped": len(doc["skipped"])})  # fmt: skip
            log(f"{name} {n + 1}/{rounds}: {usage.wall:.1f} s, {found} findings, "
                f"{rss / MB:.0f} MB peak")  # fmt: skip
    out_forms: dict[str, Any] = {}
    for name, items in runs.items():
        wall = median(r["wall_s"] for r in items)
        out_forms[name] = {
            "runs": items,
            "wall_s": wall,
            "body_mb_per_s": info["body_bytes"] / MB / wall if wall else None,
            "peak_rss_bytes": median(r["peak_rss_bytes"] for r in items),
            "findings": items[-1]["findings"],
        }
    return out_forms


def report(results: dict[str, Any]) -> str:
    a = results["archive"]
    c = results["crawl"]
    lines = [
        "# Websites and web archives benchmark",
        "",
        f"Measured {results['date']} on {results['machine']['nproc']} cores "
        f"({results['machine']['cpu']}), shared with other work: timings are noisy. "
        "`benchmarks/crawl.py`; raw numbers in `benchmarks/crawl-results.json`.",
        "",
        "## Crawl of the local test site",
        "",
        f"`keyscope crawl --rate 0 -j 1` of `tests/crawl_site.py`'s site on loopback: "
        f"{c['runs'][-1]['requests']} requests, median {fmt(c['wall_s'], 2)} s over "
        f"{len(c['runs'])} runs (the slow endpoint waits for `--timeout 1`); "
        f"{c['runs'][-1]['tokens_found']} of {c['runs'][-1]['tokens_planted']} tokens found.",
        "",
        "## A web archive next to the same bytes as plain files",
        "",
        f"{a['records']} response records written by warcio (real text: installed packages' "
        f"sources, {a['copies']} host names), {a['body_bytes'] / MB:.0f} MB of bodies; "
        f"`.warc` {a['warc_bytes'] / MB:.0f} MB, `.warc.gz` {a['warc_gz_bytes'] / MB:.0f} MB; "
        f"{a['planted']} tokens planted. `keyscope scan -j 1`, medians of "
        f"{len(a['forms']['warc']['runs'])} runs, taking turns:",
        "",
        "| input | wall (s) | body MB/s | peak RSS (MB) | findings |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, f in a["forms"].items():
        lines.append(f"| {name} | {fmt(f['wall_s'])} | {fmt(f['body_mb_per_s'])} | "
                     f"{fmt((f['peak_rss_bytes'] or 0) / MB, 0)} | {f['findings']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a ~100 MB archive, one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=1_050_000_000, help="archive bytes")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else args.rounds
    size = 100 * MB if args.quick else args.size
    WORK.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["which", "wget"], capture_output=True).returncode:
        log("note: wget is not needed here (warcio writes the archive)")
    crawl = bench_crawl(rounds)
    info = build_archive(size)
    forms = bench_archive(rounds, info)
    m = machine()
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "nproc": m.nproc, "cpu": m.cpu, "ram_bytes": m.ram_bytes, "os": m.os,
            "python": m.python,
        },
        "crawl": crawl,
        "archive": {**info, "forms": forms},
        "quick": args.quick,
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    REPORT.write_text(report(results))
    log(f"wrote {RESULTS.name} and {REPORT.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
