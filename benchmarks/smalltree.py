#!/usr/bin/env python3
"""Does a files scan scale with cores? ``keyscope scan -j 1`` against ``-j 2`` on a
large tree of many small files.

Run from the project root with keyscope's own interpreter (the Azure SDK that signs
the planted tokens comes from keyscope's test extra)::

    .venv/bin/python benchmarks/smalltree.py [--runs 5] [--base-src OTHER/src]

The tree (built once under ``benchmarks/.work/smalltree-N/``, git-ignored) holds N
files (``--files``, default 50,000; about a fifth of them ignored): source-like text
of 0.2 to 8 KB in nested folders, a few ``.gitignore`` files (with negations), an
ignored ``node_modules``-like folder and build output, and a few real SAS URLs signed
by the Azure SDK with random keys. (A scan's fixed cost, about 0.25 s to start
Python and load the rules, is a third of a 20,000-file scan: the default tree is
larger so that the scan itself dominates.) Each version runs ``--runs`` times after
one warm-up, ``-j 1`` and ``-j 2`` in turn; the median and least wall time and CPU
time (user + system of keyscope and its workers) are reported. ``--base-src``
measures another checkout's ``src`` (e.g. the commit before a change) on the same
tree. Results go to
``benchmarks/smalltree-results.json`` (no absolute paths; one entry per ``--files``)
and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / ".work"
RESULTS = HERE / "smalltree-results.json"
FILES = 50_000
PLANTED = 12
SEED = 20261207

WORDS = (
    "config client storage account request response handler value result error "
    "module import return self data path name items index count buffer stream"
).split()
EXTENSIONS = (".py", ".js", ".ts", ".json", ".md", ".yaml", ".txt", ".cfg")


def log(message: str) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"[smalltree {stamp}] {message}", file=sys.stderr, flush=True)


def _text(rng: random.Random, size: int) -> str:
    lines = []
    total = 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        line = "    " * rng.randint(0, 3) + line
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines) + "\n"


def _sas_url(rng: random.Random, n: int) -> str:
    sys.path.insert(0, str(ROOT))
    from tests.sdk import account_sas, new_key

    account = f"benchacct{n:03d}"
    sas = account_sas(account, new_key(), expiry=datetime(2031, 1, 1, tzinfo=UTC))
    return f"https://{account}.blob.core.windows.net/data/file{n}.bin?{sas}"


def build_tree(root: Path, files: int) -> dict[str, Any]:
    """The tree, made once; a manifest says what it holds."""
    manifest = root / "manifest.json"
    if manifest.exists():
        return dict(json.loads(manifest.read_text()))
    log(f"building {files} files under {root.relative_to(ROOT)}")
    rng = random.Random(SEED)
    tree = root / "tree"
    tree.mkdir(parents=True, exist_ok=True)
    (tree / ".gitignore").write_text("node_modules/\nbuild/\n*.log\n!keep.log\n")
    ignored = 0
    made = 0
    planted = []
    dirs = [""]
    # ~10 % in an ignored node_modules-like folder, ~3 % in build output
    for i in range(60):
        dirs.append(f"node_modules/pkg{i % 20}/lib" if i < 40 else f"node_modules/pkg{i}")
    for a in range(12):
        for b in range(10):
            dirs.append(f"src/mod{a}/part{b}")
            if b % 3 == 0:
                dirs.append(f"src/mod{a}/part{b}/deep/er")
    for i in range(6):
        dirs.append(f"build/out{i}")
    for i in range(4):
        dirs.append(f"tools/t{i}")
    for i, d in enumerate(sorted(set(dirs))):
        (tree / d).mkdir(parents=True, exist_ok=True)
        if d.startswith("src/mod") and d.count("/") == 2 and i % 7 == 0:
            (tree / d / ".gitignore").write_text("*.tmp\ngenerated/\n!important.tmp\n")
    dirs = sorted(set(dirs))
    plant_at = set(rng.sample(range(files), PLANTED))
    for n in range(files):
        d = dirs[n % len(dirs)]
        ext = EXTENSIONS[n % len(EXTENSIONS)]
        if n % 97 == 0:
            ext = ".log" if n % 2 else ".tmp"
        name = f"f{n:05d}{ext}"
        body = _text(rng, rng.randint(200, 8000))
        if n in plant_at:
            body += f'\nSTORAGE_URL = "{_sas_url(rng, n)}"\n'
            planted.append(f"{d}/{name}".lstrip("/"))
        (tree / d / name).write_text(body)
        made += 1
        if d.startswith(("node_modules", "build")) or ext == ".log":
            ignored += 1
    (tree / "keep.log").write_text(_text(rng, 500))
    info = {"files": made + 1, "ignored_files": ignored, "directories": len(dirs),
            "planted": sorted(planted)}
    manifest.write_text(json.dumps(info, indent=1))
    return info


def run_once(src: Path, tree: Path, jobs: int, cache: Path) -> tuple[float, float]:
    """(wall, user+sys CPU of keyscope and its workers) of one scan."""
    _children_cpu()
    argv = [sys.executable, "-m", "keyscope", "scan", "-q", "--format", "json",
            "--fail-on", "never", "-j", str(jobs), str(tree)]
    env = {**os.environ, "PYTHONPATH": str(src), "XDG_CACHE_HOME": str(cache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # start from cached bytecode, as installed
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"keyscope failed: {err.decode(errors='replace')[-500:]}")
    doc = json.loads(out)
    FOUND.add(len(doc["findings"]))
    return wall, _children_cpu()


_LAST = [0.0]
FOUND: set[int] = set()  # findings per run: every version and -j must agree


def _children_cpu() -> float:
    """CPU seconds of the children (and the workers they reaped) since the previous
    call."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = r.ru_utime + r.ru_stime
    spent, _LAST[0] = total - _LAST[0], total
    return spent


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def measure(label: str, src: Path, tree: Path, runs: int) -> list[dict[str, Any]]:
    """``-j 1`` and ``-j 2`` runs taken in turn (so that a change in the machine's load
    hits both alike), after one warm-up each."""
    cache = WORK / "smalltree-cache"
    samples: dict[int, list[tuple[float, float, float]]] = {1: [], 2: []}
    for jobs in samples:
        run_once(src, tree, jobs, cache)  # warm-up: page cache, Hyperscan database
    for _ in range(runs):
        for jobs, found in samples.items():
            load = load_average()
            wall, cpu = run_once(src, tree, jobs, cache)
            found.append((wall, cpu, load))
    entries = []
    for jobs, found in samples.items():
        walls, cpus, loads = ([x[i] for x in found] for i in range(3))
        entry = {
            "version": label, "jobs": jobs, "runs": runs,
            "wall_s_median": round(statistics.median(walls), 3),
            "wall_s_min": round(min(walls), 3),
            "cpu_s_median": round(statistics.median(cpus), 3),
            "cpu_s_min": round(min(cpus), 3),
            "wall_s": [round(w, 3) for w in walls], "cpu_s": [round(c, 3) for c in cpus],
            "load_average_1min": loads,
        }
        log(f"{label} -j {jobs}: wall {entry['wall_s_median']} s (min {entry['wall_s_min']}), "
            f"cpu {entry['cpu_s_median']} s (load {loads})")
        entries.append(entry)
    return entries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=FILES)
    parser.add_argument("--base-src", type=Path, help="another checkout's src to compare")
    parser.add_argument("--base-label", default="base")
    parser.add_argument("--label", default="branch")
    args = parser.parse_args()
    root = WORK / f"smalltree-{args.files}"
    info = build_tree(root, args.files)
    versions = [(args.label, ROOT / "src")]
    if args.base_src:
        versions.insert(0, (args.base_label, args.base_src.resolve()))
    entries = [e for label, src in versions for e in measure(label, src, root / "tree", args.runs)]
    by = {(e["version"], e["jobs"]): e for e in entries}
    ratios = {
        label: {
            stat: round(by[(label, 1)][f"wall_s_{stat}"] / by[(label, 2)][f"wall_s_{stat}"], 2)
            for stat in ("median", "min")
        }
        for label, _ in versions
    }
    if len(FOUND) != 1:
        raise SystemExit(f"runs disagree on the number of findings: {sorted(FOUND)}")
    run = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "tree": {k: v for k, v in info.items() if k != "planted"}
        | {"planted": len(info["planted"])},
        "findings": FOUND.pop(),
        "results": entries,
        "speedup_j2_over_j1_wall": ratios,
    }
    document = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    document.update({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "system": platform.system()},
        "command": "keyscope scan -q --format json --fail-on never -j N TREE",
    })
    document.setdefault("trees", {})[str(args.files)] = run
    RESULTS.write_text(json.dumps(document, indent=1) + "\n")
    print("| version | -j | wall s (median) | CPU s (median) | load |")
    print("| --- | --- | --- | --- | --- |")
    for e in entries:
        print(f"| {e['version']} | {e['jobs']} | {e['wall_s_median']} | {e['cpu_s_median']} | "
              f"{statistics.median(e['load_average_1min'])} |")
    for label, ratio in ratios.items():
        print(f"{label}: -j 2 is {ratio['median']}x -j 1 (median wall), {ratio['min']}x (min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
