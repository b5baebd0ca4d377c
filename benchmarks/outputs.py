#!/usr/bin/env python3
"""Prove that keyscope's outputs are byte-identical on the repository's corpora.

Build the corpora (always the same bytes), run ``keyscope scan``, ``models``, ``explain``
and ``baseline create`` on them in every format with one worker, a fixed ``--now`` and no
colour, and write each output to a file; then compare two such directories::

    python benchmarks/outputs.py --keyscope-src SRC_DIR --out DIR
    python benchmarks/outputs.py --compare DIR_A DIR_B    # exit 1 and a diff if they differ

``--keyscope-src`` is the ``src`` directory of any checkout: keyscope runs as
``python -m keyscope`` with ``PYTHONPATH=SRC_DIR``, so two commits can be compared. Run it
with keyscope's own interpreter (the Azure SDK signs the corpora; torch, numpy, joblib,
safetensors, onnx and py7zr write the model files). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import history  # noqa: E402  (benchmarks/ is not a package)
import run  # noqa: E402
from common import logger  # noqa: E402

log = logger("outputs")

NOW = "2026-11-26T12:00:00Z"  # tests/sdk.py's NOW: every lifetime is judged at this time
SEED = 2023  # the accuracy corpus of run.py, as in its results
HISTORY_COMMITS = 400  # history.py's generator, much shorter than its 4,000-commit "small" repo
FORMATS = ("text", "json", "jsonl", "sarif")
BASELINE = "../baseline.json"  # written by `baseline create`, relative to the corpus
REPORT = "../report.sarif"  # written by `scan -o`
CORPUS = "corpus"  # subdirectory of --out holding the corpora (not compared: see corpus.sha256)
ALICE = ("Alice Researcher", "alice@contoso.example")
BOB = ("Bob Maintainer", "bob@contoso.example")
CAROL = ("Carol Intern", "carol@contoso.example")

# The generator of models.py's fixtures, run in a child process (keyscope's interpreter has
# torch and the rest) with everything that would make its bytes differ pinned: the clock
# (zip and gzip timestamps), the global Python and NumPy RNGs (a saved RNG state), and the
# legacy torch.save storage keys, which are memory addresses (str(storage._cdata)).
MODEL_GENERATOR = """
import importlib.util, inspect, random, sys, time
from pathlib import Path

time.time = lambda: 1_700_000_000.0
time.time_ns = lambda: 1_700_000_000 * 10**9
random.seed(2023)
import numpy
numpy.random.seed(2023)
import torch.serialization as ts

keys: dict[int, str] = {}
def stable_key(cdata: int) -> str:
    return keys.setdefault(cdata, str(10**13 + len(keys)))
source = inspect.getsource(ts._legacy_save)
source = source.replace("str(storage._cdata)", "stable_key(storage._cdata)")
assert "stable_key" in source, "torch.serialization._legacy_save changed: update outputs.py"
ts.stable_key = stable_key
exec(compile(source, ts.__file__, "exec"), ts.__dict__)
legacy_save = ts._legacy_save
def reset_then_save(*args, **kwargs):
    keys.clear()
    return legacy_save(*args, **kwargs)
ts._legacy_save = reset_then_save

spec = importlib.util.spec_from_file_location("models", sys.argv[1])
models = importlib.util.module_from_spec(spec)
sys.modules["models"] = models
spec.loader.exec_module(models)
out = Path(sys.argv[2])
models.MANIFEST = out / "manifest.json"
models.generate_fixtures(out)
"""

# What varies between two identical runs, and is replaced before an output is written:
# the scan's elapsed time in the text summary line ("Scanned 19 files (18.9 KB) in 0.12 s
# with ...") and in the JSON / JSON lines statistics ("seconds": 0.123; no other key is
# named exactly "seconds"), and the output directory's absolute path, should keyscope
# ever print one (it is given relative paths only). SARIF carries no time.
VARIABLE = [
    (re.compile(rb"(Scanned [^\n]*?\) in )\d+\.\d+( s with )"), rb"\1<elapsed>\2"),
    (re.compile(rb'("seconds": )\d+(?:\.\d+)?'), rb"\1<elapsed>"),
]


@dataclass(frozen=True)
class Case:
    """One keyscope command line, run in the corpus directory."""

    name: str
    argv: tuple[str, ...]
    stdin: bytes | None = None
    reads: str = ""  # the output is this file (relative to the corpus), not standard output


# ----------------------------------------------------------------------------- corpora


def git(repo: Path, *args: str, author: tuple[str, str] = ALICE, date: str = "") -> str:
    """git in ``repo`` with no user or system configuration and fixed identities and dates."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": author[0],
        "GIT_AUTHOR_EMAIL": author[1],
        "GIT_COMMITTER_NAME": author[0],
        "GIT_COMMITTER_EMAIL": author[1],
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def build_incident(repo: Path, signer: run.Signer) -> None:
    """tests/test_git_history.py's story: a SAS committed 2020-07, its expiry extended, a
    connection string on a branch (renamed, merged), all deleted; a reset-away commit that
    only --all-objects finds; an untracked file and a staged one (--staged)."""

    def write(name: str, text: str | bytes) -> None:
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)

    def commit(message: str, author: tuple[str, str], date: str) -> None:
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", message, author=author, date=date)

    def sas_url(account: str, key: str, expiry: datetime) -> str:
        start = datetime(2020, 7, 1, tzinfo=UTC)
        sas = signer.account_sas(
            account, key, "bfqt", "sco", "rwdlacup", expiry, start, "https,http"
        )
        return f"https://{account}.blob.core.windows.net/models/weights.ckpt?{sas}"

    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    key = signer.key()
    first = sas_url("robustmodels", key, datetime(2021, 10, 6, tzinfo=UTC))
    second = sas_url("robustmodels", key, datetime(2051, 10, 6, tzinfo=UTC))
    write("README.md", "# Robust models\n\nWeights are coming soon.\n")
    write("assets/logo.png", bytes(range(256)) * 8)
    commit("Initial commit", ALICE, "2020-06-01T10:00:00+00:00")
    write("README.md", f"# Robust models\n\nDownload the weights:\n\n    {first}\n")
    commit("Add download link for the weights", ALICE, "2020-07-20T09:30:00+00:00")
    git(repo, "tag", "v1.0")
    git(repo, "checkout", "-q", "-b", "feature/storage")
    write("config/storage.env", f"STORAGE={run.conn('robustdata', signer.key())}\n")
    commit("Add storage config", CAROL, "2020-09-01T12:00:00+00:00")
    git(repo, "mv", "config/storage.env", "config/prod.env")
    commit("Rename config", CAROL, "2020-09-02T12:00:00+00:00")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge storage config", "feature/storage",
        author=BOB, date="2020-09-10T08:00:00+00:00")  # fmt: skip
    write("README.md", f"# Robust models\n\nDownload the weights:\n\n    {second}\n")
    commit("Extend the link's expiry", BOB, "2021-10-05T23:09:59+00:00")
    write("README.md", "# Robust models\n\nAsk us for the weights.\n")
    (repo / "config" / "prod.env").unlink()
    commit("Remove secrets", BOB, "2023-06-24T00:00:00+00:00")
    write("oops.env", f"AccountName=robustoops\nAccountKey={signer.key()}\n")
    commit("oops", CAROL, "2023-07-01T00:00:00+00:00")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    write("notes.md", f"staging: {run.conn('robuststaging', signer.key())}\n")
    write("deploy/ci.env", f"CI_STORAGE={run.conn('robustci', signer.key())}\n")
    git(repo, "add", "deploy/ci.env")  # staged, not committed: what --staged scans


def build_walk(root: Path, signer: run.Signer) -> None:
    """A directory tree for the file walk: nested .gitignore files (negation, anchored and
    directory patterns), an excluded folder, symbolic links (into the tree, out of it,
    broken, to a directory, a loop), a FIFO, a Hugging Face cache, binary, UTF-16 and
    Base64 forms, an inline ignore, a file over 1 KiB, a key only the user rule of
    ``RULE`` names; each secret of its own account."""
    accounts = iter(range(1, 100))

    def secret() -> str:
        return run.conn(f"walk{next(accounts):02d}acct", signer.key())

    def write(name: str, data: str | bytes) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)

    write(".gitignore", "*.log\nbuild/\n!keep.log\n/root-only.env\n")
    for name in ("app.env", "debug.log", "keep.log", "root-only.env", "build/out.env"):
        write(name, f"STORAGE={secret()}\n")
    write("nested/.gitignore", "local.env\n")
    for name in ("local.env", "app.env", "deeper/local.env", "deeper/root-only.env"):
        write(f"nested/{name}", f"STORAGE={secret()}\n")
    write("vendor/lib/settings.env", f"STORAGE={secret()}\n")
    write(".hidden/config.env", f"STORAGE={secret()}\n")
    write("ignored-inline.env", f"STORAGE={secret()}  # keyscope:ignore test fixture\n")
    write("big.env", "# padding\n" * 120 + f"STORAGE={secret()}\n")
    write("bin/blob.bin", bytes(range(256)) + f"\0{secret()}\0".encode() + bytes(64))
    write("utf16.txt", ("\ufeff" + f"STORAGE={secret()}\r\n").encode("utf-16-le"))
    write("b64.txt", f"blob: {run.b64(secret())}\n")
    write("custom.cfg", f"STORAGE_ACCOUNT=walkcustom\nSTORAGE_SECRET={signer.key()}\n")
    hub = "hf/hub/models--org--tiny"
    write(f"{hub}/blobs/0123abcd", f"STORAGE={secret()}\n")
    write(f"{hub}/blobs/orphan99", f"STORAGE={secret()}\n")
    write(f"{hub}/refs/main", "0a1b2c3d\n")
    for rev in ("0a1b2c3d", "4e5f6a7b"):
        (root / hub / "snapshots" / rev).mkdir(parents=True)
        (root / hub / "snapshots" / rev / "config.env").symlink_to("../../blobs/0123abcd")
    (root / "link-in.env").symlink_to("app.env")
    (root / "link-out.env").symlink_to("../accuracy/.env")
    (root / "broken.env").symlink_to("missing.env")
    (root / "dir-link").symlink_to("nested", target_is_directory=True)
    (root / "nested" / "deeper" / "loop").symlink_to("..", target_is_directory=True)
    os.mkfifo(root / "pipe")


def build_models(out: Path, python: str) -> None:
    """models.py's fixture set (the part keyscope's interpreter can write, offline). Its
    builders come from this checkout's tests/, which import this checkout's src/."""
    env = dict(
        os.environ,
        PYTHONPATH=str(HERE.parent / "src"),
        TZ="UTC",
        PYTHONHASHSEED="0",
        OMP_NUM_THREADS="1",
    )
    done = subprocess.run(
        [python, "-c", MODEL_GENERATOR, str(HERE / "models.py"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"writing the model fixtures failed:\n{done.stderr[-2000:]}")


def build_history(root: Path) -> Path:
    """history.py's generated history (stdlib files replayed, six plants), shortened."""
    manifest = history.build_repo("history", HISTORY_COMMITS, seed=1, rebuild=True, work=root)
    return Path(manifest["repo"])


def build_corpora(root: Path, python: str) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    log("corpus: accuracy (run.build_corpus, seed 2023)")
    run.build_corpus(root / "accuracy", SEED)
    log("corpus: model files (models.generate_fixtures)")
    build_models(root / "models", python)
    log("corpus: a tree for the file walk")
    build_walk(root / "walk", run.Signer(SEED + 3))
    log("corpus: incident-shaped git repository")
    build_incident(root / "incident", run.Signer(SEED + 1))
    log(f"corpus: generated git history ({HISTORY_COMMITS} commits)")
    build_history(root / "history-work")


def git_digest(repo: Path) -> str:
    """What a repository holds, independent of how git packed it: every ref and object id."""
    refs = git(repo, "for-each-ref", "--format=%(objectname) %(refname)")
    objects = git(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
    worktree = "" if git(repo, "rev-parse", "--is-bare-repository") == "true" else (
        git(repo, "status", "--porcelain", "--untracked-files=all")
    )
    return hashlib.sha256(f"{refs}\n{objects}\n{worktree}".encode()).hexdigest()


def corpus_digest(root: Path) -> str:
    """One line per corpus file (sha256 of its bytes) and per repository (git_digest);
    history.py's build manifest (it records the build time) is left out."""
    lines: list[str] = []
    for directory, dirs, names in os.walk(root):
        here = Path(directory)
        rel = here.relative_to(root).as_posix()
        if (here / "objects").is_dir() and (here / "HEAD").is_file():  # a bare repository
            lines.append(f"{git_digest(here)}  {rel}/ (git)")
            dirs[:] = []
            continue
        if ".git" in dirs:
            lines.append(f"{git_digest(here)}  {rel}/ (git)")
            dirs.remove(".git")
        dirs.sort()
        for name in sorted(names + [d for d in dirs if (here / d).is_symlink()]):
            path = here / name
            rel = path.relative_to(root).as_posix()
            if here.name == "history-work" and name.endswith((".json", ".marks")):
                continue
            if path.is_symlink():
                lines.append(f"link {os.readlink(path)}  {rel}")
            elif stat.S_ISFIFO(path.lstat().st_mode):
                lines.append(f"fifo  {rel}")
            else:
                lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {rel}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- cases


def explain_values() -> list[tuple[str, tuple[str, ...]]]:
    """A few values signed by the Azure SDK (seeded keys): the explain cases' arguments."""
    s = run.Signer(SEED + 2)
    acct, key = s.account("contosoresearch"), s.key()
    incident = s.account_sas(
        acct, key, "bfqt", "sco", "rwdlacup",
        datetime(2051, 10, 6, 7, 9, 59, tzinfo=UTC), datetime(2021, 10, 5, 23, 9, 59, tzinfo=UTC),
        "https,http",
    )  # fmt: skip
    blob_acct, blob_key = s.account("releases"), s.key()
    blob = s.blob_sas(blob_acct, blob_key, "releases", "model.ckpt", "r", run.d(2028, 6, 30))
    udk_acct = s.account("partners")
    udk = s.user_delegation_sas(udk_acct, "drop", "q3-report.pdf", run.d(2026, 12, 26))
    sas_conn = (
        f"BlobEndpoint=https://{blob_acct}.blob.core.windows.net/;SharedAccessSignature={blob}"
    )
    return [
        ("incident-url", (run.url(acct, "models/checkpoint.ckpt", incident),)),
        ("account-sas-query-with-key", ("--account", acct, "--key", key, incident)),
        ("account-sas-query-other-key", ("--account", acct, "--key", s.key(), incident)),
        ("service-sas-url", (run.url(blob_acct, "releases/model.ckpt", blob),)),
        ("user-delegation-sas", (run.url(udk_acct, "drop/q3-report.pdf", udk),)),
        ("connection-string", (run.conn(acct, key),)),
        ("sas-connection-string", (sas_conn,)),
        ("account-key", ("--account", acct, key)),
        ("emulator", (run.EMULATOR_CONN,)),
        ("not-a-credential", ("sig=<signature>",)),
    ]


def cases(policy: Path, stdin: bytes) -> list[Case]:
    """Every command line run, in order; paths are relative to the corpus directory;
    ``stdin`` is what ``scan -`` reads."""
    fixed = ("-j", "1", "--now", NOW, "--color", "never")

    def scan(name: str, fmt: str, *argv: str, data: bytes | None = None, reads: str = "") -> Case:
        return Case(f"{name}.{fmt}", (*argv, *fixed, "--format", fmt), data, reads)

    every_format = {
        "scan-accuracy": ("scan", "accuracy"),
        "scan-models": ("scan", "models"),
        "models-models": ("models", "models"),
        "scan-incident": ("scan", "incident"),
        "scan-incident-all-objects": ("scan", "--all-objects", "incident"),
        "scan-history": ("scan", "history-work/history.git"),
        "scan-walk": ("scan", "walk"),
    }
    out = [scan(name, fmt, *argv) for name, argv in every_format.items() for fmt in FORMATS]
    verbose = ("-v", "--all-locations")
    out += [
        scan("scan-accuracy-verbose", "text", "scan", "accuracy", *verbose),
        scan("scan-accuracy-show-secrets", "json", "scan", "accuracy", "--show-secrets"),
        scan("scan-accuracy-engine-re", "json", "scan", "accuracy", "--engine", "re"),
        scan("scan-accuracy-policy", "json", "scan", "accuracy", "--config", str(policy)),
        scan("scan-accuracy-fail-on-high", "text", "scan", "accuracy", "--fail-on", "high", "-q"),
        scan("scan-incident-no-git", "json", "scan", "--no-git", "incident"),
        scan("scan-incident-branch", "jsonl", "scan", "--branch", "feature/storage", "incident"),
        scan("scan-incident-verbose", "text", "scan", "incident", *verbose),
        scan("scan-incident-staged", "json", "scan", "--staged", "incident"),
        scan("scan-incident-since", "json", "scan", "--since", "v1.0", "incident"),
        scan("scan-incident-range", "text", "scan", "--range", "v1.0..main", "incident"),
        scan("scan-walk-verbose", "text", "scan", "walk", *verbose),
        scan("scan-walk-no-ignore", "json", "scan", "walk", "--no-ignore", "-v"),
        scan("scan-walk-exclude", "json", "scan", "walk", "--exclude", "vendor",
             "--exclude", "*.txt", "--exclude", "nested/deeper/*"),
        scan("scan-walk-follow-symlinks", "text", "scan", "walk", "--follow-symlinks", *verbose),
        scan("scan-walk-max-size", "json", "scan", "walk", "--max-file-size", "1K", "-v"),
        scan("scan-walk-roots", "json", "scan", "./walk/nested", "walk/app.env", "accuracy/.env"),
        scan("scan-walk-jobs-2", "json", "scan", "walk", "accuracy", "models", "-j", "2"),
        scan("models-models-verbose", "text", "models", "models", *verbose),
        scan("scan-stdin", "json", "scan", "-", data=stdin),
        scan("scan-accuracy-output-file", "sarif", "scan", "accuracy", "-o", REPORT, reads=REPORT),
        scan("scan-rules", "json", "scan", "accuracy", "walk", "--rules", "../rules-good"),
        scan("scan-rules", "sarif", "scan", "accuracy", "walk", "--rules", "../rules-good"),
        scan("scan-rules-unknown-parser", "text", "scan", "accuracy", "--rules", "../rules-bad"),
        scan("hook", "text", "hook", "accuracy/.env", "walk/app.env", "walk/keep.log"),
        scan("hook", "json", "hook", "accuracy/.env", "walk/app.env", "walk/keep.log"),
        Case(
            "baseline-create.json",
            ("baseline", "create", "-j", "1", "--now", NOW, "-q", BASELINE, "accuracy"),
            reads=BASELINE,
        ),
    ]
    out += [
        scan("scan-accuracy-baseline", fmt, "scan", "accuracy", "--baseline", BASELINE)
        for fmt in FORMATS
    ]
    values = explain_values()
    explain = ("explain", "--now", NOW, "--color", "never")
    out.append(Case("explain-stdin.text", (*explain, "-"), values[0][1][0].encode() + b"\n"))
    out += [
        Case(f"explain-{name}.{fmt}", (*explain, "--format", fmt, *args))
        for name, args in values
        for fmt in ("text", "json")
    ]
    return out


POLICY = """\
[policy]
max-lifetime = "8h"
wide-read-max-lifetime = "1d"
require-https = true
allow-account-sas = false

[policy.severity]
http-allowed = "off"
long-lifetime = "high"
"""


# A user rule (--rules DIR): a bare account key under a name the built-in rules do not
# know, fed to the built-in account-key parser; with an unknown parser it must not load.
RULE = """\
[[rules]]
id = "custom-storage-secret"
name = "Storage key in STORAGE_SECRET"
description = "An account key assigned to STORAGE_SECRET, next to STORAGE_ACCOUNT."
parser = "PARSER"
pattern = 'STORAGE_SECRET='
capture = 'STORAGE_SECRET=(?P<value>[A-Za-z0-9+/]{86}==)'
examples = ["STORAGE_ACCOUNT=contosoai\\nSTORAGE_SECRET=\
7aTka1ItZedkAVsP40xg0h4MDfxqrtawbvLi7hySs7aTka1ItZedkAVsP40xg0h4MDfxqrtawbvLi7hySsxyzABC12=="]
"""


def normalise(data: bytes, out: Path) -> bytes:
    for pattern, replacement in VARIABLE:
        data = pattern.sub(replacement, data)
    return data.replace(str(out.resolve()).encode(), b"<out>")


def keyscope_env(src: Path) -> dict[str, str]:
    """A fixed environment: only PATH and HOME kept, UTC, no colour, no git config."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR")}
    env.update(
        PYTHONPATH=str(src.resolve()),
        TZ="UTC",
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
        NO_COLOR="1",
        TERM="dumb",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
    )
    return env


def run_cases(python: str, src: Path, out: Path) -> None:
    corpus = out / CORPUS
    policy = out / "policy.toml"
    policy.write_text(POLICY)
    for name, parser in (("rules-good", "azure-account-key"), ("rules-bad", "no-such-parser")):
        (out / name).mkdir()
        (out / name / "custom.toml").write_text(RULE.replace("PARSER", parser))
    env = keyscope_env(src)
    codes: list[str] = []
    for case in cases(Path("..") / policy.name, (corpus / "accuracy" / ".env").read_bytes()):
        done = subprocess.run(
            [python, "-m", "keyscope", *case.argv],
            cwd=corpus,
            env=env,
            input=case.stdin if case.stdin is not None else b"",
            capture_output=True,
            check=False,
            timeout=600,
        )
        stdout = (corpus / case.reads).read_bytes() if case.reads else done.stdout
        (out / case.name).write_bytes(normalise(stdout, out))
        if done.stderr:
            (out / f"{case.name}.stderr").write_bytes(normalise(done.stderr, out))
        codes.append(f"{case.name} {done.returncode}")
        log(f"{case.name}: exit {done.returncode}, {len(stdout)} bytes")
    (out / "exit-codes.txt").write_text("\n".join(codes) + "\n")


# ----------------------------------------------------------------------------- compare


def compare(a: Path, b: Path, limit: int = 60) -> int:
    """0 when every output file of ``a`` and ``b`` is the same; else print a diff and 1."""

    def files(root: Path) -> set[str]:
        return {
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and p.relative_to(root).parts[0] != CORPUS
        }

    left, right = files(a), files(b)
    differ = 0
    for name in sorted(left | right):
        if name not in right or name not in left:
            print(f"only in {a if name in left else b}: {name}")
            differ += 1
            continue
        x, y = (a / name).read_bytes(), (b / name).read_bytes()
        if x == y:
            continue
        differ += 1
        diff = list(
            difflib.unified_diff(
                x.decode("utf-8", "replace").splitlines(),
                y.decode("utf-8", "replace").splitlines(),
                f"{a.name}/{name}",
                f"{b.name}/{name}",
                lineterm="",
            )
        )
        print("\n".join(diff[:limit]) or f"{name}: differs (same lines, other bytes)")
        if len(diff) > limit:
            print(f"... {len(diff) - limit} more diff lines")
    print(
        f"{len(left | right)} files compared: "
        + ("all identical" if not differ else f"{differ} differ")
        + f" ({a} vs {b})"
    )
    return 1 if differ else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keyscope-src", type=Path, help="the src directory to run keyscope from")
    parser.add_argument("--out", type=Path, help="write the outputs (and corpora) here")
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter for keyscope (default: this one)"
    )
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("DIR_A", "DIR_B"))
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    if not args.keyscope_src or not args.out:
        parser.error("give --keyscope-src and --out, or --compare DIR_A DIR_B")
    if not (args.keyscope_src / "keyscope" / "__init__.py").is_file():
        parser.error(f"{args.keyscope_src} holds no keyscope package")
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    build_corpora(out / CORPUS, args.python)
    (out / "corpus.sha256").write_text(corpus_digest(out / CORPUS))
    run_cases(args.python, args.keyscope_src, out)
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
