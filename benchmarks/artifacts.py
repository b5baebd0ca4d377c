#!/usr/bin/env python3
"""Artifacts benchmark: keyscope and Kingfisher on published packages and an image.

Run from the project root with keyscope's own interpreter (the ``test`` extra signs the
planted tokens with the Azure SDK)::

    .venv/bin/python benchmarks/artifacts.py            # build (cached), measure, report
    .venv/bin/python benchmarks/artifacts.py --quick    # a smaller corpus, fewer runs
    .venv/bin/python benchmarks/artifacts.py --report-only  # rewrite ARTIFACTS.md

The corpus (``benchmarks/.work/artifacts/``, downloads cached in
``benchmarks/.work/artifacts-cache/``) is made of real published packages fetched with
``pip download`` (wheels, and sdists such as pyspark's, whose tarball holds jars), a
container image tarball built here with umoci and skopeo from this machine's Python
files, and a few planted Azure Storage credentials (SAS signed by the Azure SDK, account
keys, connection strings) inside nested members: a jar in a wheel, a 7z and a notebook
in an sdist, a .deb, a zstd tar, the image's layers and config. Each tool runs under
``/usr/bin/time`` while a sampler adds up the RSS of its process tree; one warm-up, then
the median of ``--runs`` runs, the tools taking turns. The findings are compared: every
Azure Storage secret Kingfisher reports must be reported by keyscope at the same member
(and line). Results: ``benchmarks/artifacts-results.json`` and ``benchmarks/ARTIFACTS.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is not a package

import run
from common import (
    TIME_BIN,
    Usage,
    become_subreaper,
    fmt,
    logger,
    machine,
    measure,
    median,
    pip_install,
    until_undisturbed,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / ".work"
CACHE = WORK / "artifacts-cache"
OUT = WORK / "artifacts-out"
RESULTS = HERE / "artifacts-results.json"
REPORT = HERE / "ARTIFACTS.md"
KINGFISHER_PIN = run.PINS["kingfisher-bin"]
MB = 1_000_000

log = logger("artifacts")

# Real published packages, pinned. Wheels for CPython 3.11 on manylinux x86_64.
WHEELS = (
    "botocore==1.35.36",  # service models: thousands of JSON files
    "numpy==2.1.2",
    "pandas==2.2.3",
    "scipy==1.14.1",
    "pyarrow==17.0.0",
    "grpcio-tools==1.66.2",
    "jupyterlab==4.2.5",  # minified JavaScript bundles
    "notebook==7.2.2",
    "django==5.1.2",
    "azure-storage-blob==12.23.1",
    "azure-core==1.31.0",
    "cryptography==43.0.1",
    "matplotlib==3.9.2",
    "tabula-py==2.9.3",  # a jar with dependencies inside the wheel
    "konlpy==0.6.0",  # several jars inside the wheel
    "JPype1==1.5.0",  # a jar
    "py4j==0.10.9.7",  # a jar
    "setuptools==75.1.0",
    "pip==24.2",  # vendored libraries
    "ansible-core==2.17.5",  # YAML and config
    "streamlit==1.39.0",  # frontend bundles
)
SDISTS = (
    "pyspark==3.5.3",  # a 317 MB tar.gz holding 252 jars (Spark and its dependencies)
    "django==5.1.2",
    "requests==2.32.3",
)
QUICK_WHEELS = ("botocore==1.35.36", "tabula-py==2.9.3", "konlpy==0.6.0", "py4j==0.10.9.7",
                "jupyterlab==4.2.5", "pip==24.2", "ansible-core==2.17.5")  # fmt: skip
QUICK_SDISTS = ("django==5.1.2", "requests==2.32.3")
# What the container image is made of: real files of this machine (layer 1).
IMAGE_SOURCES = ("/usr/lib/python3.11", "/usr/lib/python3/dist-packages")

# Kingfisher rules whose findings are of a kind keyscope detects (Azure Storage account
# keys, connection strings, SAS); ``…-account-name`` only names the account a key needs.
STORAGE_RULE_WORDS = ("azure-storage", "azure_storage", "azure.storage", "sas")
COMPONENT_RULES = ("account-name", "client-id", "tenant-id")


# --------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class Plant:
    """A planted credential: in ``outer`` (relative to the corpus), at the innermost
    member ``inner``; ``needle`` is a part of the secret Kingfisher would print."""

    name: str
    kind: str  # "account key", "key connection string", "SAS URL", "SAS connection string"
    outer: str
    inner: str
    needle: str
    where: str  # how it is nested, for the report
    step: str = ""  # keyscope's own name for ``inner``, if another (the image's "config")


def _run(argv: Sequence[str], cwd: Path | None = None) -> None:
    subprocess.run(list(argv), cwd=cwd, check=True, capture_output=True)


def download(specs: Sequence[str], binary: bool) -> list[Path]:
    """The files of ``specs`` (wheels or sdists), downloaded once into the cache."""
    dest = CACHE / ("wheels" if binary else "sdists")
    dest.mkdir(parents=True, exist_ok=True)
    stamp = dest / "downloaded.json"
    done: dict[str, list[str]] = json.loads(stamp.read_text()) if stamp.exists() else {}
    missing = [s for s in specs if s not in done]
    if missing:
        log(f"pip download {'wheels' if binary else 'sdists'}: {', '.join(missing)}")
        for spec in missing:
            before = set(dest.iterdir())
            argv = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "-d", str(dest)]  # fmt: skip
            if binary:
                argv += ["--only-binary=:all:", "--platform", "manylinux2014_x86_64",
                         "--python-version", "3.11", "--implementation", "cp"]  # fmt: skip
            else:
                argv += ["--no-binary=:all:", "--no-build-isolation"]
            subprocess.run([*argv, spec], check=True, capture_output=True)
            new = sorted(p.name for p in set(dest.iterdir()) - before)
            done[spec] = new or done.get(spec, [])
            if not new:  # already there under another spec (the same file)
                name = spec.split("==")[0].lower().replace("-", "_")
                done[spec] = [p.name for p in dest.iterdir()
                              if p.name.lower().replace("-", "_").startswith(name)][:1]  # fmt: skip
        stamp.write_text(json.dumps(done, indent=1, sort_keys=True))
    return [dest / name for spec in specs for name in done[spec]]


def build_image(signer: run.Signer, plants: dict[str, str]) -> Path:
    """A docker-archive tarball (as ``docker save`` writes it) of a 3-layer image built
    with umoci: this machine's Python files; an app with a ``.env`` and a settings file;
    then the ``.env`` deleted (a whiteout). The config's Env carries a SAS connection
    string. Cached; ``plants`` gets the secrets."""
    target = CACHE / "image" / "acme-app-image.tar"
    secrets = CACHE / "image" / "secrets.json"
    if target.exists() and secrets.exists():
        plants.update(json.loads(secrets.read_text()))
        return target
    for tool in ("umoci", "skopeo"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed to build the image: apt-get install {tool}")
    work = CACHE / "image" / "build"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    layout, ref = work / "layout", "app"
    log("building the container image with umoci/skopeo")
    _run(["umoci", "init", "--layout", str(layout)])
    _run(["umoci", "new", "--image", f"{layout}:{ref}"])
    bundle = work / "bundle"
    _run(["umoci", "unpack", "--rootless", "--image", f"{layout}:{ref}", str(bundle)])
    rootfs = bundle / "rootfs"
    for source in IMAGE_SOURCES:
        if Path(source).is_dir():
            dest = rootfs / source.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(source, dest, symlinks=True, ignore=shutil.ignore_patterns(
                "__pycache__"))  # fmt: skip
    _run(["umoci", "repack", "--refresh-bundle", "--image", f"{layout}:{ref}", str(bundle)])
    account, key = signer.account("acmeappdata"), signer.key()
    env_conn = run.conn(account, key)
    sas_account, sas_key = signer.account("acmeappmedia"), signer.key()
    sas = signer.blob_sas(sas_account, sas_key, "media", "uploads/", "racw", run.d(2031))
    sas_url = run.url(sas_account, "media/uploads/", sas)
    app = rootfs / "app"
    (app / "config").mkdir(parents=True)
    (app / ".env").write_text(f"APP_ENV=production\nAZURE_STORAGE_CONNECTION_STRING={env_conn}\n")
    (app / "config" / "storage.json").write_text(
        json.dumps({"media": {"uploadUrl": sas_url, "maxMb": 50}}, indent=2) + "\n"
    )
    _run(["umoci", "repack", "--refresh-bundle", "--image", f"{layout}:{ref}", str(bundle)])
    (app / ".env").unlink()
    _run(["umoci", "repack", "--refresh-bundle", "--image", f"{layout}:{ref}", str(bundle)])
    cfg_account, cfg_key = signer.account("acmeappcfg"), signer.key()
    cfg_sas = signer.account_sas(cfg_account, cfg_key, "b", "co", "rl", run.d(2030))
    cfg_conn = f"BlobEndpoint=https://{cfg_account}.blob.core.windows.net/;SharedAccessSignature={cfg_sas}"
    _run(["umoci", "config", "--image", f"{layout}:{ref}",
          "--config.env", f"AZURE_STORAGE_CONNECTION_STRING={cfg_conn}",
          "--config.label", "org.opencontainers.image.title=acme-app"])  # fmt: skip
    target.unlink(missing_ok=True)
    _run(["skopeo", "copy", f"oci:{layout}:{ref}", f"docker-archive:{target}:acme/app:1.0"])
    shutil.rmtree(work)
    found = {"image-env": key, "image-settings": sas.split("sig=")[1][:12],
             "image-config": cfg_sas.split("sig=")[1][:12]}  # fmt: skip
    secrets.write_text(json.dumps(found))
    plants.update(found)
    return target


def image_members(image: Path) -> dict[str, str]:
    """In a docker-archive: the config's member name and the layer that holds each of
    ``app/.env`` and ``app/config/storage.json``."""
    out: dict[str, str] = {}
    with tarfile.open(image) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        out["config"] = manifest[0]["Config"]
        for layer in manifest[0]["Layers"]:
            member = outer.getmember(layer)
            while member.issym():  # legacy <id>/layer.tar -> ../<diffid>.tar
                member = outer.getmember(os.path.normpath(
                    os.path.join(os.path.dirname(member.name), member.linkname)))  # fmt: skip
            with tarfile.open(fileobj=outer.extractfile(member)) as inner:
                for name in inner.getnames():
                    if name.lstrip("./") in ("app/.env", "app/config/storage.json"):
                        out.setdefault(name.lstrip("./"), member.name)
    return out


def zip_bytes(members: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def build_planted(root: Path, signer: run.Signer, plants: dict[str, str]) -> None:
    """Small artifacts, each hiding one or two credentials in nested members."""
    root.mkdir(parents=True, exist_ok=True)
    # a jar inside a wheel: a key connection string in application.properties
    account, key = signer.account("acmesync"), signer.key()
    jar = zip_bytes({
        "META-INF/MANIFEST.MF": "Manifest-Version: 1.0\nCreated-By: 17.0.9 (Eclipse Adoptium)\n",
        "application.properties": "spring.application.name=acme-sync\nsync.batch=500\n"
        f"azure.storage.connection-string={run.conn(account, key)}\n",
        "com/acme/sync/Main.class": b"\xca\xfe\xba\xbe\x00\x00\x00\x3d" + bytes(200),
    })  # fmt: skip
    wheel = {
        "acme_storage/__init__.py": '"""Acme storage helpers."""\n__version__ = "1.4.0"\n',
        "acme_storage/lib/acme-sync.jar": jar,
        "acme_storage-1.4.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: acme-storage\n"
        "Version: 1.4.0\n",
        "acme_storage-1.4.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: bench\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    (root / "acme_storage-1.4.0-py3-none-any.whl").write_bytes(zip_bytes(wheel))
    plants["wheel-jar"] = key

    # an sdist: a notebook output with an account SAS URL, and a 7z with a bare key
    src = root / "_sdist" / "acme-tools-0.3.0"
    shutil.rmtree(root / "_sdist", ignore_errors=True)
    (src / "notebooks").mkdir(parents=True)
    (src / "vendor").mkdir()
    sas_account, sas_key = signer.account("acmenotebooks"), signer.key()
    sas = signer.account_sas(sas_account, sas_key, "bf", "sco", "rwdlacup", run.d(2051))
    notebook = {
        "nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3"}},
        "cells": [
            {"cell_type": "markdown", "id": "a1", "metadata": {}, "source": ["# Export\n"]},
            {"cell_type": "code", "id": "b2", "metadata": {}, "execution_count": 3,
             "source": ["print(export_url)\n"],
             "outputs": [{"output_type": "stream", "name": "stdout",
                          "text": [run.url(sas_account, "exports", sas) + "\n"]}]},
        ],
    }  # fmt: skip
    (src / "notebooks" / "export.ipynb").write_text(json.dumps(notebook, indent=1) + "\n")
    plants["sdist-notebook"] = sas.split("sig=")[1][:12]
    ini_account, ini_key = signer.account("acmevendor"), signer.key()
    ini = src / "_7z" / "storage.ini"
    ini.parent.mkdir()
    ini.write_text(f"[storage]\naccount_name = {ini_account}\naccount_key = {ini_key}\n")
    _run(["7z", "a", "-bd", "-y", str(src / "vendor" / "assets.7z"), "storage.ini"], ini.parent)
    shutil.rmtree(ini.parent)
    plants["sdist-7z"] = ini_key
    (src / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: acme-tools\nVersion: 0.3.0\n")
    (src / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    _run(["tar", "--sort=name", "--owner=0", "--group=0", "--mtime=2026-01-01", "-czf",
          str(root / "acme-tools-0.3.0.tar.gz"), "acme-tools-0.3.0"], src.parent)  # fmt: skip
    shutil.rmtree(root / "_sdist")

    # a Debian package: a key connection string in /etc/acme/agent.conf
    deb = root / "_deb"
    shutil.rmtree(deb, ignore_errors=True)
    (deb / "DEBIAN").mkdir(parents=True)
    (deb / "etc" / "acme").mkdir(parents=True)
    (deb / "DEBIAN" / "control").write_text(
        "Package: acme-agent\nVersion: 1.0.0\nArchitecture: amd64\n"
        "Maintainer: Acme <ops@example.com>\nDescription: Acme upload agent\n"
    )
    deb_account, deb_key = signer.account("acmeagent"), signer.key()
    (deb / "etc" / "acme" / "agent.conf").write_text(
        f"interval=300\nstorage={run.conn(deb_account, deb_key)}\n"
    )
    _run(["dpkg-deb", "--root-owner-group", "-b", str(deb),
          str(root / "acme-agent_1.0.0_amd64.deb")])  # fmt: skip
    shutil.rmtree(deb)
    plants["deb"] = deb_key

    # a zstd-compressed tar: an azcopy line with a container SAS URL
    zst = root / "_zst"
    shutil.rmtree(zst, ignore_errors=True)
    (zst / "backup").mkdir(parents=True)
    c_account, c_key = signer.account("acmebackup"), signer.key()
    c_sas = signer.container_sas(c_account, c_key, "nightly", "rwl", run.d(2035))
    (zst / "backup" / "upload.sh").write_text(
        "#!/bin/sh\nset -eu\n"
        f'azcopy copy ./dump "{run.url(c_account, "nightly", c_sas)}" --recursive\n'
    )
    _run(["tar", "--zstd", "--owner=0", "--group=0", "-cf", str(root / "acme-backup.tar.zst"),
          "backup"], zst)  # fmt: skip
    shutil.rmtree(zst)
    plants["zstd-tar"] = c_sas.split("sig=")[1][:12]


def plant_list(members: dict[str, str], secrets: dict[str, str]) -> list[Plant]:
    image = "image/acme-app-image.tar"
    rows = [
        ("wheel-jar", "key connection string", "planted/acme_storage-1.4.0-py3-none-any.whl",
         "application.properties", "wheel → jar → application.properties"),
        ("sdist-notebook", "SAS URL (account SAS)", "planted/acme-tools-0.3.0.tar.gz",
         "acme-tools-0.3.0/notebooks/export.ipynb", "tar.gz → notebook cell output"),
        ("sdist-7z", "account key", "planted/acme-tools-0.3.0.tar.gz", "storage.ini",
         "tar.gz → 7z → storage.ini"),
        ("deb", "key connection string", "planted/acme-agent_1.0.0_amd64.deb",
         "etc/acme/agent.conf", ".deb → data.tar.xz → etc/acme/agent.conf"),
        ("zstd-tar", "SAS URL (container SAS)", "planted/acme-backup.tar.zst",
         "backup/upload.sh", "tar.zst → backup/upload.sh"),
        ("image-env", "key connection string", image, "app/.env",
         f"image → layer {members.get('app/.env', '?')} → app/.env (deleted in a later layer)"),
        ("image-settings", "SAS URL (blob SAS)", image, "app/config/storage.json",
         "image → layer → app/config/storage.json"),
        ("image-config", "SAS connection string", image, members.get("config", "?"),
         "image → config Env"),
    ]  # fmt: skip
    steps = {"image-config": "config"}  # unpack/images.py names the config "config!/Env"
    return [Plant(n, k, o, i, secrets.get(n, ""), w, steps.get(n, "")) for n, k, o, i, w in rows]


def build_corpus(quick: bool) -> tuple[Path, list[Plant], dict[str, Any]]:
    """The corpus folder (hard links to the cached downloads) and what was planted."""
    root = WORK / ("artifacts-quick" if quick else "artifacts")
    shutil.rmtree(root, ignore_errors=True)
    (root / "packages").mkdir(parents=True)
    files = download(QUICK_WHEELS if quick else WHEELS, True)
    files += download(QUICK_SDISTS if quick else SDISTS, False)
    for path in files:
        os.link(path, root / "packages" / path.name)
    secrets: dict[str, str] = {}
    image = build_image(run.Signer(2027), secrets)  # cached, with its secrets
    signer = run.Signer(2026)
    (root / "image").mkdir()
    os.link(image, root / "image" / image.name)
    build_planted(root / "planted", signer, secrets)
    plants = plant_list(image_members(image), secrets)
    listing = sorted(p for p in root.rglob("*") if p.is_file())
    manifest = {
        "files": len(listing),
        "bytes": sum(p.stat().st_size for p in listing),
        "packages": [p.name for p in files],
        "specs": [*(QUICK_WHEELS if quick else WHEELS), *(QUICK_SDISTS if quick else SDISTS)],
        "image": {"file": image.name, "bytes": image.stat().st_size,
                  "made_of": list(IMAGE_SOURCES)},
        "by_folder": {
            d.name: {"files": len(fs := [p for p in listing if p.parent == d]),
                     "bytes": sum(p.stat().st_size for p in fs)}
            for d in sorted(root.iterdir())
        },
    }
    return root, plants, manifest


# --------------------------------------------------------------------------- tools


def ensure_venv(skip_install: bool) -> None:
    """benchmarks/.venv with Kingfisher (the native binary of ``kingfisher-bin``)."""
    if not run.venv_bin("python").exists():
        if skip_install:
            raise SystemExit(f"--skip-install given but {run.VENV} does not exist")
        subprocess.run([sys.executable, "-m", "venv", str(run.VENV)], check=True)
    if not skip_install:
        log(f"installing kingfisher-bin=={KINGFISHER_PIN} into {run.VENV}")
        pip_install(run.venv_bin("python"), [f"kingfisher-bin=={KINGFISHER_PIN}"])


def kingfisher_bin() -> Path:
    return run.bundled_binary("kingfisher", "kingfisher")


def tool_argv(tool: str, target: Path, report: Path, jobs: int) -> list[str]:
    if tool == "keyscope":
        return [sys.executable, "-m", "keyscope", "scan", str(target), "--format", "json",
                "--fail-on", "never", "-q", "--no-ignore", "--max-file-size", "1G",
                "-o", str(report)]  # fmt: skip
    return [str(kingfisher_bin()), "scan", str(target), "--no-validate", "--git-history", "none",
            "-f", "json", "-o", str(report), "-j", str(jobs), "--no-update-check", "-q",
            "--max-file-size", "1024", "--extraction-depth", "8"]  # fmt: skip


def tool_version(tool: str) -> str:
    if tool == "keyscope":
        return run.Keyscope(1).version()
    return run.Kingfisher(1).version()


def settings(tool: str, jobs: int) -> str:
    argv = tool_argv(tool, Path("CORPUS"), Path("REPORT.json"), jobs)
    argv[0] = "python" if tool == "keyscope" else "kingfisher"
    return " ".join(argv)


@dataclass(frozen=True)
class Report:
    """One reported secret location: the member chain (outer file relative to the corpus,
    then each member), line, rule and the secret's first characters."""

    chain: tuple[str, ...]
    line: int
    rule: str
    head: str  # the secret's first characters (keyscope: the redacted form up to its "…")
    needle_text: str  # what can be searched for a plant's needle


def _chain(path: str, origin: Sequence[str], root: Path) -> tuple[str, ...]:
    outer, *members = path.split("!")
    if Path(outer).is_absolute():
        outer = str(Path(outer).relative_to(root))
    inner = [p.lstrip("/") for p in (*members, *origin)]
    return tuple(os.path.normpath(p) for p in (outer, *inner) if p)


def parse_keyscope(report: Path, root: Path) -> list[Report]:
    doc = json.loads(report.read_text(encoding="utf-8"))
    out = []
    for f in doc["findings"]:
        head = str(f.get("redacted", "")).split("…")[0]
        for loc in f["locations"]:
            origin = [o for o in loc.get("origin") or [] if not o.startswith("cell ")]
            out.append(Report(_chain(loc["path"], origin, root), int(loc["line"]),
                              f["rule_id"], head, head))  # fmt: skip
    return out


def parse_kingfisher(report: Path, root: Path) -> list[Report]:
    doc = json.loads(report.read_text(encoding="utf-8"))
    out = []
    for f in doc["findings"]:
        snippet = f["finding"].get("snippet", "")
        out.append(Report(_chain(f["finding"]["path"], [], root), int(f["finding"]["line"]),
                          f["rule"]["id"], snippet[:4], snippet))  # fmt: skip
    return out


def storage_kind(rule: str) -> bool:
    """Whether a Kingfisher rule reports a secret of a kind keyscope detects."""
    low = rule.lower()
    return any(w in low for w in STORAGE_RULE_WORDS) and not low.endswith(COMPONENT_RULES)


# --------------------------------------------------------------------------- measuring


def one_run(tool: str, root: Path, tag: str, jobs: int, timeout: float) -> dict[str, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    report = OUT / f"{tool}-{tag}.json"
    report.unlink(missing_ok=True)
    u: Usage = measure(
        tool_argv(tool, root, report, jobs),
        cwd=WORK,
        stdout=OUT / f"{tool}-{tag}.stdout",
        stderr=OUT / f"{tool}-{tag}.stderr",
        timeout=timeout,
        use_time=TIME_BIN.exists(),
        interval=0.1,
        subreaper=True,
    )
    user, system, maxrss = u.timed or u.rusage
    cpu = user + system + u.orphans[0] + u.orphans[1]
    return {
        "load_after": round(os.getloadavg()[0], 2),  # 1-minute load average as it ended
        "wall": round(u.wall, 3),
        "cpu": round(cpu, 2),
        "largest_rss_kb": max(maxrss, u.orphans[2]),
        "tree_rss_kb": max(u.tree_rss_kb, maxrss),
        "rss_by_process": u.rss_by_process,
        "returncode": u.returncode,
        "timed_out": u.timed_out,
        "other_cores": None if u.busy is None or not u.wall
        else round(max(0.0, u.busy[0] - cpu) / u.wall, 2),
        "report": str(report.relative_to(ROOT)),
    }


def measure_tools(tools: list[str], root: Path, runs: int, jobs: int, timeout: float,
                  quiet: float) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """One warm-up, then ``runs`` rounds, each tool once per round, the order alternating."""
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
    for rnd in range(runs + 1):
        order = tools if rnd % 2 == 0 else list(reversed(tools))
        for tool in order:
            label = "warm-up" if rnd == 0 else f"run {rnd}/{runs}"
            result, redone = until_undisturbed(
                lambda tool=tool, tag=f"{root.name}-r{rnd}": one_run(  # type: ignore[misc]
                    tool, root, tag, jobs, timeout
                ),
                lambda r: r["other_cores"],
                quiet_wait=quiet, retries=2, label=f"{tool} {label}", log=log,
            )  # fmt: skip
            result["redone"] = redone
            log(f"{tool} {label}: {result['wall']:.2f} s wall, {result['cpu']:.2f} s CPU, "
                f"{result['tree_rss_kb'] / 1024:.0f} MiB tree RSS, exit {result['returncode']}")
            if rnd:
                out[tool].append(result)
    return out


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "wall": median(r["wall"] for r in runs),
        "cpu": median(r["cpu"] for r in runs),
        "largest_rss_mib": median(r["largest_rss_kb"] / 1024 for r in runs),
        "tree_rss_mib": median(r["tree_rss_kb"] / 1024 for r in runs),
        "max_tree_rss_mib": max(r["tree_rss_kb"] / 1024 for r in runs),
        "other_cores": median(r["other_cores"] for r in runs),
        "load_after": median(r.get("load_after", 0.0) for r in runs),
    }


def rounds(tools: dict[str, Any]) -> list[tuple[float, float, float]]:
    """Each measured round: (keyscope's wall / Kingfisher's, CPU ratio, the cores other
    processes kept busy, the more of the two runs), least disturbed first."""
    ks, kf = tools["keyscope"]["runs"], tools["kingfisher"]["runs"]
    out = [(a["wall"] / b["wall"], a["cpu"] / b["cpu"],
            max(a["other_cores"] or 0, b["other_cores"] or 0))
           for a, b in zip(ks, kf, strict=False) if b["wall"] and b["cpu"]]  # fmt: skip
    return sorted(out, key=lambda r: r[2])


# --------------------------------------------------------------------------- findings


# keyscope names an image layer by its place and digest (``layer 2 (sha256:1a3347d50078)``,
# unpack/images.py); Kingfisher by the layer's member in the tarball (``<digest>.tar``)
LAYER_STEP = re.compile(r"layer \d+ \(sha256:([0-9a-f]{12})\)")


def same_step(ks: str, kf: str) -> bool:
    """Whether keyscope's member step ``ks`` names Kingfisher's ``kf``."""
    layer = LAYER_STEP.fullmatch(ks)
    return ks == kf or (layer is not None and kf.startswith(layer.group(1)))


def same_place(ks: Report, kf: Report) -> bool:
    """keyscope's report ``ks`` names the member of Kingfisher's ``kf``, on its line or
    with the same secret (a notebook's line is a line of its cell)."""
    if len(ks.chain) < len(kf.chain) or not all(map(same_step, ks.chain, kf.chain)):
        return False
    return ks.line == kf.line or (bool(kf.head) and ks.head.endswith(kf.head))


def compare(root: Path, plants: list[Plant], reports: dict[str, Path]) -> dict[str, Any]:
    parsed = {
        "keyscope": parse_keyscope(reports["keyscope"], root) if "keyscope" in reports else [],
        "kingfisher": parse_kingfisher(reports["kingfisher"], root)
        if "kingfisher" in reports else [],
    }  # fmt: skip
    found: dict[str, dict[str, bool]] = {}
    for plant in plants:
        row = {}
        for tool, reps in parsed.items():
            row[tool] = any(
                r.chain[0] == plant.outer
                and (plant.inner in r.chain[1:] or plant.step in r.chain[1:2])
                and not r.rule.lower().endswith(COMPONENT_RULES)
                and (tool == "keyscope" or plant.needle in r.needle_text)
                for r in reps
            )  # fmt: skip
        found[plant.name] = row
    kf_storage = [r for r in parsed["kingfisher"] if storage_kind(r.rule)]
    missed = [r for r in kf_storage if not any(same_place(k, r) for k in parsed["keyscope"])]
    rules: dict[str, int] = {}
    for r in parsed["kingfisher"]:
        rules[r.rule] = rules.get(r.rule, 0) + 1
    return {
        # the needle cut short: no planted key in full in a committed file
        "plants": [asdict(p) | {"needle": p.needle[:6] + "…", "found": found[p.name]}
                   for p in plants],
        "reports": {t: len(v) for t, v in parsed.items()},
        "keyscope_rules": _count(r.rule for r in parsed["keyscope"]),
        "kingfisher_rules": dict(sorted(rules.items(), key=lambda kv: -kv[1])),
        "kingfisher_storage": len(kf_storage),
        "kingfisher_storage_missed": [
            {"chain": list(r.chain), "line": r.line, "rule": r.rule} for r in missed
        ],
    }


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def skipped(report: Path, root: Path) -> list[dict[str, Any]]:
    """keyscope's skipped entries, each path as its member chain (no absolute path)."""
    try:
        entries = json.loads(report.read_text(encoding="utf-8")).get("skipped", [])
    except (OSError, ValueError):
        return []
    return [{"chain": list(_chain(e["path"], [], root)), "reason": e["reason"]} for e in entries]


# --------------------------------------------------------------------------- report


def render_all(saved: dict[str, Any]) -> str:
    """ARTIFACTS.md: the latest run of each corpus (full, quick)."""
    lines = [
        "# Artifacts benchmark: archives, packages and a container image",
        "",
        "Written by `benchmarks/artifacts.py` (full corpus) and `benchmarks/artifacts.py "
        "--quick` (without the pyspark sdist and the larger wheels); raw numbers in "
        "`benchmarks/artifacts-results.json`. The commentary, the profile and the proposals "
        "are in [README.md](README.md#artifacts-artifactspy).",
    ]
    for key in ("full", "quick"):
        if key in saved:
            lines += ["", render(saved[key])]
    lines += ["", "## Notes", ""] + [f"- {n}" for n in NOTES]
    return "\n".join(lines) + "\n"


def render(res: dict[str, Any]) -> str:
    corpus, tools = res["corpus"], res["tools"]
    ks, kf = tools.get("keyscope", {}).get("summary"), tools.get("kingfisher", {}).get("summary")
    lines = [
        f"## {'Quick' if res['quick'] else 'Full'} corpus: {corpus['files']} files, "
        f"{corpus['bytes'] / MB:.1f} MB ({res['generated']})",
        "",
        "### Result",
        "",
    ]
    if ks and kf:
        ratio = ks["wall"] / kf["wall"]
        cmp = res["comparison"]

        def found(tool: str) -> int:
            return sum(p["found"].get(tool, False) for p in cmp["plants"])

        lines += [
            f"- Wall time: keyscope {ks['wall']:.2f} s, Kingfisher {kf['wall']:.2f} s: keyscope "
            f"takes **{ratio:.2f}×** Kingfisher's time (target ≤ 0.5×: "
            f"**{'met' if ratio <= 0.5 else 'not met'}**); CPU time (user + system, which other "
            f"load disturbs less): keyscope {ks['cpu']:.1f} s, Kingfisher {kf['cpu']:.1f} s, "
            f"{ks['cpu'] / kf['cpu']:.2f}×."
            + (f" Other processes kept {busy:.1f} cores busy during the runs: the wall "
               "ratio is no verdict." if (busy := max(ks["other_cores"] or 0,
                                                       kf["other_cores"] or 0)) > 0.5 else ""),
            "- Each round (the tools one after the other), least disturbed first: "
            + "; ".join(f"wall {w:.2f}×, CPU {c:.2f}× ({o:.1f} other cores busy)"
                        for w, c, o in rounds(tools))
            + (f". The 1-minute load average as the runs ended: median {ks['load_after']:.1f} "
               f"(keyscope), {kf['load_after']:.1f} (Kingfisher), on "
               f"{res['machine']['nproc']} cores." if "load_after" in ks else "."),
            f"- Peak memory of keyscope's process tree: {ks['max_tree_rss_mib']:.0f} MiB at most "
            f"over the runs (target < 300 MiB: "
            f"**{'met' if ks['max_tree_rss_mib'] < 300 else 'not met'}**).",
            f"- Azure Storage secrets Kingfisher reports: {cmp['kingfisher_storage']}; missed by "
            f"keyscope: {len(cmp['kingfisher_storage_missed'])} (target 0: "
            f"**{'met' if not cmp['kingfisher_storage_missed'] else 'not met'}**).",
            f"- Planted credentials found: keyscope {found('keyscope')}/{len(cmp['plants'])}, "
            f"Kingfisher {found('kingfisher')}/{len(cmp['plants'])}.",
        ]  # fmt: skip
    lines += [
        "",
        "### The corpus",
        "",
        f"{corpus['files']} files, {corpus['bytes'] / MB:.1f} MB, in `benchmarks/.work/"
        f"{'artifacts-quick' if res['quick'] else 'artifacts'}/`:",
        "",
        "| folder | files | MB | what |",
        "| --- | ---: | ---: | --- |",
    ]
    n_sdists = len(QUICK_SDISTS if res["quick"] else SDISTS)
    what = {
        "packages": "real packages from PyPI (`pip download --no-deps`), wheels: "
        + ", ".join(f"`{p}`" for p in corpus.get("specs", corpus["packages"])[:-n_sdists])
        + "; sdists: " + ", ".join(f"`{p}`" for p in corpus.get("specs", [])[-n_sdists:]),
        "image": "a docker-archive tarball (`skopeo copy oci:… docker-archive:…`) of a 3-layer "
        "image built with umoci: layer 1 holds this machine's "
        + " and ".join(f"`{s}`" for s in corpus["image"]["made_of"])
        + "; layer 2 an app with `.env` and `config/storage.json`; layer 3 deletes `.env`",
        "planted": "small artifacts built here, each hiding credentials in nested members",
    }
    for name, entry in corpus["by_folder"].items():
        lines.append(f"| {name} | {entry['files']} | {entry['bytes'] / MB:.1f} | "
                     f"{what.get(name, '')} |")  # fmt: skip
    lines += [
        "",
        "Planted credentials (accounts and keys random, every SAS signed by the Azure SDK):",
        "",
        "| plant | kind | file | where | keyscope | Kingfisher |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for p in res["comparison"]["plants"]:
        lines.append(f"| {p['name']} | {p['kind']} | `{p['outer']}` | {p['where']} | "
                     f"{'found' if p['found'].get('keyscope') else '**missed**'} | "
                     f"{'found' if p['found'].get('kingfisher') else 'missed'} |")  # fmt: skip
    m = res["machine"]
    lines += [
        "",
        "### Machine and commands",
        "",
        f"{m['nproc']} cores ({m['cpu']}), {m['ram_bytes'] / 2**30:.1f} GiB RAM, {m['os']}, "
        f"Python {m['python']}.",
        "",
        "| tool | version | command |",
        "| --- | --- | --- |",
    ]
    for tool, entry in tools.items():
        lines.append(f"| {tool} | {entry['version']} | `{entry['command']}` |")
    lines += [
        "",
        "`CORPUS` is the corpus folder. keyscope uses its default `-j` (all cores) and "
        "Kingfisher `-j` with the core count. Both get a file-size limit above the largest "
        "file (keyscope's default 64 MiB and Kingfisher's 256 MB would skip the pyspark sdist) "
        "and Kingfisher an extraction depth of 8, keyscope's default (Kingfisher's is 2). "
        "Kingfisher extracts archives by default; it does not validate here (`--no-validate`). "
        f"One warm-up, then the median of {res['runs']} runs, the tools taking turns; each run "
        "under `/usr/bin/time` while a sampler adds up the RSS of the process tree every 50-100 "
        "ms. The page cache is warm.",
        "",
        "### Results",
        "",
        "| tool | wall s | CPU s | CPU/wall | MB/s | peak RSS MiB (largest process) | "
        "peak RSS MiB (process tree, median / max) | reports | other load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for tool, entry in tools.items():
        s = entry["summary"]
        lines.append(
            f"| {tool} | {fmt(s['wall'], 2)} | {fmt(s['cpu'], 2)} | {fmt(s['cpu'] / s['wall'], 2)} "
            f"| {fmt(corpus['bytes'] / MB / s['wall'], 1)} | {fmt(s['largest_rss_mib'], 0)} "
            f"| {fmt(s['tree_rss_mib'], 0)} / {fmt(s['max_tree_rss_mib'], 0)} "
            f"| {res['comparison']['reports'].get(tool, 0)} | {fmt(s['other_cores'], 2)} cores |"
        )  # fmt: skip
    cmp = res["comparison"]
    lines += [
        "",
        "MB/s is the corpus's bytes on disk (compressed) over the wall time. \"reports\" counts "
        "reported locations (keyscope) and findings (Kingfisher, deduplicated by default).",
        "",
        "### Findings compared",
        "",
        "Kingfisher's findings by rule: "
        + (", ".join(f"`{k}` {v}" for k, v in cmp["kingfisher_rules"].items()) or "none") + ".",
        "keyscope's by rule: "
        + (", ".join(f"`{k}` {v}" for k, v in cmp["keyscope_rules"].items()) or "none") + ".",
        "",
        f"Of Kingfisher's findings, {cmp['kingfisher_storage']} are Azure Storage secrets (rules "
        "naming `azure-storage` or SAS, without the `…-account-name` component rule), the kinds "
        "keyscope detects. A keyscope report matches one when it names the same member chain and "
        "the same line or the same first characters of the secret.",
    ]  # fmt: skip
    if cmp["kingfisher_storage_missed"]:
        lines += ["", "Missed by keyscope:", ""]
        lines += [f"- `{'!/'.join(m['chain'])}` line {m['line']} (`{m['rule']}`)"
                  for m in cmp["kingfisher_storage_missed"]]  # fmt: skip
    else:
        lines += ["", "keyscope reports every one of them."]
    ks_skipped = tools.get("keyscope", {}).get("skipped", [])
    if ks_skipped:
        lines += ["", f"keyscope's skipped entries ({len(ks_skipped)}):", ""]
        lines += [f"- `{'!/'.join(s['chain'])}`: {s['reason']}"
                  for s in ks_skipped[:20]]  # fmt: skip
    return "\n".join(lines) + "\n"


NOTES = [
    "TruffleHog is not measured: it installs from none of the registries reachable here. "
    "PyPI's `trufflehog` (2.2.1) is the old Python tool that scans git repositories only; "
    "npm's `trufflehog` is an unrelated package; Debian 12 does not package it.",
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smaller corpus: no pyspark, fewer wheels")  # fmt: skip
    parser.add_argument("--runs", type=int, default=None, help="measured runs (default 3)")
    parser.add_argument("--tools", default="keyscope,kingfisher")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="Kingfisher -j")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per run")
    parser.add_argument("--wait-quiet", type=float, default=20,
                        help="wait up to S s for an idle machine before each run and redo "
                        "disturbed runs (0: don't)")  # fmt: skip
    parser.add_argument("--skip-install", action="store_true", help="use benchmarks/.venv as is")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="rewrite ARTIFACTS.md")
    args = parser.parse_args(argv)
    saved: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.report_only:
        REPORT.write_text(render_all(saved))
        log(f"wrote {REPORT}")
        return 0
    runs = args.runs or 3
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    root, plants, corpus = build_corpus(args.quick)
    log(f"corpus: {corpus['files']} files, {corpus['bytes'] / MB:.1f} MB in {root}")
    if args.build_only:
        return 0
    if "kingfisher" in tools:
        ensure_venv(args.skip_install)
    become_subreaper()
    for path in root.rglob("*"):  # page cache
        if path.is_file():
            with path.open("rb") as f:
                while f.read(1 << 20):
                    pass
    raw = measure_tools(tools, root, runs, args.jobs, args.timeout, args.wait_quiet)
    last = {t: ROOT / r[-1]["report"] for t, r in raw.items() if r}
    results: dict[str, Any] = {
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "runs": runs,
        "machine": asdict(machine()),
        "corpus": corpus,
        "tools": {
            t: {"version": tool_version(t), "command": settings(t, args.jobs),
                "summary": summary(r), "runs": r,
                "skipped": skipped(last[t], root) if t == "keyscope" else []}
            for t, r in raw.items()
        },
        "comparison": compare(root, plants, last),
    }
    saved["quick" if args.quick else "full"] = results
    RESULTS.write_text(json.dumps(saved, indent=1) + "\n")
    REPORT.write_text(render_all(saved))
    log(f"wrote {RESULTS} and {REPORT}")
    print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
