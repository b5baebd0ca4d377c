"""Read-only probes of signed object URLs (S3 presigned, Cloud Storage signed), and
what S3's and Cloud Storage's XML answers mean.

The method is signed but not written in the URL. A URL signed for GET is probed with
GET and ``Range: bytes=0-0`` (no byte of the object is kept); one signed for HEAD with
HEAD. When the URL does not say its method, GET goes first and, only if the signature
was refused, HEAD (a URL made by ``head_object``). A URL that implies an upload or a
delete (its operation, its signed headers) is never requested: keyscope sends no
PUT, POST or DELETE.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, quote, urlsplit

from keyscope.redact import mask
from keyscope.verify.interface import ProbeResult, probe_result
from keyscope.verify.transport import Request, Response, loopback_name

# Query parameters whose values are secret: never in a shown URL.
SECRET_PARAMS = frozenset(
    {
        "x-amz-signature",
        "signature",
        "x-goog-signature",
        "x-amz-security-token",
        "x-amz-s3session-token",
    }
)
_XML_FIELD = r"<{0}>(.*?)</{0}>"
_SIZE = re.compile(r"bytes\s+\d+-\d+/(\d+)")
_FACTS = {"content-type": "contentType", "last-modified": "lastModified"}


@dataclass(frozen=True)
class SignedObject:
    """What a probe needs of a signed URL, whichever service signed it."""

    service: str  # "S3" | "Cloud Storage": for the probe's name
    url: str  # as read, signature and all
    method: str  # implied by the URL (operation, signed headers) or known
    method_known: bool  # the URL names its operation (``x-id``)
    signed_headers: tuple[str, ...]
    expires_at: datetime
    not_before: datetime | None  # the earliest time the service accepts it
    secrets: tuple[str, ...]  # signature, session token: masked in any detail kept


def object_requests(obj: SignedObject) -> list[Request] | str:
    """The probes for one signed URL, in order; a string says why none is sent."""
    try:
        parts = urlsplit(obj.url)
        host = parts.hostname or ""
    except ValueError:
        return "the URL is not well-formed"
    if parts.scheme.lower() not in ("http", "https") or not host:
        return "the URL's host is not known (a bare query)"
    method = obj.method.upper()
    if method not in ("GET", "HEAD"):
        how = "is signed for" if obj.method_known else "implies (by its signed headers)"
        return f"the URL {how} {method}: keyscope never sends a write or a delete"
    extra = sorted(h for h in obj.signed_headers if h != "host")
    if extra:
        return (
            "the URL signs headers whose values it does not carry "
            f"({', '.join(extra[:4])}): a probe could not reproduce them"
        )
    # The signature does not cover the scheme: a leaked http:// URL is sent over
    # HTTPS; only a local emulator keeps plain HTTP.
    url = obj.url if loopback_name(host) else "https" + obj.url[len(parts.scheme) :]
    shown = shown_url(url)
    head = Request(f"{obj.service} object properties (HEAD)", "HEAD", url, shown)
    if method == "HEAD" and obj.method_known:
        return [head]
    get = Request(
        f"{obj.service} first byte (GET, Range: bytes=0-0, nothing kept)",
        "GET",
        url,
        shown,
        (("Range", "bytes=0-0"),),
        keep=0,
        notice="a data read in the owner's access logs, if they keep them",
    )
    if obj.method_known:
        return [get]
    return [get, Request(head.probe, "HEAD", url, shown, fallback=True)]


def shown_url(url: str) -> str:
    """``url`` with its signature and session token replaced by REDACTED."""
    head, sep, query = url.partition("?")
    if not sep:
        return url
    pairs = parse_qsl(query.split("#", 1)[0], keep_blank_values=True)
    shown = [
        (k, "REDACTED" if k.lower() in SECRET_PARAMS else v) for k, v in pairs
    ]
    return head + "?" + "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                                 for k, v in shown)


def judge_object(
    obj: SignedObject, request: Request, response: Response, now: datetime
) -> ProbeResult:
    """What one answer of S3 or Cloud Storage to a probe of a signed URL means."""
    body = response.body
    code = xml_field(body, "Code")
    message = xml_field(body, "Message")
    details = xml_field(body, "Details")
    text = " ".join(t for t in (message, details) if t) or None
    detail = mask(text, obj.secrets)[:300] if text else None
    status = response.status
    facts: dict[str, str] = {}
    if 200 <= status < 300 or status == 416:
        size = _SIZE.search(response.headers.get("content-range", ""))
        if size:
            facts["objectSize"] = size.group(1)
        elif request.method == "HEAD" and "content-length" in response.headers:
            facts["objectSize"] = response.headers["content-length"]
        for header, name in _FACTS.items():
            if header in response.headers:
                facts[name] = response.headers[header][:100]

    def result(outcome: str, why: str | None = detail) -> ProbeResult:
        return probe_result(request, outcome, status, code, why, facts)

    if 200 <= status < 300:
        return result("live", None)
    if status == 416:  # an empty object: the range was judged after the signature
        return result("live", "authorized; the object is empty")
    if 300 <= status < 400:
        return result("redirect-refused", "a redirect (another Region or host) not followed")
    if status == 404:
        if code == "NoSuchBucket":
            return result("bucket-not-found")
        if code == "NoSuchKey":
            return result("live", "authorized; the object itself does not exist")
        return result("not-found")
    if status not in (400, 403):
        return result("unexpected")
    lowered = (text or "").lower()
    if code == "InvalidAccessKeyId":
        return result("key-unknown")
    if code == "ExpiredToken" or "expired" in lowered or obj.expires_at <= now:
        return result("expired")
    if "not yet valid" in lowered or (obj.not_before is not None and obj.not_before > now):
        return result("not-yet-valid")
    if code == "SignatureDoesNotMatch":
        return result("signature-rejected" if obj.method_known else "method-or-signature-rejected")
    if code == "AccessDenied":
        return result(
            "permission-mismatch",
            "the signature was accepted; its signer may not read this object now (or it "
            "does not exist and the signer may not list the bucket)",
        )
    if status == 403 and request.method == "HEAD" and code is None:
        return result("denied", "HEAD answers carry no error code")
    return result("denied" if status == 403 else "unexpected")


def xml_field(body: bytes, name: str) -> str | None:
    """The text of the first ``<name>`` element of an XML answer, spaces folded."""
    m = re.search(_XML_FIELD.format(name).encode(), body, re.S)
    if m is None:
        return None
    return re.sub(r"\s+", " ", m.group(1).decode("utf-8", "replace")).strip()[:500] or None
