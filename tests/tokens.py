"""Helpers that mint platform tokens for tests: random bodies from a seeded generator,
GitHub's and GitLab's checksums computed here with zlib (not with keyscope's code)."""

from __future__ import annotations

import base64
import random
import string
import zlib

RNG = random.Random(2026)
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
B36 = string.digits + string.ascii_lowercase


def rand(alphabet: str, n: int) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


def _base(number: int, alphabet: str, width: int) -> str:
    out = ""
    while number:
        number, rest = divmod(number, len(alphabet))
        out = alphabet[rest] + out
    return out.rjust(width, alphabet[0])


def github(prefix: str = "ghp_") -> str:
    """A token in GitHub's format: 30 random base62 characters, then their CRC-32 in
    base62 (6 characters)."""
    body = rand(ALNUM, 30)
    return prefix + body + _base(zlib.crc32(body.encode()), B62, 6)


def gitlab_routable(prefix: str = "glpat-", payload: bytes = b"o:1\nu:4k3",
                    versioned: bool = True) -> str:
    """A routable GitLab token: base64url of 16 random bytes + payload + its length (the
    earlier, unversioned form: payload + random bytes + their count), a version, the
    body's length in base36, and the CRC-32 of all that in base36."""
    if versioned:
        raw = RNG.randbytes(16) + payload + bytes([len(payload)])
    else:
        raw = payload + RNG.randbytes(16) + bytes([16])
    body = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    head = f"{prefix}{body}." + ("01." if versioned else "") + _base(len(body), B36, 2)
    return head + _base(zlib.crc32(head.encode()), B36, 7)


def flip_last(token: str) -> str:
    """The token with its last character changed (a checksum that no longer holds)."""
    return token[:-1] + ("a" if token[-1] != "a" else "b")


def tokens() -> dict[str, str]:
    """One token of every prefixed kind: kind → token."""
    return {
        "hf-user-token": "hf_" + rand(string.ascii_letters, 34),
        "openai-project-key": "sk-proj-" + rand(ALNUM + "_-", 74) + "T3BlbkFJ"
        + rand(ALNUM + "_-", 74),
        "openai-user-key": "sk-" + rand(ALNUM, 20) + "T3BlbkFJ" + rand(ALNUM, 20),
        "openai-admin-key": "sk-admin-" + rand(ALNUM, 58) + "T3BlbkFJ" + rand(ALNUM, 58),
        "anthropic-api-key": "sk-ant-api03-" + rand(ALNUM + "_-", 93) + "AA",
        "anthropic-admin-key": "sk-ant-admin01-" + rand(ALNUM + "_-", 93) + "AA",
        "replicate-api-token": "r8_" + rand(ALNUM, 37),
        "databricks-token": "dapi" + rand(HEX, 32),
        "github-classic-token": github("ghp_"),
        "github-oauth-token": github("gho_"),
        "github-user-to-server-token": github("ghu_"),
        "github-installation-token": github("ghs_"),
        "github-refresh-token": github("ghr_"),
        "github-fine-grained-token": "github_pat_" + rand(ALNUM, 22) + "_" + rand(ALNUM, 59),
        "gitlab-access-token": gitlab_routable(),
        "gitlab-deploy-token": "gldt-" + rand(ALNUM, 20),
        "gitlab-runner-token": gitlab_routable("glrt-", b"c:1\no:1\nu:2a"),
        "gitlab-trigger-token": "glptt-" + rand(HEX, 40),
        "slack-bot-token": f"xoxb-{RNG.randrange(10**11, 10**12)}-"
        f"{RNG.randrange(10**12, 10**13)}-" + rand(ALNUM, 24),
        "slack-user-token": f"xoxp-{RNG.randrange(10**11, 10**12)}-"
        f"{RNG.randrange(10**11, 10**12)}-{RNG.randrange(10**12, 10**13)}-" + rand(HEX, 32),
        "wandb-api-key": "wandb_v1_" + rand(ALNUM, 27) + "_" + rand(ALNUM, 49),
        "kaggle-api-token": "KGAT_" + rand(HEX, 32),
    }


def slack_webhook() -> str:
    upper = string.ascii_uppercase + string.digits
    return (f"https://hooks.slack.com/services/T{rand(upper, 10)}/B{rand(upper, 10)}/"
            + rand(ALNUM, 24))


def flow_webhook() -> str:
    """A Teams Workflows (Power Automate) trigger URL: the sig= is 32 random bytes."""
    sig = base64.urlsafe_b64encode(RNG.randbytes(32)).decode().rstrip("=")
    return (f"https://prod-12.westeurope.logic.azure.com:443/workflows/{rand(HEX, 32)}/triggers/"
            "manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0"
            f"&sig={sig}")


def teams_webhook() -> str:
    def guid() -> str:
        h = rand(HEX, 32)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return (f"https://contoso.webhook.office.com/webhookb2/{guid()}@{guid()}/IncomingWebhook/"
            f"{rand(HEX, 32)}/{guid()}")
