"""AWS Signature Version 4 for one request, in headers (``Authorization``), with the
standard library only: what keyscope signs ``sts:GetCallerIdentity`` with.

Canonical request: method, URI-encoded path, the query sorted by name and value
(both RFC 3986-encoded), the signed headers (``host``, ``x-amz-date``, the session
token and any given), and the SHA-256 of the payload; the signing key is the HMAC
chain ``"AWS4" + secret`` → date → Region → service → ``aws4_request``.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"


def sigv4_headers(
    method: str,
    url: str,
    *,
    region: str,
    service: str,
    key_id: str,
    secret: str,
    session_token: str | None = None,
    headers: dict[str, str] | None = None,
    payload: bytes = b"",
    now: datetime | None = None,
) -> dict[str, str]:
    """The headers to add to a request so that AWS authenticates it: ``X-Amz-Date``,
    ``X-Amz-Security-Token`` (temporary keys) and ``Authorization``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    stamp = moment.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    parts = urlsplit(url)
    added = {"X-Amz-Date": stamp}
    if session_token:
        added["X-Amz-Security-Token"] = session_token
    signed = {k.lower(): " ".join(v.split()) for k, v in (headers or {}).items()}
    signed |= {k.lower(): v for k, v in added.items()}
    signed["host"] = _host(parts.hostname or "", parts.port, parts.scheme)
    names = sorted(signed)
    canonical = "\n".join([
        method.upper(),
        quote(parts.path or "/", safe="/~"),
        canonical_query(parts.query),
        "".join(f"{name}:{signed[name]}\n" for name in names),
        ";".join(names),
        hashlib.sha256(payload).hexdigest(),
    ])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        [ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = signing_key(secret, day, region, service)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    added["Authorization"] = (
        f"{ALGORITHM} Credential={key_id}/{scope}, SignedHeaders={';'.join(names)}, "
        f"Signature={signature}"
    )
    return added


def canonical_query(query: str) -> str:
    """Each parameter as ``name=value``, both RFC 3986-encoded, sorted."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(pairs)
    )


def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    """The derived key of one day, Region and service."""
    key = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _host(host: str, port: int | None, scheme: str) -> str:
    """The Host header as sent: the port only when it is not the scheme's default."""
    name = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return name if port in (None, default) else f"{name}:{port}"
