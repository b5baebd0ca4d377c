"""JSON Web Tokens decoded offline (RFC 7519, compact JWS): header and claims, never
the signature's validity (that needs the issuer's key)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from keyscope.errors import ParseError

JWT = re.compile(
    r"(?<![A-Za-z0-9_-])(?P<jwt>eyJ[A-Za-z0-9_-]{8,4000}\.eyJ[A-Za-z0-9_-]{8,8000}"
    r"\.[A-Za-z0-9_-]{0,2000})(?![A-Za-z0-9_.-])"
)
# Public samples: jwt.io's default token and the RFC 7519 example.
SAMPLE_SUBJECTS = frozenset({"1234567890"})
SAMPLE_ISSUERS = frozenset({"joe"})
# RFC 7519's registered claims: a token used as a credential carries some of them.
REGISTERED = ("iss", "sub", "aud", "exp", "iat", "nbf", "jti")
_MAX_EPOCH = 253402300799  # 9999-12-31


@dataclass(frozen=True)
class Jwt:
    """A decoded JWT: its header, claims and signature part (the token is the secret)."""

    token: str
    header: dict[str, object]
    claims: dict[str, object]
    signed: bool  # a non-empty signature part

    def text(self, name: str) -> str | None:
        value = self.claims.get(name)
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ", ".join(str(v) for v in value)
        return None

    def time(self, name: str) -> datetime | None:
        value = self.claims.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if not 0 <= value <= _MAX_EPOCH:
            return None
        return datetime.fromtimestamp(int(value), UTC)


def _part(segment: str) -> dict[str, object]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ParseError("JWT segment is not Base64url JSON") from None
    if not isinstance(value, dict):
        raise ParseError("JWT segment is not a JSON object")
    return value


def decode(token: str) -> Jwt:
    """The header and claims of a compact JWS; raises ``ParseError`` when either is not
    a JSON object, the header names no ``alg``, or it is a public sample."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ParseError("a JWT has three dot-separated parts")
    header, claims = _part(parts[0]), _part(parts[1])
    if not isinstance(header.get("alg"), str):
        raise ParseError("JWT header names no alg")
    jwt = Jwt(token, header, claims, bool(parts[2]))
    if jwt.text("sub") in SAMPLE_SUBJECTS or jwt.text("iss") in SAMPLE_ISSUERS:
        raise ParseError("a public sample JWT (jwt.io, RFC 7519)")
    if not jwt.signed and str(header["alg"]).lower() != "none":
        raise ParseError("JWT without its signature (a header and claims only)")
    if not any(name in claims for name in REGISTERED):
        raise ParseError("JWT with none of iss, sub, aud, exp, iat, nbf, jti: an example payload")
    return jwt
