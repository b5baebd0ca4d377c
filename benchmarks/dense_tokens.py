#!/usr/bin/env python3
"""Per-finding cost on a dense corpus of 10,000 planted credentials of the kinds issue 20
added (keyscope against Kingfisher).

Run from the project root with keyscope's interpreter (its ``test`` extra has
``cryptography``, which makes the private keys)::

    python benchmarks/dense_tokens.py [--rounds 3] [--count 10000]
    python benchmarks/dense_tokens.py --report-only     # rewrite TOKENS.md from the JSON

The corpus (``benchmarks/.work/tokens``, made once per seed) is ``count / 100`` files of
100 credentials each, ten kinds in equal shares: GitHub (``ghp_`` with its CRC-32
checksum), GitLab (``glpat-``), Hugging Face, OpenAI project keys, Anthropic, Slack bot
tokens, AWS key pairs, Google API keys, EC private keys (PEM, made by ``cryptography``)
and signed JWTs. Every value is random, issued by no one. Both tools scan the folder
with two jobs, alternating within each round; medians are reported. A planted
credential counts as found when its marker (the token; a key pair's id or secret; a
PEM body, or one of its lines) is a whole word of a tool's findings (keyscope runs with
``--show-secrets`` for this: the report stays on this machine). Per finding = wall time
/ credentials found. Results: ``benchmarks/tokens-results.json`` and ``TOKENS.md``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import random
import re
import string
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is not a package
from base64_history import kingfisher
from common import logger, machine, measure, median

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "tokens"
OUT = WORK / "out"
RESULTS = HERE / "tokens-results.json"
REPORT = HERE / "TOKENS.md"
CORPUS_VERSION = 2
PER_FILE = 100
ALNUM = string.ascii_letters + string.digits
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

log = logger("tokens")

Plant = tuple[str, list[str]]  # (kind, markers)
Maker = Callable[[random.Random], tuple[str, list[str]]]  # → (file text, markers)


def _pick(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _base62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(width, "0")


def github(rng: random.Random) -> tuple[str, list[str]]:
    body = _pick(rng, ALNUM, 30)
    token = f"ghp_{body}{_base62(binascii.crc32(body.encode()), 6)}"
    return f"GITHUB_TOKEN={token}", [token]


def gitlab(rng: random.Random) -> tuple[str, list[str]]:
    token = "glpat-" + _pick(rng, ALNUM, 20)
    return f'gitlab_token = "{token}"', [token]


def huggingface(rng: random.Random) -> tuple[str, list[str]]:
    token = "hf_" + _pick(rng, string.ascii_letters, 34)
    return f"HF_TOKEN={token}", [token]


def openai(rng: random.Random) -> tuple[str, list[str]]:
    token = f"sk-proj-{_pick(rng, ALNUM, 74)}T3BlbkFJ{_pick(rng, ALNUM, 74)}"
    return f"OPENAI_API_KEY={token}", [token]


def anthropic(rng: random.Random) -> tuple[str, list[str]]:
    token = f"sk-ant-api03-{_pick(rng, ALNUM, 93)}AA"
    return f'client = Anthropic(api_key="{token}")', [token]


def slack(rng: random.Random) -> tuple[str, list[str]]:
    token = f"xoxb-{_pick(rng, string.digits, 12)}-{_pick(rng, string.digits, 13)}-" + _pick(
        rng, ALNUM, 24
    )
    return f"SLACK_BOT_TOKEN={token}", [token]


def aws(rng: random.Random) -> tuple[str, list[str]]:
    key_id = "AKIA" + _pick(rng, B32, 16)
    secret = _pick(rng, ALNUM + "+/", 40)
    text = f"aws_access_key_id = {key_id}\naws_secret_access_key = {secret}"
    return text, [key_id, secret]


def google_api(rng: random.Random) -> tuple[str, list[str]]:
    token = "AIza" + _pick(rng, ALNUM + "_-", 35)
    return f'maps_key: "{token}"', [token]


def private_key(rng: random.Random) -> tuple[str, list[str]]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.derive_private_key(rng.randrange(1, 2**255), ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    body = pem.splitlines()[1:-1]  # keyscope reports the body joined, Kingfisher the PEM
    return pem.rstrip("\n"), ["".join(body), body[1]]


def jwt(rng: random.Random) -> tuple[str, list[str]]:
    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = part({"alg": "HS256", "typ": "JWT"})
    body = part({
        "iss": "https://login.contoso.example", "sub": _pick(rng, ALNUM, 16),
        "aud": "api://models", "scp": "models.read", "exp": 1893456000 + rng.randrange(10**6),
    })  # fmt: skip
    mac = hmac.new(_pick(rng, ALNUM, 32).encode(), f"{head}.{body}".encode(), hashlib.sha256)
    token = f"{head}.{body}." + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()
    return f"Authorization: Bearer {token}", [token]


KINDS: dict[str, Maker] = {
    "github": github, "gitlab": gitlab, "huggingface": huggingface, "openai": openai,
    "anthropic": anthropic, "slack": slack, "aws-key-pair": aws, "google-api-key": google_api,
    "private-key": private_key, "jwt": jwt,
}  # fmt: skip


def build(seed: int, count: int) -> list[Plant]:
    """The corpus under WORK/corpus (made once per seed and count); the plants."""
    root = WORK / "corpus"
    manifest = WORK / "manifest.json"  # outside the corpus: it holds the secrets
    tag = f"{CORPUS_VERSION}-{seed}-{count}"
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved.get("tag") == tag:
            return [(k, m) for k, m in saved["plants"]]
    log(f"making {count} credentials")
    rng = random.Random(seed)
    plants: list[Plant] = []
    names = list(KINDS)
    for f in range(count // PER_FILE):
        kind = names[f % len(names)]
        lines = []
        for _ in range(PER_FILE):
            text, markers = KINDS[kind](rng)
            lines.append(text)
            plants.append((kind, markers))
        path = root / kind / f"settings-{f:03d}.env"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\n".join(lines) + "\n")
    manifest.write_text(json.dumps({"tag": tag, "plants": plants}))
    return plants


def argv(tool: str, report: Path) -> list[str]:
    corpus = str(WORK / "corpus")
    if tool == "keyscope":
        return [sys.executable, "-m", "keyscope", "scan", corpus, "--no-git", "--format",
                "json", "--show-secrets", "--fail-on", "never", "-q", "-j", "2",
                "-o", str(report)]  # fmt: skip
    return [str(kingfisher()), "scan", corpus, "--git-history", "none", "--no-validate",
            "-f", "json", "-o", str(report), "-j", "2", "--no-update-check", "-q"]  # fmt: skip


_WORD = re.compile(r"[A-Za-z0-9+/_.\-]+")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def found(report: Path, plants: list[Plant]) -> tuple[int, dict[str, int], int]:
    """(plants found, found per kind, findings reported)."""
    doc = json.loads(report.read_text(encoding="utf-8") or "null")
    items = doc.get("findings", []) if isinstance(doc, dict) else list(doc or [])
    words = set(_WORD.findall("\n".join(_strings(items))))
    per_kind: dict[str, int] = dict.fromkeys(KINDS, 0)
    for kind, markers in plants:
        if any(m.rstrip("=") in words for m in markers):
            per_kind[kind] += 1
    return sum(per_kind.values()), per_kind, len(items)


def one_run(tool: str, plants: list[Plant], tag: str) -> dict[str, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    stem = OUT / f"{tool}-{tag}"
    report = stem.with_suffix(".json")
    report.unlink(missing_ok=True)
    u = measure(argv(tool, report), cwd=OUT, stdout=stem.with_suffix(".stdout"),
                stderr=stem.with_suffix(".stderr"), timeout=1800, sample=False)  # fmt: skip
    if not report.exists():
        err = stem.with_suffix(".stderr").read_text(errors="replace")[-600:]
        raise SystemExit(f"{tool} failed ({u.returncode}): {err}")
    hits, per_kind, reported = found(report, plants)
    row = {
        "wall_s": round(u.wall, 3),
        "cpu_s": round(u.timed[0] + u.timed[1], 2) if u.timed else None,
        "peak_rss_mib": round(u.timed[2] / 1024, 1) if u.timed else None,
        "found": hits, "per_kind": per_kind, "findings": reported,
        "load": round(u.busy[0] / max(u.wall, 1e-9) - (u.timed[0] + u.timed[1]) / u.wall, 2)
        if u.busy and u.timed else None,
    }  # fmt: skip
    log(f"{tool} {tag}: {row['wall_s']:.2f}s wall, {row['cpu_s']}s CPU, "
        f"{hits}/{len(plants)} found, {reported} findings")  # fmt: skip
    return row


def run(rounds: int, seed: int, count: int) -> dict[str, Any]:
    plants = build(seed, count)
    runs: dict[str, list[dict[str, Any]]] = {"keyscope": [], "kingfisher": []}
    for r in range(rounds):
        order = ("keyscope", "kingfisher") if r % 2 == 0 else ("kingfisher", "keyscope")
        for tool in order:
            runs[tool].append(one_run(tool, plants, f"r{r}"))
    summary: dict[str, Any] = {}
    for tool, rows in runs.items():
        wall = median(r["wall_s"] for r in rows) or 0.0
        cpu = median(r["cpu_s"] for r in rows)
        hits = rows[-1]["found"]
        summary[tool] = {
            "wall_s": wall, "cpu_s": cpu, "found": hits, "findings": rows[-1]["findings"],
            "per_kind": rows[-1]["per_kind"],
            "peak_rss_mib": median(r["peak_rss_mib"] for r in rows),
            "ms_per_found": round(1000 * wall / hits, 3) if hits else None,
            "cpu_ms_per_found": round(1000 * cpu / hits, 3) if hits and cpu else None,
            "load": median(r["load"] for r in rows),
        }  # fmt: skip
    m = machine()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"nproc": m.nproc, "cpu": m.cpu, "python": m.python},
        "count": count, "seed": seed, "rounds": rounds, "summary": summary, "runs": runs,
    }  # fmt: skip


def render(saved: dict[str, Any]) -> str:
    s = saved["summary"]
    ks, kf = s["keyscope"], s["kingfisher"]
    lines = [
        "# Dense corpus of the tokens issue 20 added: keyscope against Kingfisher",
        "",
        f"Written by `benchmarks/dense_tokens.py` on {saved['date']}, "
        f"{saved['machine']['nproc']} cores ({saved['machine']['cpu']}), "
        f"{saved['rounds']} rounds, medians; both tools with two jobs.",
        "",
        f"{saved['count']:,} credentials in {saved['count'] // PER_FILE} files, ten kinds in "
        "equal shares, every one random and issued by no one. Per finding = wall time / "
        "planted credentials found.",
        "",
        "| tool | wall s | CPU s | peak RSS MiB | found | findings | ms per found (wall) "
        "| ms per found (CPU) | other load (cores) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t in (("keyscope", ks), ("Kingfisher 2.14.0", kf)):
        lines.append(
            f"| {name} | {t['wall_s']:.2f} | {t['cpu_s']} | {t['peak_rss_mib']} | "
            f"{t['found']:,} | {t['findings']:,} | {t['ms_per_found']} | "
            f"{t['cpu_ms_per_found']} | {t['load']} |"
        )
    lines += ["", "Found per kind (of "
              f"{saved['count'] // len(KINDS):,} each):", "",
              "| kind | keyscope | Kingfisher |", "|---|---:|---:|"]  # fmt: skip
    for kind in KINDS:
        lines.append(f"| {kind} | {ks['per_kind'][kind]:,} | {kf['per_kind'][kind]:,} |")
    ratio = ks["cpu_ms_per_found"] / kf["cpu_ms_per_found"] if kf["cpu_ms_per_found"] else None
    lines += [
        "",
        "Reading it: \"other load\" is how many cores other processes kept busy during the "
        "runs; when it is above zero the wall times say little, and CPU time per found "
        "credential is the fairer comparison"
        + (f" (keyscope / Kingfisher: {ratio:.2f}×)." if ratio else "."),
        "",
        "The first run of this benchmark found a recall bug: keyscope set aside 3 of the "
        "10,000 random tokens as placeholders, because their random part spelled `yoUr` or "
        "`XxXx` by chance. A placeholder word now counts only as typed (lower, UPPER or "
        "Capitalized) and only at the start or twice (`analyze/placeholders.py`).",
        "",
    ]
    return "\n".join(lines)


def main(args: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--count", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=20)
    p.add_argument("--report-only", action="store_true")
    a = p.parse_args(args)
    if not a.report_only:
        RESULTS.write_text(json.dumps(run(a.rounds, a.seed, a.count), indent=1) + "\n")
    REPORT.write_text(render(json.loads(RESULTS.read_text())))
    print(REPORT.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
