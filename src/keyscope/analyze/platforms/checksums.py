"""Checksums some platforms build into their tokens, verified offline.

GitHub (``ghp_`` and its siblings): the last 6 characters are the CRC-32 of the 30
random characters before them, in base62. GitLab routable tokens (``glpat-….01.…``):
the last 7 characters are the CRC-32 of everything before them, in base36.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
# <prefix><base64url body>[.<2-char version>].<2-char body length><7-char CRC>
_ROUTABLE = re.compile(
    r"(?P<prefix>[a-z]+-)(?P<body>[0-9A-Za-z_-]{27,300})(?:\.(?P<version>[0-9a-z]{2}))?"
    r"\.(?P<length>[0-9a-z]{2})(?P<crc>[0-9a-z]{7})"
)


def encode(number: int, alphabet: str, width: int) -> str:
    """``number`` written in ``alphabet``'s base, left-padded with its zero to ``width``."""
    base = len(alphabet)
    digits = ""
    while number:
        number, rest = divmod(number, base)
        digits = alphabet[rest] + digits
    return digits.rjust(width, alphabet[0])


def github_checksum_ok(token: str) -> bool:
    """A ``gh?_`` token (40 characters): its last six characters are the base62 CRC-32
    of the 30 characters after the prefix."""
    body = token[4:]
    if len(body) != 36:
        return False
    crc = zlib.crc32(body[:30].encode()) & 0xFFFFFFFF
    return encode(crc, BASE62, 6) == body[30:]


def gitlab_routable(token: str) -> dict[str, str] | None:
    """A routable GitLab token's payload (``o`` organization, ``u`` user, ``g`` group,
    ``p`` project, ``c`` cell: base36 values as written), ``{}`` when the checksum holds
    but the payload is not readable, ``None`` when the token is not routable or its
    checksum does not hold."""
    m = _ROUTABLE.fullmatch(token)
    if m is None:
        return None
    crc = zlib.crc32(token[: m.start("crc")].encode()) & 0xFFFFFFFF
    if encode(crc, BASE36, 7) != m.group("crc"):
        return None
    if int(m.group("length"), 36) != len(m.group("body")):
        return None
    return _payload(m.group("body"), m.group("version") is not None)


def _payload(body: str, versioned: bool) -> dict[str, str]:
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return {}
    if not raw:
        return {}
    if versioned:  # 16 random bytes, the payload, its length in one byte
        size = raw[-1]
        text = raw[16 : 16 + size] if 16 + size == len(raw) - 1 else b""
    else:  # the payload, random bytes, their count in one byte
        size = raw[-1]
        text = raw[: len(raw) - 1 - size] if size < len(raw) else b""
    fields: dict[str, str] = {}
    for line in text.decode("latin-1").split("\n"):
        key, sep, value = line.partition(":")
        if sep and len(key) == 1 and key.isalpha() and value.isalnum():
            fields[key] = value
        elif line:
            return {}
    return fields
