#!/usr/bin/env python3
"""Is one checkout of keyscope slower than another? Interleaved runs on the benchmarks' inputs.

    python benchmarks/speed.py --a BASE_SRC --b NEW_SRC [--rounds 5] [--cases tree,history]

Each case runs ``python -m keyscope`` with ``PYTHONPATH=BASE_SRC`` (A) and ``NEW_SRC`` (B):
one warm-up each, then ``--rounds`` rounds in alternating order (AB, BA, ...), so that a
change in the machine's load falls on both. The table gives the median wall and CPU
seconds of each and B/A; a ratio above 1.05 is marked. Run it with keyscope's own
interpreter (the inputs are built by run.py, history.py and outputs.py). See README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import history  # noqa: E402  (benchmarks/ is not a package)
import models  # noqa: E402
import outputs  # noqa: E402
import run  # noqa: E402
from common import (  # noqa: E402
    TIME_BIN,
    Usage,
    fmt,
    logger,
    measure,
    median,
    until_undisturbed,
)

log = logger("speed")
WORK = HERE / ".work" / "speed"
LIMIT = 1.05  # B slower than A by more than 5 %: marked
SCAN = ("--format", "json", "--fail-on", "never", "-q")


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    build: Callable[[argparse.Namespace], Path]  # makes the input (cached), returns it
    argv: tuple[str, ...]  # keyscope's arguments after the input


def tree(args: argparse.Namespace) -> Path:
    """run.py's large tree of real text files (benchmarks/.work/tree)."""
    if not run.venv_bin("python").exists():  # its site-packages is one of the tree's sources
        subprocess.run([sys.executable, "-m", "venv", str(run.VENV)], check=True)
    run.build_tree(int(args.tree_mb * run.MB), args.tree_files)
    return run.TREE


def history_repo(args: argparse.Namespace) -> Path:
    """history.py's generated history, as its ``small`` repository (cached)."""
    manifest = history.build_repo("small", args.history_commits, 20260105, rebuild=False)
    return Path(manifest["repo"])


def model_fixtures(args: argparse.Namespace) -> Path:
    """models.py's fixtures that keyscope's interpreter writes (as in outputs.py)."""
    out = WORK / "models"
    if not (out / "manifest.json").exists():
        out.mkdir(parents=True, exist_ok=True)
        outputs.build_models(out, sys.executable)
    return out


def big_checkpoint(args: argparse.Namespace) -> Path:
    """models.py's 738 MB zip checkpoint (written once, cached)."""
    if not models.BIG_FILES["zip"].exists():
        subprocess.run(
            [sys.executable, str(HERE / "models.py"), "_generate-big", str(models.BIG_DIR)],
            check=True,
        )
    return models.BIG_FILES["zip"]


def corpus(args: argparse.Namespace) -> Path:
    """run.py's planted corpus (19 small files: start-up dominates)."""
    root = WORK / "corpus"
    run.build_corpus(root, 2023)
    return root


CASES = {
    c.name: c
    for c in (
        Case("tree", "run.py's tree, -j 2", tree, ("scan", "--no-ignore", "-j", "2", *SCAN)),
        Case("tree-j1", "run.py's tree, -j 1", tree, ("scan", "--no-ignore", "-j", "1", *SCAN)),
        Case("history", "history.py's small repository", history_repo, ("scan", *SCAN)),
        Case("models", "models.py's fixtures", model_fixtures, ("models", "--no-git", *SCAN)),
        Case(
            "models-big",
            "models.py's zip checkpoint",
            big_checkpoint,
            ("models", "--max-file-size", "4G", *SCAN),
        ),
        Case("corpus", "run.py's corpus", corpus, ("scan", "--no-ignore", *SCAN)),
    )
}
DEFAULT_CASES = "tree,tree-j1,history,models,corpus"


def one_run(src: Path, target: Path, case: Case, args: argparse.Namespace) -> Usage:
    WORK.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(src.resolve()))
    # Timed runs start from cached bytecode, as an installed keyscope does: with
    # PYTHONDONTWRITEBYTECODE a module changed since its .pyc is compiled at every start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    def once() -> Usage:
        return measure(
            [sys.executable, "-m", "keyscope", case.argv[0], str(target), *case.argv[1:]],
            cwd=WORK,
            stdout=WORK / "run.stdout",
            stderr=WORK / "run.stderr",
            timeout=args.timeout,
            use_time=TIME_BIN.exists(),
            sample=False,
            env=env,
        )

    usage, _ = until_undisturbed(
        once, other_cores, quiet_wait=args.wait_quiet, retries=2, label=case.name, log=log
    )
    if usage.returncode != 0 or usage.timed_out:
        tail = (WORK / "run.stderr").read_text(errors="replace").strip()[-300:]
        raise SystemExit(f"{case.name}: keyscope from {src} failed ({usage.returncode}): {tail}")
    return usage


def cpu(u: Usage) -> float:
    user, system, _ = u.timed or u.rusage
    return user + system


def other_cores(u: Usage) -> float | None:
    """Cores other processes used during the run."""
    return None if u.busy is None or not u.wall else max(0.0, u.busy[0] - cpu(u)) / u.wall


def compare(case: Case, args: argparse.Namespace) -> dict[str, object]:
    target = case.build(args)
    sides = {"a": args.a, "b": args.b}
    for side, src in sides.items():
        log(f"{case.name}: warm-up {side.upper()}")
        one_run(src, target, case, args)
    walls: dict[str, list[float]] = {"a": [], "b": []}
    cpus: dict[str, list[float]] = {"a": [], "b": []}
    for n in range(args.rounds):
        for side in ("a", "b") if n % 2 == 0 else ("b", "a"):
            u = one_run(sides[side], target, case, args)
            walls[side].append(u.wall)
            cpus[side].append(cpu(u))
        log(f"{case.name}: round {n + 1}/{args.rounds}: A {walls['a'][-1]:.3f} s, "
            f"B {walls['b'][-1]:.3f} s")  # fmt: skip
    row: dict[str, object] = {"case": case.name, "what": case.what}
    for label, values in (("wall", walls), ("cpu", cpus)):
        a, b = median(values["a"]), median(values["b"])
        row[f"{label}_a"], row[f"{label}_b"] = a, b
        row[f"{label}_ratio"] = b / a if a and b is not None else None
        row[f"{label}_runs"] = {k: [round(v, 3) for v in vs] for k, vs in values.items()}
    return row


def over(ratio: object) -> bool:
    """B/A above the limit."""
    return isinstance(ratio, float) and ratio > LIMIT


def table(rows: list[dict[str, object]]) -> str:
    def ratio(value: object) -> str:
        text = fmt(value, 3, missing="n/a", grouped=False)
        return f"**{text}**" if over(value) else text

    lines = [
        "| case | wall s A | wall s B | B/A | CPU s A | CPU s B | B/A |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = [fmt(r[k], 3, missing="n/a", grouped=False) for k in ("wall_a", "wall_b")]
        cpu_cells = [fmt(r[k], 3, missing="n/a", grouped=False) for k in ("cpu_a", "cpu_b")]
        lines.append(
            f"| {r['case']} ({r['what']}) | {' | '.join(cells)} | {ratio(r['wall_ratio'])} | "
            f"{' | '.join(cpu_cells)} | {ratio(r['cpu_ratio'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", type=Path, required=True, help="src directory of the base")
    parser.add_argument("--b", type=Path, required=True, help="src directory of the change")
    parser.add_argument("--cases", default=DEFAULT_CASES, help=f"of: {', '.join(CASES)}")
    parser.add_argument("--rounds", type=int, default=5, help="measured runs of each (5)")
    quiet = "before each run, wait up to S seconds for other processes to go idle (0)"
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="S", help=quiet)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run (600)")
    parser.add_argument("--tree-mb", type=float, default=100, help="run.py's tree cap (100)")
    parser.add_argument("--tree-files", type=int, default=20_000, help="and file cap (20000)")
    parser.add_argument(
        "--history-commits", type=int, default=4_000, help="history.py's small size (4000)"
    )
    parser.add_argument("--json", type=Path, help="also write the rows (every run) here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}")
    for src in (args.a, args.b):
        if not (src / "keyscope" / "__init__.py").is_file():
            parser.error(f"{src} holds no keyscope package")
    rows = [compare(CASES[name], args) for name in names]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows))
    slower = [str(r["case"]) for r in rows if over(r["wall_ratio"]) or over(r["cpu_ratio"])]
    print(f"\nB slower than A by more than 5 %: {', '.join(slower) or 'none'}")
    return 1 if slower else 0


if __name__ == "__main__":
    sys.exit(main())
