#!/usr/bin/env python3
"""What owners cost a scan: a repository of N files under M folders, each holding one
connection string (a distinct secret), with a CODEOWNERS of R patterns; the history
scan, then ``assign_owners`` on its result (CODEOWNERS read from HEAD once, matched per
location), several rounds, medians::

    PYTHONPATH=src python benchmarks/owners.py [--files 2000] [--rules 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from keyscope.owners.assign import OwnerResolver, assign_owners
from keyscope.owners.config import OwnersMap
from keyscope.scan import ScanOptions, scan


def build(root: Path, files: int, rules: int) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": "C", "GIT_COMMITTER_EMAIL": "c@example.com",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env=env)
    lines = ["* @acme/everyone"]
    lines += [f"/svc{i}/**/*.cfg @acme/team{i} team{i}@example.com" for i in range(rules)]
    (root / ".github").mkdir()
    (root / ".github" / "CODEOWNERS").write_text("\n".join(lines) + "\n")
    for i in range(files):
        folder = root / f"svc{i % 100}" / "conf"
        folder.mkdir(parents=True, exist_ok=True)
        key = base64.b64encode(os.urandom(64)).decode()
        (folder / f"app{i}.cfg").write_text(
            f"CONN=DefaultEndpointsProtocol=https;AccountName=acct{i % 100};AccountKey={key};"
            "EndpointSuffix=core.windows.net\n"
        )
    subprocess.run(["git", "-C", str(root), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "commit", "-qm", "x"], check=True, env=env)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--rules", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        build(root, args.files, args.rules)
        scans, owners = [], []
        for _ in range(args.rounds):
            t = time.perf_counter()
            result = scan([str(root)], ScanOptions(jobs=1))
            scans.append(time.perf_counter() - t)
            t = time.perf_counter()
            assign_owners(result, OwnerResolver(OwnersMap(), [str(root)]))
            owners.append(time.perf_counter() - t)
        named = sum(1 for f in result.findings if len(f.owners) == 4)
        print(f"{len(result.findings)} findings, {named} with author, committer, team and "
              f"its address; {args.rules + 1} CODEOWNERS patterns")
        print(f"scan (history, -j 1): median {statistics.median(scans):.3f} s")
        share = statistics.median(owners) / max(statistics.median(scans), 1e-9)
        print(f"assign_owners:        median {statistics.median(owners):.3f} s "
              f"({share:.1%} of the scan)")


if __name__ == "__main__":
    main()
