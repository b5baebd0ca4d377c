#!/usr/bin/env python3
"""Cost per finding: two keyscope checkouts and Kingfisher on the dense corpus, alternating.

    python benchmarks/dense_findings.py --a BASE_SRC --b NEW_SRC [--rounds 3]

The dense corpus of ``base64_corpus.py`` (10,000 planted credentials in 100 files) only,
without building the Base64-heavy histories: each round runs A, B and Kingfisher (the
order reversed every other round) through ``base64_history.one_run``, after one warm-up
round; it prints the median wall and CPU seconds and the milliseconds per planted
credential found. Run it with keyscope's own interpreter (the SDK signs the corpus).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import base64_corpus as corpus  # noqa: E402  (benchmarks/ is not a package)
import base64_history as history  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", type=Path, required=True, help="src directory of the base")
    parser.add_argument("--b", type=Path, required=True, help="src directory of the change")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # timed runs start from cached bytecode
    history.OUT.mkdir(parents=True, exist_ok=True)
    manifest = corpus.build_dense(args.seed, history.log)
    srcs = {"A": args.a.resolve(), "B": args.b.resolve()}
    runs: dict[str, list[dict[str, Any]]] = {"A": [], "B": [], "kingfisher": []}
    for r in range(args.rounds + 1):
        order = ["A", "B", "kingfisher"]
        for who in order if r % 2 else order[::-1]:
            if who == "kingfisher":
                row = history.one_run("kingfisher", "dense", manifest, f"r{r}")
            else:
                os.environ["PYTHONPATH"] = str(srcs[who])
                row = history.one_run("keyscope", "dense", manifest, f"{who}-r{r}")
            if r:  # round 0 is the warm-up
                runs[who].append(row)
    out: dict[str, Any] = {}
    for who, rows in runs.items():
        wall = statistics.median(x["wall_s"] for x in rows)
        cpu = statistics.median(x["cpu_s"] for x in rows if x["cpu_s"] is not None)
        found = rows[-1]["planted_found"]
        out[who] = {
            "wall_s": wall,
            "cpu_s": cpu,
            "walls": [x["wall_s"] for x in rows],
            "findings": rows[-1]["findings"],
            "planted_found": found,
            "ms_per_found_wall": round(1000 * wall / found, 3),
            "ms_per_found_cpu": round(1000 * cpu / found, 3),
        }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
