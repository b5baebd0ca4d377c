"""The corpora of the Base64-heavy benchmark (``base64_history.py``).

- ``history``: a git repository whose history holds the real lockfile versions of
  ``base64_locks.py`` (``package-lock.json``, ``pnpm-lock.yaml``, ``yarn.lock``,
  ``packages.lock.json``), SDK-style test recordings with Base64 bodies (the JSON of the
  Azure SDKs' test proxy), minified bundles with real fonts and icons inlined as ``data:``
  URIs, real SVG icons, a little source code, and a few Azure Storage credentials signed by
  the Azure SDK with random (fake) keys, committed and later deleted;
- ``nolocks``: the same history without the four lockfile kinds;
- ``dense``: 10,000 distinct planted credentials (SAS URLs signed by the SDK, connection
  strings, labelled account keys) in 100 files, for the cost per finding.

The SDK runs in keyscope's interpreter (its ``test`` extra has ``azure-storage-blob``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import subprocess
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import base64_locks as locks

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "base64"
ASSETS = WORK / "assets" / "node_modules"
LOCK_NAMES = ("package-lock.json", "pnpm-lock.yaml", "yarn.lock", "packages.lock.json")
CORPUS_VERSION = 2  # bump when the generator changes: the cached corpora are rebuilt


@dataclass
class Plant:
    """One planted credential: where, and the strings that tie a finding to it."""

    name: str
    path: str
    markers: list[str]
    in_lockfile: bool = False
    step: int = 0


@dataclass
class Manifest:
    repo: str
    plants: list[Plant] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- signing


def _sdk() -> Any:
    try:
        import azure.storage.blob as blob
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit("run with keyscope's venv: azure-storage-blob signs the plants") from exc
    return blob


def fake_key(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(64)).decode()


def blob_sas(rng: random.Random, account: str, key: str, blob_name: str) -> str:
    sdk = _sdk()
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 300))
    return str(
        sdk.generate_blob_sas(
            account, "releases", blob_name, account_key=key,
            permission=rng.choice(["r", "rl", "rw", "racwd"]),
            expiry=start + timedelta(days=rng.randint(30, 3650)), start=start,
        )
    )  # fmt: skip


def account_sas(rng: random.Random, account: str, key: str) -> str:
    sdk = _sdk()
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 300))
    return str(
        sdk.generate_account_sas(
            account, key, resource_types=rng.choice(["sco", "co", "o"]),
            permission=rng.choice(["rl", "rwdlac", "racwdl"]),
            expiry=start + timedelta(days=rng.randint(30, 3650)), start=start,
            services="b",
        )
    )  # fmt: skip


def sig_of(sas: str) -> list[str]:
    from urllib.parse import unquote

    for part in sas.split("&"):
        if part.startswith("sig="):
            return [part[4:], unquote(part[4:])]
    return []


# --------------------------------------------------------------------------- content


def recording(rng: random.Random, name: str, entries: int) -> str:
    """A test recording as the Azure SDKs' test proxy writes it: requests and responses,
    binary bodies in Base64, MD5/CRC64 headers in Base64, the SAS signature sanitized."""
    account = "fakestorageaccount"
    out = []
    for i in range(entries):
        body = rng.randbytes(rng.choice([64, 512, 1024, 4096, 16384]))
        container = f"container{rng.randint(10**8, 10**9)}"
        blob_name = f"blob{i}{rng.randint(1000, 9999)}"
        out.append({
            "RequestUri": f"https://{account}.blob.core.windows.net/{container}/{blob_name}"
                          "?sv=2025-01-05&ss=b&srt=sco&sp=rwdlac&se=2026-01-01T00%3A00%3A00Z"
                          "&sig=Sanitized",
            "RequestMethod": "PUT",
            "RequestHeaders": {
                "Accept": "application/xml",
                "Content-Length": str(len(body)),
                "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
                "Content-Type": "application/octet-stream",
                "User-Agent": "azsdk-python-storage-blob/12.24.0 Python/3.11.7 (Linux)",
                "x-ms-blob-type": "BlockBlob",
                "x-ms-client-request-id": str(uuid.UUID(int=rng.getrandbits(128))),
                "x-ms-date": "Thu, 05 Dec 2024 10:00:00 GMT",
                "x-ms-encryption-key": base64.b64encode(rng.randbytes(32)).decode(),
                "x-ms-encryption-key-sha256": base64.b64encode(rng.randbytes(32)).decode(),
                "x-ms-version": "2025-01-05",
            },
            "RequestBody": base64.b64encode(body).decode(),
            "StatusCode": 201,
            "ResponseHeaders": {
                "Content-Length": "0",
                "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
                "Date": "Thu, 05 Dec 2024 10:00:00 GMT",
                "ETag": f'"0x8DD{rng.getrandbits(48):012X}"',
                "x-ms-content-crc64": base64.b64encode(rng.randbytes(8)).decode(),
                "x-ms-request-id": str(uuid.UUID(int=rng.getrandbits(128))),
                "x-ms-request-server-encrypted": "true",
                "x-ms-version": "2025-01-05",
            },
            "ResponseBody": None,
        })  # fmt: skip
        if rng.random() < 0.3:  # a download: the body in the response
            out.append({
                "RequestUri": out[-1]["RequestUri"], "RequestMethod": "GET",
                "RequestHeaders": {"x-ms-range": f"bytes=0-{len(body) - 1}"},
                "RequestBody": None, "StatusCode": 206,
                "ResponseHeaders": {"Content-Length": str(len(body)),
                                    "Content-MD5": out[-1]["RequestHeaders"]["Content-MD5"]},
                "ResponseBody": base64.b64encode(body).decode(),
            })  # fmt: skip
    doc = {"Entries": out, "Variables": {"RandomSeed": str(rng.randint(1, 10**9)),
                                         "Name": name}}  # fmt: skip
    return json.dumps(doc, indent=2) + "\n"


def png(rng: random.Random, width: int, height: int) -> bytes:
    """A small real PNG (noise), as bundlers inline images."""
    rows = b"".join(b"\0" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return len(data).to_bytes(4, "big") + kind + data + crc.to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\0\0\0"
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))  # fmt: skip


class Assets:
    """Real files from the npm packages installed under ``.work/base64/assets``."""

    def __init__(self) -> None:
        if not ASSETS.is_dir():
            subprocess.run(
                ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "katex",
                 "bootstrap-icons", "@fontsource/roboto", "jquery", "bootstrap", "chart.js"],
                cwd=ASSETS.parent, check=True, capture_output=True,
            )  # fmt: skip
        self.scripts = sorted(p for p in ASSETS.rglob("*.min.js") if p.stat().st_size < 600_000)
        self.fonts = sorted(ASSETS.rglob("*.woff2"))
        self.icons = sorted((ASSETS / "bootstrap-icons" / "icons").glob("*.svg"))

    def bundle(self, rng: random.Random, version: int) -> str:
        """A minified bundle: real minified scripts, CSS with fonts and images inlined."""
        parts = [f"/*! app v{version}.0.0 | bundled */"]
        parts += [p.read_text(errors="replace") for p in rng.sample(self.scripts, 3)]
        css = []
        for font in rng.sample(self.fonts, 6):
            data = base64.b64encode(font.read_bytes()).decode()
            css.append(f"@font-face{{font-family:{font.stem};src:url(data:font/woff2;base64,"
                       f"{data}) format('woff2')}}")  # fmt: skip
        for icon in rng.sample(self.icons, 20):
            data = base64.b64encode(icon.read_bytes()).decode()
            css.append(f".bi-{icon.stem}{{background-image:url(data:image/svg+xml;base64,{data})}}")
        for i in range(4):
            data = base64.b64encode(png(rng, rng.randint(8, 40), rng.randint(8, 40))).decode()
            css.append(f".sprite-{i}{{background:url(data:image/png;base64,{data})}}")
        parts.append(f'var __css="{"".join(css)}";')
        return "\n".join(parts) + "\n"

    def svg(self, rng: random.Random) -> tuple[str, str]:
        icon = rng.choice(self.icons)
        text = icon.read_text()
        if rng.random() < 0.3:  # an icon with a raster image inside
            data = base64.b64encode(png(rng, 24, 24)).decode()
            text = text.replace(
                "</svg>",
                f'<image width="16" height="16" href="data:image/png;base64,{data}"/></svg>',
            )
        return icon.name, text


# --------------------------------------------------------------------------- history


def _fi_data(payload: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(payload), payload)


def plan_history(rng: random.Random) -> tuple[list[dict[str, str | None]], list[Plant]]:
    """Each commit's changed files (path → text, None: deleted) and the plants."""
    npm = locks.versions("npm")
    pnpm = locks.versions("pnpm")
    yarn = locks.versions("yarn")
    if len(npm) < 50:
        raise SystemExit("too few lockfile versions: run base64_locks.py first")
    digests = locks.integrity_digests()
    assets = Assets()
    steps: list[dict[str, str | None]] = []
    plants: list[Plant] = []
    key_rng = random.Random(rng.random())
    for i, lock in enumerate(npm):
        files: dict[str, str | None] = {
            "app/package-lock.json": lock.read_text(),
            "app/package.json": (lock.parent / "package.json").read_text(),
            "app/src/index.js": f"// build {i}\nexport const version = '1.0.{i}';\n",
        }
        if i % 4 == 0 and i // 4 < len(pnpm):
            files["web/pnpm-lock.yaml"] = pnpm[i // 4].read_text()
            files["web/package.json"] = (pnpm[i // 4].parent / "package.json").read_text()
        if i % 8 == 0 and i // 8 < len(yarn):
            files["tools/yarn.lock"] = yarn[i // 8].read_text()
            files["tools/package.json"] = (yarn[i // 8].parent / "package.json").read_text()
        if i % 3 == 0:
            files["src/Service/packages.lock.json"] = locks.nuget_lock(i, rng, digests)
        for _ in range(2):
            name = f"test_blob_{rng.choice(['upload', 'download', 'copy', 'lease', 'tags'])}"
            name += f"_{rng.randint(0, 40)}"
            files[f"sdk/storage/tests/recordings/{name}.json"] = recording(
                rng, name, rng.randint(2, 8)
            )
        if i % 6 == 0:
            files["dist/bundle.min.js"] = assets.bundle(rng, i)
        if i % 5 == 0:
            for _ in range(3):
                icon, text = assets.svg(rng)
                files[f"assets/icons/{icon}"] = text
        steps.append(files)
    # Credentials, committed and deleted some commits later.
    n = len(steps)

    def plant(name: str, path: str, text: str, at: float, markers: list[str],
              in_lockfile: bool = False) -> None:  # fmt: skip
        step = int(at * n)
        steps[step][path] = text
        steps[min(n - 1, step + 7)].setdefault(path, None)
        plants.append(Plant(name, path, markers, in_lockfile, step))

    acct = "contosobuildcache"
    key = fake_key(key_rng)
    sas = blob_sas(key_rng, acct, key, "lib-1.2.3.tgz")
    url = f"https://{acct}.blob.core.windows.net/releases/lib-1.2.3.tgz?{sas}"
    # A private package fetched from a SAS URL: the lockfile records it (resolved).
    lock_path = "app/package-lock.json"
    at = int(0.3 * n)
    doc = json.loads(steps[at][lock_path] or "{}")
    doc.setdefault("packages", {})["node_modules/internal-lib"] = {
        "version": "1.2.3", "resolved": url,
        "integrity": "sha512-" + key_rng.choice(digests),
    }  # fmt: skip
    steps[at][lock_path] = json.dumps(doc, indent=2) + "\n"
    plants.append(Plant("lockfile-resolved-sas", lock_path, [acct, *sig_of(sas)], True, at))
    acct = "fabrikamtestdata"
    key = fake_key(key_rng)
    conn = (f"DefaultEndpointsProtocol=https;AccountName={acct};AccountKey={key};"
            "EndpointSuffix=core.windows.net")  # fmt: skip
    plant("settings-connstr", "src/Service/appsettings.Development.json",
          json.dumps({"ConnectionStrings": {"Storage": conn}}, indent=2) + "\n", 0.12, [acct, key])
    acct = "northwindrecordings"
    key = fake_key(key_rng)
    plant("env-account-key", "sdk/storage/tests/.env",
          f"AZURE_STORAGE_ACCOUNT_NAME={acct}\nAZURE_STORAGE_ACCOUNT_KEY={key}\n", 0.45,
          [acct, key])
    acct = "tailspinassets"
    key = fake_key(key_rng)
    sas = account_sas(key_rng, acct, key)
    plant("deploy-sas", "scripts/deploy.sh",
          f'#!/bin/sh\nazcopy copy dist/ "https://{acct}.blob.core.windows.net/$web?{sas}" '
          "--recursive\n", 0.6, [acct, *sig_of(sas)])  # fmt: skip
    acct = "wingtipsdktests"
    key = fake_key(key_rng)
    plant("recording-config-key", "sdk/storage/tests/test-config.json",
          json.dumps({"accountName": acct, "accountKey": key}, indent=2) + "\n", 0.75, [acct, key])
    acct = "adventureworksweb"
    key = fake_key(key_rng)
    sas = blob_sas(key_rng, acct, key, "fonts/roboto.woff2")
    plant("bundle-sas", "web/src/config.js",
          f'export const FONT_URL = "https://{acct}.blob.core.windows.net/releases/'
          f'fonts/roboto.woff2?{sas}";\n', 0.9, [acct, *sig_of(sas)])  # fmt: skip
    return steps, plants


def write_repo(repo: Path, steps: list[dict[str, str | None]], skip: tuple[str, ...]) -> None:
    """The steps as one branch of commits, through ``git fast-import``, then packed."""
    if repo.exists():
        subprocess.run(["rm", "-rf", str(repo)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    stream = bytearray()
    when = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
    for i, files in enumerate(steps):
        kept = {p: t for p, t in files.items() if p.rsplit("/", 1)[-1] not in skip}
        when += 3600 * 7
        message = f"Update dependencies and recordings ({i})".encode()
        stream += b"commit refs/heads/main\n"
        stream += b"committer Dana Kowalski <dana@example.org> %d +0000\n" % when
        stream += _fi_data(message)
        for path, text in kept.items():
            if text is None:
                stream += b"D %s\n" % path.encode()
            else:
                stream += b"M 100644 inline %s\n" % path.encode() + _fi_data(text.encode())
        stream += b"\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=bytes(stream), check=True)
    subprocess.run(["git", "repack", "-adq", "--window=50", "--depth=50"], cwd=repo, check=True)
    subprocess.run(["git", "checkout", "-q", "main"], cwd=repo, check=True)


def repo_stats(repo: Path) -> dict[str, Any]:
    out = subprocess.run(  # every object is reachable: the repository was just written
        ["git", "cat-file", "--batch-all-objects", "--batch-check=%(objecttype) %(objectsize)"],
        cwd=repo, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    sizes = [int(out[i + 1]) for i in range(0, len(out), 2) if out[i] == "blob"]
    commits = subprocess.run(["git", "rev-list", "--count", "--all"], cwd=repo,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    pack = sum(p.stat().st_size for p in (repo / ".git" / "objects" / "pack").glob("*.pack"))
    return {"commits": int(commits), "unique_blobs": len(sizes),
            "unique_blob_bytes": sum(sizes), "pack_bytes": pack}  # fmt: skip


def build_histories(seed: int, log: Any) -> dict[str, Manifest]:
    """``history`` and ``nolocks``, cached under ``.work/base64`` by seed and version."""
    stamp = WORK / "histories.json"
    tag = f"{CORPUS_VERSION}-{seed}-{len(locks.versions('npm'))}"
    if stamp.exists():
        saved = json.loads(stamp.read_text())
        if saved.get("tag") == tag:
            return {k: Manifest(v["repo"], [Plant(**p) for p in v["plants"]], v["stats"])
                    for k, v in saved["manifests"].items()}  # fmt: skip
    log("planning the history (lockfiles, recordings, bundles, SVGs, plants)")
    steps, plants = plan_history(random.Random(seed))
    out = {}
    for name, skip in (("history", ()), ("nolocks", LOCK_NAMES)):
        repo = WORK / name
        log(f"writing {name} ({len(steps)} commits)")
        write_repo(repo, steps, skip)
        kept = [p for p in plants if not (skip and p.in_lockfile)]
        out[name] = Manifest(str(repo), kept, repo_stats(repo))
    stamp.write_text(json.dumps({"tag": tag, "manifests": {k: asdict(v) for k, v in out.items()}}))
    return out


# --------------------------------------------------------------------------- dense


def build_dense(seed: int, log: Any, count: int = 10_000) -> Manifest:
    """``count`` distinct credentials in ``count // 100`` files of mixed kinds."""
    root = WORK / "dense"
    stamp = WORK / "dense-manifest.json"  # outside the corpus: it names the secrets
    if stamp.exists():
        saved = json.loads(stamp.read_text())
        if saved.get("tag") == f"{CORPUS_VERSION}-{seed}-{count}":
            return Manifest(str(root), [Plant(**p) for p in saved["plants"]], saved["stats"])
    log(f"signing {count} credentials for the dense corpus")
    rng = random.Random(seed)
    plants: list[Plant] = []
    per_file = 100
    root.mkdir(parents=True, exist_ok=True)
    for f in range(count // per_file):
        lines = []
        kind = ("sas", "connstr", "key")[f % 3]
        path = f"{kind}/config-{f:03d}.{'env' if kind != 'connstr' else 'json'}"
        for j in range(per_file):
            acct = f"densetest{f:03d}{j:03d}"
            key = fake_key(rng)
            if kind == "sas":
                sas = blob_sas(rng, acct, key, f"data/{j}.bin")
                lines.append(f"BLOB_{j}_URL=https://{acct}.blob.core.windows.net/releases/"
                             f"data/{j}.bin?{sas}")  # fmt: skip
                markers = [acct, *sig_of(sas)]
            elif kind == "connstr":
                lines.append(f'  "Storage{j}": "DefaultEndpointsProtocol=https;AccountName={acct};'
                             f'AccountKey={key};EndpointSuffix=core.windows.net",')  # fmt: skip
                markers = [acct, key]
            else:
                lines.append(f"STORAGE_{j}_ACCOUNT_NAME={acct}\nSTORAGE_{j}_ACCOUNT_KEY={key}")
                markers = [acct, key]
            plants.append(Plant(f"{f}-{j}", path, markers))
        text = "\n".join(lines) + "\n"
        if kind == "connstr":
            text = '{\n  "ConnectionStrings": {\n' + text.rstrip(",\n") + "\n  }\n}\n"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    manifest = Manifest(str(root), plants, {"files": count // per_file, "bytes": size})
    stamp.write_text(json.dumps({"tag": f"{CORPUS_VERSION}-{seed}-{count}",
                                 "plants": [asdict(p) for p in plants], "stats": manifest.stats}))
    return manifest
