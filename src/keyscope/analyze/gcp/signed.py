"""Cloud Storage signed URLs, V4 (``X-Goog-*``, RSA or HMAC) and V2 (``GoogleAccessId``,
``Expires``, ``Signature``), read strictly: bucket, object, signer, signing time and
expiry as the URL itself says them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, unquote, urlsplit

from keyscope.analyze.gcp.credentials import ACCESS_ID, ServiceAccount, service_account
from keyscope.analyze.signing import signing_window
from keyscope.errors import ParseError

V4_MAX_EXPIRES = 604800  # seven days: Cloud Storage refuses a larger X-Goog-Expires
V4_CLOCK_SKEW = timedelta(minutes=15)  # usable from 15 minutes before X-Goog-Date
MAX_EXPIRES = 100 * 365 * 86400
_SCHEME = re.compile(r"(?i)https?://")
_ALGORITHMS = {"GOOG4-RSA-SHA256": "rsa", "GOOG4-HMAC-SHA256": "hmac"}
_RSA_SIGNATURE = re.compile(r"[0-9a-f]{256,1024}")
_HMAC_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_V2_SIGNATURE = re.compile(r"[A-Za-z0-9+/]{100,}={0,2}")
_HOST = "storage.googleapis.com"
_UPLOAD_HEADERS = ("content-type", "content-md5", "x-goog-acl", "x-goog-resumable")


@dataclass(frozen=True)
class GcsLocation:
    """Where the URL points: host, bucket, object, addressing style."""

    endpoint: str | None
    host: str | None
    bucket: str | None
    object: str | None
    style: str  # path | virtual-hosted | other-host | no-host
    local: bool = False


@dataclass(frozen=True)
class GcpSignedUrl:
    """One signed request."""

    version: str  # "V4" | "V2"
    key_type: str  # "rsa" (a service-account key) | "hmac" (an HMAC key)
    signer: str  # the service-account email or the HMAC access id
    account: ServiceAccount | None  # for a service-account signer
    signature: str
    location: GcsLocation
    signed_at: datetime | None  # V4 only
    expires_in: int | None  # V4: X-Goog-Expires seconds
    expires_at: datetime
    signed_headers: tuple[str, ...]
    method: str  # implied: signed, not written in the URL
    params: dict[str, str] = field(default_factory=dict)
    url: str = field(default="", repr=False)  # as read (secret): what --verify requests


def parse_signed(text: str) -> GcpSignedUrl:
    """A signed URL (or its bare query); raises ``ParseError`` saying what is wrong."""
    try:
        return _parse(text.strip())
    except ValueError as exc:
        raise ParseError(f"not a well-formed URL ({exc})") from None


def _parse(text: str) -> GcpSignedUrl:
    scheme = _SCHEME.search(text)
    if scheme is not None:
        text = text[scheme.start() :]
        parts = urlsplit(text)
        location = gcs_location(parts.scheme.lower(), (parts.hostname or "").lower() or None,
                                unquote(parts.path))
        query = parts.query
    else:
        location = GcsLocation(None, None, None, None, "no-host")
        query = text.split("?", 1)[-1]
    params: dict[str, str] = {}
    for name, value in parse_qsl(query.split("#", 1)[0], keep_blank_values=True):
        params.setdefault(name.lower(), value)
    if "x-goog-credential" in params:
        return replace(_v4(params, location), url=text)
    if "googleaccessid" in params:
        return replace(_v2(params, location), url=text)
    raise ParseError("no X-Goog-Credential or GoogleAccessId parameter")


def _signer(value: str, hmac: bool) -> tuple[str, ServiceAccount | None]:
    if hmac:
        if not ACCESS_ID.fullmatch(value):
            raise ParseError("the HMAC signer is not a GOOG… access id")
        return value, None
    account = service_account(value)
    if "@" not in value or not account.email.endswith(".gserviceaccount.com"):
        raise ParseError("the signer is not a service-account email")
    return value, account


def _v4(params: dict[str, str], location: GcsLocation) -> GcpSignedUrl:
    algorithm = params.get("x-goog-algorithm", "")
    if algorithm not in _ALGORITHMS:
        raise ParseError(f"X-Goog-Algorithm {algorithm[:40]!r} is not a V4 algorithm")
    key_type = _ALGORITHMS[algorithm]
    scope = params["x-goog-credential"].split("/")
    if len(scope) != 5 or scope[3] != "storage" or scope[4] != "goog4_request":
        raise ParseError(
            "X-Goog-Credential is not <signer>/<date>/<location>/storage/goog4_request"
        )
    signer, account = _signer(scope[0], key_type == "hmac")
    signature = params.get("x-goog-signature", "")
    shape = _HMAC_SIGNATURE if key_type == "hmac" else _RSA_SIGNATURE
    if not shape.fullmatch(signature):
        raise ParseError("X-Goog-Signature is not the hex signature its algorithm makes")
    signed_at, expires_in, headers = signing_window(params, "X-Goog", scope[1], MAX_EXPIRES)
    return GcpSignedUrl(
        version="V4",
        key_type=key_type,
        signer=signer,
        account=account,
        signature=signature,
        location=location,
        signed_at=signed_at,
        expires_in=expires_in,
        expires_at=signed_at + timedelta(seconds=expires_in),
        signed_headers=headers,
        method=_method(headers),
        params=_rest(params),
    )


def _v2(params: dict[str, str], location: GcsLocation) -> GcpSignedUrl:
    signer, account = _signer(params["googleaccessid"], False)
    signature = params.get("signature", "")
    if not _V2_SIGNATURE.fullmatch(signature):
        raise ParseError("Signature is not a Base64 RSA signature")
    try:
        expires_at = datetime.fromtimestamp(int(params.get("expires", "")), UTC)
    except (ValueError, OverflowError, OSError):
        raise ParseError("Expires is missing or not a Unix time") from None
    return GcpSignedUrl(
        version="V2",
        key_type="rsa",
        signer=signer,
        account=account,
        signature=signature,
        location=location,
        signed_at=None,
        expires_in=None,
        expires_at=expires_at,
        signed_headers=(),
        method="GET",
        params=_rest(params),
    )


def gcs_location(scheme: str, host: str | None, path: str) -> GcsLocation:
    """Bucket and object from a Cloud Storage host and path (path or virtual-hosted
    style); another host is a bucket-bound CNAME or an emulator."""
    endpoint = f"{scheme}://{host}" if host else None
    segments = path.lstrip("/")
    if host is None:
        return GcsLocation(None, None, None, None, "no-host")
    if host == _HOST or host in ("localhost", "127.0.0.1", "::1"):
        bucket, _, obj = segments.partition("/")
        local = host != _HOST
        return GcsLocation(endpoint, host, bucket or None, obj or None, "path", local)
    if host.endswith("." + _HOST):
        return GcsLocation(endpoint, host, host[: -len(_HOST) - 1], segments or None,
                           "virtual-hosted")
    return GcsLocation(endpoint, host, None, segments or None, "other-host")


def _method(headers: tuple[str, ...]) -> str:
    if "x-goog-resumable" in headers:
        return "POST"
    if any(h in _UPLOAD_HEADERS or h.startswith("x-goog-meta-") for h in headers):
        return "PUT"
    return "GET"


_SIGNING = frozenset({
    "x-goog-algorithm", "x-goog-credential", "x-goog-date", "x-goog-expires",
    "x-goog-signedheaders", "x-goog-signature", "googleaccessid", "signature", "expires",
})


def _rest(params: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k not in _SIGNING}
