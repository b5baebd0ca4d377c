"""Shared Key authorization for read-only Blob requests made with a leaked account key."""

from __future__ import annotations

import base64
import hashlib
import hmac
from email.utils import formatdate
from urllib.parse import parse_qsl, unquote, urlsplit

API_VERSION = "2021-08-06"
_STANDARD = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)


def shared_key_headers(
    method: str, target: str, account: str, key_b64: str, headers: dict[str, str]
) -> dict[str, str]:
    """The x-ms-date, x-ms-version and Authorization headers for one request.

    ``target`` is the request path and query as sent (``/c/b?comp=list``); the
    canonical resource starts with the account name even for path-style URLs.
    """
    signed = {
        "x-ms-date": formatdate(usegmt=True),
        "x-ms-version": API_VERSION,
    }
    lower = {k.lower(): v for k, v in headers.items()} | signed
    lines = [method.upper()]
    lines += [lower.get(name, "") for name in _STANDARD]
    canonical_headers = [
        f"{name}:{' '.join(lower[name].split())}"
        for name in sorted(lower)
        if name.startswith("x-ms-")
    ]
    text = "\n".join(lines) + "\n" + "\n".join(canonical_headers) + "\n"
    text += canonical_resource(target, account)
    digest = hmac.new(base64.b64decode(key_b64), text.encode("utf-8"), hashlib.sha256).digest()
    return signed | {"Authorization": f"SharedKey {account}:{base64.b64encode(digest).decode()}"}


def canonical_resource(target: str, account: str) -> str:
    """``/account/path`` then each query parameter as ``\\nname:value``, names sorted."""
    parts = urlsplit(target)
    resource = f"/{account}{parts.path or '/'}"
    params: dict[str, list[str]] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        params.setdefault(name.lower(), []).append(unquote(value))
    for name in sorted(params):
        resource += f"\n{name}:{','.join(sorted(params[name]))}"
    return resource
