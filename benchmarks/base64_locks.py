"""Real lockfiles for the Base64-heavy history benchmark (``base64_history.py``).

Each version is made by the package manager itself, resolving against the npm registry:
``npm install --package-lock-only`` (``package-lock.json``), ``npx pnpm install
--lockfile-only`` (``pnpm-lock.yaml``) and ``npx yarn install`` (``yarn.lock``; yarn 1 has no
lockfile-only mode, so it installs). Between two versions the project's dependencies change
(one added, one removed, as a project's do), so every version differs. The versions are
cached under ``benchmarks/.work/base64/locks/<manager>/NNN`` and made once.

NuGet is not reachable from the benchmark machine and dotnet is not installed, so
``packages.lock.json`` (NuGet's shape) is written by ``nuget_lock``: real package names and
versions, and as ``contentHash`` real SHA-512 digests (Base64, as NuGet writes them) taken
from the npm registry's ``dist.integrity`` of the packages resolved above. The shape and the
digests are real; the pairing of digest and NuGet package is not.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCKS = HERE / ".work" / "base64" / "locks"

# Packages a JavaScript project of some size depends on; large trees (jest, webpack,
# eslint, @babel) make lockfiles of several hundred entries, as real ones are.
NPM_POOL = (
    "express", "lodash", "eslint", "jest", "webpack", "webpack-cli", "typescript", "axios",
    "react", "react-dom", "moment", "chalk", "commander", "yargs", "mocha", "chai", "sinon",
    "prettier", "rollup", "@babel/core", "@babel/preset-env", "babel-loader", "ts-node",
    "@types/node", "uuid", "dotenv", "debug", "glob", "rimraf", "nodemon", "supertest", "koa",
    "fastify", "ws", "socket.io", "@azure/storage-blob", "@azure/identity", "winston",
    "morgan", "cors", "helmet", "jsonwebtoken", "bcryptjs", "pg", "mysql2", "ioredis",
    "handlebars", "ejs", "sass", "postcss", "autoprefixer", "esbuild", "cross-env",
    "concurrently", "semver", "minimist", "async", "bluebird", "rxjs", "zod", "joi",
    "date-fns", "dayjs", "luxon", "mongoose", "sequelize", "@azure/data-tables",
    "@azure/storage-queue", "karma", "nyc", "c8", "vitest", "lerna", "tslib",
)  # fmt: skip
NUGET_POOL = (
    "Azure.Storage.Blobs", "Azure.Storage.Queues", "Azure.Identity", "Azure.Core",
    "Newtonsoft.Json", "Microsoft.Extensions.Logging", "Microsoft.Extensions.Hosting",
    "Microsoft.Extensions.Configuration.Json", "Serilog", "Serilog.Sinks.Console",
    "Polly", "Dapper", "AutoMapper", "FluentValidation", "MediatR", "xunit",
    "xunit.runner.visualstudio", "Moq", "FluentAssertions", "Microsoft.NET.Test.Sdk",
    "coverlet.collector", "System.Text.Json", "System.Memory", "System.Buffers",
    "Microsoft.Bcl.AsyncInterfaces", "System.Diagnostics.DiagnosticSource",
    "Microsoft.Identity.Client", "System.IO.Hashing", "Swashbuckle.AspNetCore",
    "StackExchange.Redis", "Npgsql", "Microsoft.EntityFrameworkCore",
)  # fmt: skip


def _run(argv: list[str], cwd: Path, timeout: float) -> bool:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


MANAGERS: dict[str, tuple[str, list[str], float]] = {
    # name: (lockfile, command, timeout)
    "npm": (
        "package-lock.json",
        ["npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund",
         "--legacy-peer-deps"],
        300,
    ),
    "pnpm": (
        "pnpm-lock.yaml",
        ["npx", "-y", "pnpm@9.15.0", "install", "--lockfile-only", "--ignore-scripts",
         "--strict-peer-dependencies=false"],
        300,
    ),
    "yarn": (
        "yarn.lock",
        ["npx", "-y", "yarn@1.22.22", "install", "--ignore-scripts", "--no-progress",
         "--non-interactive", "--ignore-engines"],
        600,
    ),
}


def versions(manager: str) -> list[Path]:
    """The lockfile versions made so far, in order."""
    lockfile = MANAGERS[manager][0]
    return sorted(p / lockfile for p in (LOCKS / manager).glob("[0-9][0-9][0-9]") if
                  (p / lockfile).exists())  # fmt: skip


def make_versions(manager: str, count: int, seed: int, log: Callable[[str], None]) -> list[Path]:
    """``count`` successive lockfiles of one project whose dependencies change between
    versions; versions already made are kept (the random walk is replayed from ``seed``)."""
    lockfile, command, timeout = MANAGERS[manager]
    rng = random.Random(f"{seed}-{manager}")
    work = LOCKS / manager / "project"
    work.mkdir(parents=True, exist_ok=True)
    deps = sorted(rng.sample(NPM_POOL, 12))
    for index in range(count):
        if index:
            unused = [p for p in NPM_POOL if p not in deps]
            if unused and (len(deps) < 14 or rng.random() < 0.6):
                deps.append(rng.choice(unused))
            if len(deps) > 10 and rng.random() < 0.5:
                deps.remove(rng.choice(deps))
            deps.sort()
        out = LOCKS / manager / f"{index:03d}"
        if (out / lockfile).exists():
            continue
        manifest = {"name": f"bench-{manager}", "version": f"1.0.{index}", "private": True,
                    "dependencies": {d: "*" for d in deps}}  # fmt: skip
        (work / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if not _run(command, work, timeout):
            log(f"{manager} version {index}: the package manager failed; dependencies {deps}")
            continue
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(work / lockfile, out / lockfile)
        shutil.copy(work / "package.json", out / "package.json")
        log(f"{manager} version {index + 1}/{count}: {len(deps)} dependencies")
    return versions(manager)


def integrity_digests() -> list[str]:
    """Every distinct SHA-512 ``integrity`` (Base64) in the npm lockfiles made."""
    seen: dict[str, None] = {}
    for path in versions("npm"):
        packages = json.loads(path.read_text()).get("packages", {})
        for entry in packages.values():
            value = entry.get("integrity", "")
            if value.startswith("sha512-"):
                seen.setdefault(value[len("sha512-") :], None)
    return list(seen)


def nuget_lock(index: int, rng: random.Random, digests: list[str]) -> str:
    """One ``packages.lock.json`` (NuGet's lock file, version 1): direct and transitive
    packages with ``contentHash`` (see the module docstring for where the digests come from)."""
    names = rng.sample(NUGET_POOL, min(len(NUGET_POOL), 14 + index % 12))
    entries = {}
    for i, name in enumerate(sorted(names)):
        direct = i % 3 == 0
        version = f"{rng.randint(1, 8)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
        entry: dict[str, object] = {
            "type": "Direct" if direct else "Transitive",
            **({"requested": f"[{version}, )"} if direct else {}),
            "resolved": version,
            "contentHash": rng.choice(digests),
        }
        deps = rng.sample(NUGET_POOL, 2)
        entry["dependencies"] = {d: f"{rng.randint(1, 8)}.0.0" for d in deps}
        entries[name] = entry
    doc = {"version": 1, "dependencies": {"net8.0": entries}}
    return json.dumps(doc, indent=2) + "\n"


if __name__ == "__main__":  # make the lockfiles only: python benchmarks/base64_locks.py N
    import sys

    def _log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    total = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for name, share in (("npm", 1), ("pnpm", 4), ("yarn", 8)):
        make_versions(name, total // share, 2026, _log)
