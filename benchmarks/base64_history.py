#!/usr/bin/env python3
"""Benchmark of Base64-heavy history: lockfiles, test recordings, bundles (issue 21).

Run from the project root with keyscope's interpreter (its ``test`` extra signs the plants)::

    python benchmarks/base64_history.py --label after        # build (cached), time, profile
    python benchmarks/base64_history.py --report-only        # rewrite BASE64.md from the JSON

The corpora are built by ``base64_corpus.py`` from real material (``base64_locks.py`` runs
npm, pnpm and yarn against the npm registry) under ``benchmarks/.work/base64``. keyscope
and Kingfisher (``kingfisher-bin`` 2.14.0 in ``benchmarks/.venv``, as ``artifacts.py``
installs it) are timed on the three corpora in rounds, the tools alternating within each
round, so that the machine's load falls on both; medians are reported. Each labelled run
(``--label baseline`` on main's code, ``--label after`` with the fix) is kept in
``benchmarks/base64-results.json``; ``BASE64.md`` is written from it. A ``cProfile`` of
keyscope ``-j 1`` on the history says where the time goes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is not a package
import base64_corpus as corpus
import base64_locks as locks
from common import logger, median, pip_install
from common import machine as _machine
from common import measure as _measure

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = corpus.WORK / "out"
VENV = HERE / ".venv"
RESULTS = HERE / "base64-results.json"
REPORT = HERE / "BASE64.md"
KINGFISHER_PIN = "2.14.0"
PROFILE_PATH = OUT / "keyscope.prof"
TARGETS = ("history", "nolocks", "dense")

log = logger("base64")


# --------------------------------------------------------------------------- tools


def kingfisher() -> Path:
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    found = sorted(VENV.glob("lib/python3*/site-packages/kingfisher/bin/kingfisher"))
    if not found:
        log(f"installing kingfisher-bin=={KINGFISHER_PIN} into {VENV}")
        pip_install(VENV / "bin" / "python", [f"kingfisher-bin=={KINGFISHER_PIN}"])
        found = sorted(VENV.glob("lib/python3*/site-packages/kingfisher/bin/kingfisher"))
    return found[0] if found else VENV / "bin" / "kingfisher"


def argv(tool: str, target: str, path: Path, report: Path, jobs: int = 2) -> list[str]:
    history = target != "dense"
    if tool == "keyscope":
        return [sys.executable, "-m", "keyscope", "scan", str(path), "--format", "json",
                "--fail-on", "never", "-q", "-j", str(jobs), "-o", str(report)]  # fmt: skip
    return [str(kingfisher()), "scan", str(path), "--git-history", "full" if history else "none",
            "--no-validate", "-f", "json", "-o", str(report), "-j", str(jobs),
            "--no-update-check", "-q"]  # fmt: skip


def findings(tool: str, report: Path) -> list[Any]:
    doc = json.loads(report.read_text(encoding="utf-8") or "null")
    if isinstance(doc, dict):
        return list(doc.get("findings") or [])
    return list(doc or [])


_TOKEN = re.compile(r"[A-Za-z0-9+/%]+")


def planted_found(items: list[Any], plants: list[corpus.Plant]) -> int:
    """Plants one of whose markers (account name, key, signature) is a whole token of
    the findings (a set look-up: the dense corpus has 10,000 plants)."""
    tokens = set(_TOKEN.findall("\n".join(json.dumps(f) for f in items)))
    return sum(any(m.rstrip("=") in tokens for m in p.markers) for p in plants)


def one_run(tool: str, target: str, manifest: corpus.Manifest, tag: str) -> dict[str, Any]:
    stem = OUT / f"{target}-{tool}-{tag}"
    report = stem.with_suffix(".json")
    report.unlink(missing_ok=True)
    u = _measure(argv(tool, target, Path(manifest.repo), report), cwd=OUT,
                 stdout=stem.with_suffix(".stdout"), stderr=stem.with_suffix(".stderr"),
                 timeout=1800, sample=False)  # fmt: skip
    if u.returncode not in (0, 200, 205) or not report.exists():
        err = stem.with_suffix(".stderr").read_text(errors="replace")[-600:]
        raise SystemExit(f"{tool} on {target} failed ({u.returncode}): {err}")
    items = findings(tool, report)
    row: dict[str, Any] = {
        "wall_s": round(u.wall, 3),
        "cpu_s": round(u.timed[0] + u.timed[1], 2) if u.timed else None,
        "findings": len(items),
        "planted_found": planted_found(items, manifest.plants),
        "planted": len(manifest.plants),
    }
    if tool == "keyscope":
        stats = json.loads(report.read_text()).get("stats", {})
        row["set_aside"] = stats.get("not_reported", {})
    log(f"{target} {tool} {tag}: {row['wall_s']:.2f}s, {row['findings']} findings, "
        f"{row['planted_found']}/{row['planted']} planted")  # fmt: skip
    return row


def time_all(manifests: dict[str, corpus.Manifest], rounds: int) -> dict[str, Any]:
    """A warm-up, then ``rounds`` rounds; in each, every target by both tools in turn (the
    order of the tools swapped every round)."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        t: {"keyscope": [], "kingfisher": []} for t in TARGETS
    }
    for r in range(rounds + 1):
        for target in TARGETS:
            order = ("keyscope", "kingfisher") if r % 2 else ("kingfisher", "keyscope")
            for tool in order:
                row = one_run(tool, target, manifests[target], "warm-up" if not r else f"r{r}")
                if r:
                    runs[target][tool].append(row)
    out: dict[str, Any] = {}
    for target, by_tool in runs.items():
        out[target] = {}
        for tool, rows in by_tool.items():
            wall = median([row["wall_s"] for row in rows])
            out[target][tool] = {
                "wall_s": wall,
                "cpu_s": median([row["cpu_s"] for row in rows]),
                "walls": [row["wall_s"] for row in rows],
                "findings": rows[-1]["findings"],
                "planted_found": rows[-1]["planted_found"],
                "planted": rows[-1]["planted"],
                **({"set_aside": rows[-1]["set_aside"]} if "set_aside" in rows[-1] else {}),
            }
        ks, kf = out[target]["keyscope"]["wall_s"], out[target]["kingfisher"]["wall_s"]
        # the ratio of each round's pair, then the median: both ran within seconds
        pairs = [a["wall_s"] / b["wall_s"] for a, b in
                 zip(by_tool["keyscope"], by_tool["kingfisher"], strict=True)]  # fmt: skip
        out[target]["ratio_of_medians"] = round(ks / kf, 3) if ks and kf else None
        out[target]["median_ratio"] = round(median(pairs) or 0, 3)
    for tool in ("keyscope", "kingfisher"):
        dense = out["dense"][tool]
        found = dense["planted_found"]
        dense["ms_per_finding"] = round(1000 * dense["wall_s"] / found, 3) if found else None
        out[f"{tool}_history_over_nolocks"] = round(
            out["history"][tool]["wall_s"] / out["nolocks"][tool]["wall_s"], 3
        )
    return out


# --------------------------------------------------------------------------- profile


def profile(manifest: corpus.Manifest) -> dict[str, Any]:
    """keyscope -j 1 on the history under cProfile: where the time goes."""
    report = OUT / "profile.json"
    cmd = argv("keyscope", "history", Path(manifest.repo), report, jobs=1)
    cmd[1:1] = ["-m", "cProfile", "-o", str(PROFILE_PATH)]
    log("profiling keyscope -j 1 on the history")
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=OUT, capture_output=True)
    wall = time.perf_counter() - start
    return analyse(PROFILE_PATH, wall)


def analyse(path: Path, wall: float) -> dict[str, Any]:
    """The profile's total split into the parts that matter here."""
    stats = pstats.Stats(str(path))
    table: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    total = float(stats.total_tt)  # type: ignore[attr-defined]

    def cumulative(file_end: str, func: str) -> float:
        return max((ct for (f, _l, n), (_cc, _nc, _tt, ct, _c) in table.items()
                    if f.endswith(file_end) and n == func), default=0.0)  # fmt: skip

    def calls(file_end: str, func: str) -> int:
        return sum(nc for (f, _l, n), (_cc, nc, _tt, _ct, _c) in table.items()
                   if f.endswith(file_end) and n == func)  # fmt: skip

    def own(func: str) -> float:
        return sum(tt for (f, _l, n), (_cc, _nc, tt, _ct, _c) in table.items()
                   if f == "~" and n == func)  # fmt: skip

    hyperscan = own("<method 'scan' of 'hyperscan.Database' objects>")
    capture = cumulative("detect/capture.py", "matches")
    candidates = cumulative("keyscope/pipeline.py", "_candidates")
    n_candidates = calls("keyscope/pipeline.py", "_candidates")
    read = cumulative("sources/git.py", "read")
    provenance = cumulative("sources/history.py", "_with_provenance_all")
    parts = [
        ("git: reading blobs (`git cat-file --batch`)", read),
        ("Hyperscan matching (`Database.scan`, with its match callbacks)", hyperscan),
        ("capture: anchor hits to values (`Capturer.matches`)", capture),
        (f"Python per candidate (`BlobScanner._candidates`, {n_candidates} calls)", candidates),
        ("provenance (`git log` walk, only for blobs that matched)", provenance),
    ]
    rest = total - sum(sec for _l, sec in parts)
    rows = [{"part": label, "seconds": round(sec, 2), "share": round(sec / total, 3)}
            for label, sec in [*parts, ("everything else (start-up, listing, reports …)", rest)]]
    buffer = io.StringIO()
    stats.stream = buffer  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(12)
    text = buffer.getvalue()
    top = "\n".join(line.rstrip() for line in text[text.find("   ncalls"):].splitlines()
                    if line.strip()).replace(str(ROOT) + "/", "")  # fmt: skip
    top = top.replace(os.path.dirname(os.__file__) + "/", "")
    return {
        "wall_s": round(wall, 2),
        "total_s": round(total, 2),
        "breakdown": rows,
        "candidates": n_candidates,
        "us_per_candidate": round(1e6 * candidates / n_candidates, 1) if n_candidates else None,
        "top_tottime": top,
    }


# --------------------------------------------------------------------------- report


def render(saved: dict[str, Any]) -> str:
    lines = [
        "# Base64-heavy history: keyscope against Kingfisher",
        "",
        "Written by `benchmarks/base64_history.py` from `benchmarks/base64-results.json`; the "
        "corpora are described in `benchmarks/base64_corpus.py` and `base64_locks.py`. Each "
        "label is one run of the script: `baseline` on main's code before issue 21's fix, "
        "`after` with it. Wall times are medians of the rounds; in each round both tools ran "
        "on each corpus one after the other (order swapped every round), so the ratio is taken "
        "per round and its median given.",
        "",
    ]
    for label, res in saved.get("runs", {}).items():
        corp = res["corpora"]
        lines += [f"## `{label}` — keyscope {res['keyscope_version']}, {res['when']}", ""]
        lines += [f"Machine: {res['machine']}; {res['rounds']} rounds.", ""]
        h, nl, dn = corp["history"]["stats"], corp["nolocks"]["stats"], corp["dense"]["stats"]
        lines += [
            "| corpus | what | keyscope wall s | Kingfisher wall s | keyscope / Kingfisher "
            "(median of rounds) | findings ks / kf | planted found ks / kf |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        what = {
            "history": f"{h['commits']} commits, {h['unique_blobs']} blobs, "
            f"{h['unique_blob_bytes'] / 1e6:.0f} MB",
            "nolocks": f"same without lockfiles: {nl['unique_blobs']} blobs, "
            f"{nl['unique_blob_bytes'] / 1e6:.0f} MB",
            "dense": f"{dn['files']} files, {dn['bytes'] / 1e6:.1f} MB, 10,000 credentials",
        }
        t = res["timing"]
        for target in TARGETS:
            ks, kf = t[target]["keyscope"], t[target]["kingfisher"]
            lines.append(
                f"| {target} | {what[target]} | {ks['wall_s']:.2f} | {kf['wall_s']:.2f} | "
                f"{t[target]['median_ratio']:.2f} | {ks['findings']} / {kf['findings']} | "
                f"{ks['planted_found']}/{ks['planted']} / {kf['planted_found']}/{kf['planted']} |"
            )
        ks_d, kf_d = t["dense"]["keyscope"], t["dense"]["kingfisher"]
        lines += [
            "",
            f"- keyscope on the history / on the history without lockfiles: "
            f"{t['keyscope_history_over_nolocks']:.2f}× (Kingfisher: "
            f"{t['kingfisher_history_over_nolocks']:.2f}×).",
            f"- Per finding on the dense corpus (wall / planted credentials found): keyscope "
            f"{ks_d['ms_per_finding']} ms, Kingfisher {kf_d['ms_per_finding']} ms.",
            f"- Set aside by keyscope on the history (`stats.not_reported`): "
            f"{json.dumps(t['history']['keyscope'].get('set_aside', {}), ensure_ascii=False)}",
            "",
        ]
        prof = res.get("profile")
        if prof:
            lines += [
                f"Profile: keyscope `-j 1` on the history under cProfile, {prof['wall_s']} s "
                f"wall ({prof['total_s']} s profiled); {prof['candidates']} candidates reached "
                f"the providers' parsers, {prof['us_per_candidate']} µs each.",
                "",
                "| part | s | share |",
                "| --- | ---: | ---: |",
            ]
            lines += [f"| {r['part']} | {r['seconds']} | {r['share']:.0%} |"
                      for r in prof["breakdown"]]  # fmt: skip
            lines += ["", "```", prof["top_tottime"], "```", ""]
    notes = saved.get("notes")
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    return "\n".join(lines) + "\n"


def main(argv_: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="after")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--versions", type=int, default=240, help="package-lock.json versions")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--version-note", help="what keyscope code ran (default: this checkout)")
    parser.add_argument("--reanalyse", metavar="LABEL=PROFILE",
                        help="redo a saved run's profile breakdown from its cProfile file")
    args = parser.parse_args(argv_)
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.reanalyse:
        label, path = args.reanalyse.split("=", 1)
        run = saved["runs"][label]
        run["profile"] = analyse(Path(path), run["profile"]["wall_s"])
        RESULTS.write_text(json.dumps(saved, indent=2, ensure_ascii=False) + "\n")
    elif not args.report_only:
        OUT.mkdir(parents=True, exist_ok=True)
        for name, share in (("npm", 1), ("pnpm", 4), ("yarn", 8)):
            locks.make_versions(name, args.versions // share, args.seed, log)
        manifests = corpus.build_histories(args.seed, log)
        manifests["dense"] = corpus.build_dense(args.seed, log)
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
        m = _machine()
        res: dict[str, Any] = {
            "keyscope_version": args.version_note or head + (" + uncommitted src" if dirty else ""),
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{m.nproc} cores, {m.cpu}, load shared with other jobs",
            "rounds": args.rounds,
            "corpora": {k: {"stats": v.stats, "plants": len(v.plants)}
                        for k, v in manifests.items()},
            "timing": time_all(manifests, args.rounds),
        }
        if not args.no_profile:
            res["profile"] = profile(manifests["history"])
        saved.setdefault("runs", {})[args.label] = res
        RESULTS.write_text(json.dumps(saved, indent=2, ensure_ascii=False) + "\n")
    REPORT.write_text(render(saved))
    log(f"wrote {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
