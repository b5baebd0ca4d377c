"""AWS access keys: key ids (type, account decoded offline), the secret beside a key
id, its session token and expiry, as text around the key id shows them.

The account encoding is undocumented (reverse-engineered, see the README): keyscope
labels what it decodes "inferred", never "verified".
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime

from keyscope.analyze.azure.filters import placeholder_secret
from keyscope.analyze.timefmt import parse_datetime
from keyscope.errors import ParseError

PROVIDER = "aws"
# AWS's documentation example pair: in thousands of READMEs and tests, refused by AWS.
DOC_KEY_IDS = frozenset({"AKIAIOSFODNN7EXAMPLE", "ASIAIOSFODNN7EXAMPLE"})
DOC_SECRETS = frozenset({"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"})
KEY_ID = re.compile(r"(?<![A-Za-z0-9])(?P<id>(?:AKIA|ASIA)[A-Z2-7]{16})(?![A-Za-z0-9])")
_SECRET = re.compile(r"(?<![A-Za-z0-9/+])(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])")
_SECRET_LABEL = re.compile(r"(?i)secret")
_TOKEN = re.compile(
    r"(?i)(?:session_?token|security_?token|X-Amz-Security-Token)[\"']?\s*(?:[:=]|%3d)\s*"
    r"[\"']?(?P<token>[A-Za-z0-9/+%]{100,}={0,2})"
)
_EXPIRATION = re.compile(
    r"(?i)expiration[\"']?\s*[:=]\s*[\"']?"
    r"(?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,7})?(?:Z|[+-]\d\d:\d\d))"
)
LABEL_WINDOW = 64
# STS caps: GetSessionToken / GetFederationToken sessions last at most 36 hours.
MAX_SESSION_SECONDS = 129600


@dataclass(frozen=True)
class KeyId:
    """What a key id says by itself."""

    id: str
    temporary: bool  # ASIA: STS credentials; AKIA: an IAM user's (or root's) key
    account: str | None  # 12 digits, inferred; None for old-format ids

    @property
    def type_label(self) -> str:
        return "temporary (ASIA, STS)" if self.temporary else "long-term (AKIA, IAM user or root)"


@dataclass(frozen=True)
class AwsKeyPair:
    """A key id with its secret (and, for a temporary key, its session token)."""

    key: KeyId
    secret: str
    session_token: str | None = None
    expiration: datetime | None = None  # the session's, when written beside it


def parse_key_id(text: str) -> KeyId:
    """A 20-character ``AKIA``/``ASIA`` key id; raises ``ParseError`` otherwise."""
    m = KEY_ID.fullmatch(text)
    if m is None:
        raise ParseError(f"{text[:24]!r} is not an AWS access key id (AKIA/ASIA + 16 base32)")
    return KeyId(id=text, temporary=text.startswith("ASIA"), account=account_of(text))


def account_of(key_id: str) -> str | None:
    """The 12-digit account a new-format key id encodes (the 5th character ≥ ``Q``);
    ``None`` for older ids, which carry none recoverable."""
    body = key_id[4:20]
    try:
        raw = base64.b32decode(body)
    except (binascii.Error, ValueError):
        return None
    if not raw[0] & 0x80:
        return None
    number = (int.from_bytes(raw[:6], "big") & 0x7FFFFFFFFF80) >> 7
    return f"{number:012d}"


def placeholder(key_id: str, secret: str | None) -> str | None:
    """Why a key id or secret is a documentation or test stand-in, else ``None``."""
    if key_id in DOC_KEY_IDS or (secret is not None and secret in DOC_SECRETS):
        return "AWS documentation example key (AKIAIOSFODNN7EXAMPLE)"
    if "EXAMPLE" in key_id or len(set(key_id[4:])) < 6:
        return "placeholder key id"
    if secret is not None:
        return placeholder_secret(secret)
    return None


def find_pair(key: KeyId, context: str) -> AwsKeyPair | None:
    """The secret that goes with ``key`` in ``context`` (lines centred on the key id):
    a 40-character value labelled ``secret`` on its line, or on the key id's own line
    (a CSV row, positional arguments). The nearest wins."""
    at = context.find(key.id, max(0, len(context) // 2 - len(key.id) - 1))
    if at < 0:
        at = context.find(key.id)
    key_line = _line_span(context, at)
    best: tuple[int, str] | None = None
    for m in _SECRET.finditer(context):
        secret = m.group("secret")
        if not _random_looking(secret):
            continue
        line_start = context.rfind("\n", 0, m.start()) + 1
        label = context[max(line_start, m.start() - LABEL_WINDOW) : m.start()]
        same_line = key_line[0] <= m.start() < key_line[1]
        if not (same_line or _SECRET_LABEL.search(label)):
            continue
        distance = abs(m.start() - at)
        if best is None or distance < best[0]:
            best = (distance, secret)
    if best is None:
        return None
    if not key.temporary:  # a long-term key signs alone
        return AwsKeyPair(key=key, secret=best[1])
    token = _nearest(_TOKEN, "token", context, at)
    expiration = None
    when = _nearest(_EXPIRATION, "at", context, at)
    if when is not None:
        try:
            expiration = parse_datetime(when, "Expiration")
        except ParseError:
            expiration = None
    return AwsKeyPair(key=key, secret=best[1], session_token=token, expiration=expiration)


def _random_looking(secret: str) -> bool:
    """A secret key is 30 random bytes in Base64: upper and lower case, not hex, not a
    path."""
    return (
        any(c.isupper() for c in secret)
        and any(c.islower() for c in secret)
        and not re.fullmatch(r"[0-9a-fA-F]+", secret)
        and secret.count("/") + secret.count("+") <= 6
    )


def _line_span(text: str, at: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, max(at, 0)) + 1
    end = text.find("\n", max(at, 0))
    return start, len(text) if end < 0 else end


def _nearest(pattern: re.Pattern[str], group: str, text: str, at: int) -> str | None:
    best: tuple[int, str] | None = None
    for m in pattern.finditer(text):
        distance = abs(m.start() - at)
        if best is None or distance < best[0]:
            best = (distance, m.group(group))
    return best[1] if best else None
