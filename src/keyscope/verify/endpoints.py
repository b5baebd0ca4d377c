"""The named service endpoints a live check may send to, and ``--verify-endpoint
NAME=URL``: the user's replacement for one of them (a regional STS endpoint, a local
test server). A credential that carries its own URL (a SAS, a presigned URL) is
always probed where it points; only a credential without one (a key pair, a token)
uses a named endpoint. A scanned file can never choose it.
"""

from __future__ import annotations

from keyscope.verify.aws import STS
from keyscope.verify.gcp import CERTS
from keyscope.verify.guard import destination
from keyscope.verify.whoami import WHOAMI


def endpoint_names() -> dict[str, str]:
    """Every endpoint name with its default base URL."""
    return dict([STS, CERTS]) | {e.endpoint_name: e.base for e in WHOAMI.values()}


def parse_endpoint(text: str) -> tuple[str, str]:
    """``NAME=URL`` → (name, base URL without a trailing slash); ValueError says why
    not. The URL must be http(s) with a valid host and no query; the transport's
    rails (HTTPS only but to loopback, internal addresses only with
    --allow-internal) apply to it as to any request."""
    name, sep, url = text.partition("=")
    names = endpoint_names()
    if not sep or name not in names:
        raise ValueError(f"{text[:80]!r} is not NAME=URL with NAME one of {', '.join(names)}")
    where = destination(url)
    if isinstance(where, str):
        raise ValueError(f"{name}: {where}")
    if where.parts.query or where.parts.fragment or where.parts.username:
        raise ValueError(f"{name}: the URL must have no query, fragment or user name")
    return name, url.rstrip("/")
