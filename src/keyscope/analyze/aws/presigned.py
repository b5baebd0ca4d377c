"""S3 presigned URLs, Signature Version 4 (``X-Amz-*``) and 2 (``AWSAccessKeyId``,
``Expires``, ``Signature``), read strictly: what the URL itself says of its bucket,
object, Region, signer and lifetime."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, unquote, urlsplit

from keyscope.analyze.aws.keys import KeyId, parse_key_id
from keyscope.analyze.signing import signing_window
from keyscope.errors import ParseError

SIGV4_MAX_EXPIRES = 604800  # seven days: S3 refuses a larger X-Amz-Expires
MAX_EXPIRES = 100 * 365 * 86400  # beyond any date arithmetic worry; S3 refuses far less
_SCHEME = re.compile(r"(?i)https?://")
_V4_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_V2_SIGNATURE = re.compile(r"[A-Za-z0-9+/]{27}=")
_ACCESS_POINT = re.compile(r"^(?P<name>[a-z0-9-]+)-(?P<account>\d{12})$")
_PARTITIONS = {".amazonaws.com.cn": "aws-cn", ".amazonaws.com": "aws"}
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d$")
# Headers a download URL does not sign: their presence says "upload".
_UPLOAD_HEADERS = ("content-type", "content-md5", "x-amz-acl", "x-amz-server-side-encryption")
_OPERATIONS = {"getobject": "GET", "headobject": "HEAD", "putobject": "PUT",
               "deleteobject": "DELETE", "listobjects": "GET", "listobjectsv2": "GET",
               "uploadpart": "PUT", "createmultipartupload": "POST"}


@dataclass(frozen=True)
class S3Location:
    """Where the URL points: host, bucket, object key, addressing style, Region."""

    endpoint: str | None  # scheme://host
    host: str | None
    bucket: str | None
    key: str | None
    style: str  # virtual-hosted | path | access-point | other-host | no-host
    region: str | None  # from the host
    partition: str | None  # aws | aws-cn
    account: str | None = None  # an access point's host names its account
    local: bool = False  # localhost: an emulator (moto, LocalStack, MinIO)


@dataclass(frozen=True)
class AwsPresignedUrl:
    """One presigned request."""

    version: str  # "SigV4" | "SigV2"
    key: KeyId
    signature: str
    location: S3Location
    signed_at: datetime | None  # SigV4 only
    expires_in: int | None  # SigV4: X-Amz-Expires seconds
    expires_at: datetime
    region: str | None  # SigV4 credential scope (else the host's)
    service: str  # credential scope service, "s3" for SigV2
    signed_headers: tuple[str, ...]
    session_token: str | None
    method: str  # implied; the method is signed but not written in the URL
    method_known: bool
    params: dict[str, str] = field(default_factory=dict)  # the rest of the query
    url: str = field(default="", repr=False)  # as read (secret): what --verify requests


def parse_presigned(text: str) -> AwsPresignedUrl:
    """A presigned URL (or its bare query); raises ``ParseError`` saying what is wrong."""
    try:
        return _parse(text.strip())
    except ValueError as exc:  # urlsplit: a malformed host ("[" unclosed), a bad port
        raise ParseError(f"not a well-formed URL ({exc})") from None


def _parse(text: str) -> AwsPresignedUrl:
    scheme = _SCHEME.search(text)
    if scheme is not None:
        text = text[scheme.start() :]
        parts = urlsplit(text)
        host = (parts.hostname or "").lower() or None
        location = s3_location(parts.scheme.lower(), host, unquote(parts.path))
        query = parts.query
    else:
        location = S3Location(None, None, None, None, "no-host", None, None)
        query = text.split("?", 1)[-1]
    params: dict[str, str] = {}
    for name, value in parse_qsl(query.split("#", 1)[0], keep_blank_values=True):
        params.setdefault(name.lower(), value)
    if "x-amz-credential" in params:
        return replace(_v4(params, location), url=text)
    if "awsaccesskeyid" in params:
        return replace(_v2(params, location), url=text)
    raise ParseError("no X-Amz-Credential or AWSAccessKeyId parameter")


def _v4(params: dict[str, str], location: S3Location) -> AwsPresignedUrl:
    algorithm = params.get("x-amz-algorithm", "")
    if algorithm not in ("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"):
        raise ParseError(f"X-Amz-Algorithm {algorithm[:40]!r} is not a SigV4 algorithm")
    scope = params["x-amz-credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise ParseError("X-Amz-Credential is not <key id>/<date>/<region>/<service>/aws4_request")
    key = parse_key_id(scope[0])
    signature = params.get("x-amz-signature", "")
    if not _V4_SIGNATURE.fullmatch(signature):
        raise ParseError("X-Amz-Signature is not 64 hex digits")
    signed_at, expires_in, headers = signing_window(params, "X-Amz", scope[1], MAX_EXPIRES)
    method, known = _method(params, headers)
    return AwsPresignedUrl(
        version="SigV4",
        key=key,
        signature=signature,
        location=location,
        signed_at=signed_at,
        expires_in=expires_in,
        expires_at=signed_at + timedelta(seconds=expires_in),
        region=scope[2],
        service=scope[3],
        signed_headers=headers,
        session_token=params.get("x-amz-security-token"),
        method=method,
        method_known=known,
        params=_rest(params),
    )


def _v2(params: dict[str, str], location: S3Location) -> AwsPresignedUrl:
    key = parse_key_id(params["awsaccesskeyid"])
    signature = params.get("signature", "")
    if not _V2_SIGNATURE.fullmatch(signature):
        raise ParseError("Signature is not a Base64 HMAC-SHA1 (28 characters)")
    try:
        expires_at = datetime.fromtimestamp(int(params.get("expires", "")), UTC)
    except (ValueError, OverflowError, OSError):
        raise ParseError("Expires is missing or not a Unix time") from None
    method, known = _method(params, ())
    return AwsPresignedUrl(
        version="SigV2",
        key=key,
        signature=signature,
        location=location,
        signed_at=None,
        expires_in=None,
        expires_at=expires_at,
        region=location.region,
        service="s3",
        signed_headers=(),
        session_token=params.get("x-amz-security-token"),
        method=method,
        method_known=known,
        params=_rest(params),
    )


def s3_location(scheme: str, host: str | None, path: str) -> S3Location:
    """Bucket, key, style and Region from an S3 host and path (virtual-hosted,
    path-style, legacy ``s3-<region>``, dualstack, access points)."""
    endpoint = f"{scheme}://{host}" if host else None
    segments = path.lstrip("/")
    if host is None:
        return S3Location(None, None, None, None, "no-host", None, None)
    if host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost"):
        bucket, _, key = segments.partition("/")
        return S3Location(endpoint, host, bucket or None, key or None, "path", None, None,
                          local=True)
    suffix = next((s for s in _PARTITIONS if host.endswith(s)), None)
    if suffix is None:
        return S3Location(endpoint, host, None, segments or None, "other-host", None, None)
    labels = host[: -len(suffix)].split(".")
    partition = _PARTITIONS[suffix]
    at = next((i for i, label in enumerate(labels) if label.startswith("s3")), None)
    if at is None:
        return S3Location(endpoint, host, None, segments or None, "other-host", None, partition)
    service = labels[at]
    rest = [label for label in labels[at + 1 :] if label != "dualstack"]
    region = next((label for label in rest if _REGION.match(label)), None)
    if region is None and service.startswith("s3-") and _REGION.match(service[3:]):
        region = service[3:]
    if partition == "aws-cn" and region is None:
        region = next((label for label in labels if _REGION.match(label)), None)
    prefix = ".".join(labels[:at])
    if service in ("s3-accesspoint", "s3-object-lambda") and prefix:
        ap = _ACCESS_POINT.match(prefix)
        return S3Location(endpoint, host, prefix, segments or None, "access-point", region,
                          partition, account=ap.group("account") if ap else None)
    if prefix:
        return S3Location(endpoint, host, prefix, segments or None, "virtual-hosted", region,
                          partition)
    bucket, _, key = segments.partition("/")
    return S3Location(endpoint, host, bucket or None, key or None, "path", region, partition)


def _method(params: dict[str, str], headers: tuple[str, ...]) -> tuple[str, bool]:
    op = params.get("x-id", "").lower()
    if op in _OPERATIONS:
        return _OPERATIONS[op], True
    if "uploadid" in params and "partnumber" in params:
        return "PUT", False
    if "uploads" in params:
        return "POST", False
    if any(h in _UPLOAD_HEADERS or h.startswith("x-amz-meta-") for h in headers):
        return "PUT", False
    return "GET", False


_SIGNING = frozenset({
    "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-expires",
    "x-amz-signedheaders", "x-amz-signature", "x-amz-security-token",
    "awsaccesskeyid", "signature", "expires",
})


def _rest(params: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k not in _SIGNING}
