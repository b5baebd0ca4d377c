"""The data plane: one account's Blob service read through a connection string, GET only.

Get Blob Service Properties (logging, metrics, CORS, soft delete, static website),
List Containers (public access, immutability where the answer shows it, followed
through ``NextMarker``) and, per container, Get Container ACL (public access and
stored access policies). Requests are signed with the account key (Shared Key,
``verify/sharedkey.py``) or carry the connection string's SAS. Nothing is written.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from keyscope.analyze.azure.keys import parse_connection_string
from keyscope.errors import KeyscopeError, ParseError
from keyscope.posture.reader import READ_BYTES, Reader, ReadError
from keyscope.verify.azure import service_base
from keyscope.verify.sharedkey import shared_key_headers
from keyscope.verify.transport import Request

MAX_CONTAINERS = 1000  # containers whose ACL is read at most
MAX_PAGES = 20  # pages of List Containers followed at most


@dataclass
class DataPlane:
    """What the Blob service said; ``None`` for a part it did not answer."""

    account: str
    endpoint: str
    service: dict[str, Any] | None = None
    containers: list[dict[str, Any]] | None = None
    errors: list[str] = field(default_factory=list)
    signed_with_key: bool = False  # Shared Key (else the connection string's SAS)


@dataclass(frozen=True)
class _Credential:
    account: str
    base: str
    key: str | None
    sas: str | None


def read_connection_string(text: str) -> _Credential:
    """The account, endpoint and credential of a connection string (KeyscopeError if unusable)."""
    try:
        cs = parse_connection_string(text)
    except ParseError as exc:
        raise KeyscopeError(f"--connection-string: {exc}") from None
    loc = cs.location("blob")
    account = cs.account or loc.account
    if not account:
        raise KeyscopeError("--connection-string: it names no account (AccountName)")
    base = service_base(loc, account) if loc.host else f"https://{account}.blob.core.windows.net"
    if base is None:
        raise KeyscopeError("--connection-string: its blob endpoint is not usable")
    return _Credential(account, base, cs.account_key, cs.sas.lstrip("?") if cs.sas else None)


def read_data_plane(text: str, reader: Reader) -> DataPlane:
    """Read one account's Blob service settings and containers."""
    cred = read_connection_string(text)
    plane = DataPlane(cred.account, cred.base, signed_with_key=cred.key is not None)

    def get(probe: str, path: str, params: str) -> bytes:
        shown = f"{cred.base}{path}?{params}"
        url = shown
        authorize = None
        if cred.key is not None:
            key = cred.key

            def sign(request: Request, target: str) -> dict[str, str]:
                return shared_key_headers(request.method, target, cred.account, key,
                                          dict(request.headers))

            authorize = sign
        elif cred.sas:
            url = f"{shown}&{cred.sas}"
            shown = f"{shown}&(the connection string's SAS)"
        response = reader.get(Request(probe, "GET", url, shown, authorize=authorize,
                                      max_body=READ_BYTES))
        if not 200 <= response.status < 300:
            code = response.headers.get("x-ms-error-code") or _field(response.body, "Code")
            raise ReadError(f"{probe}: HTTP {response.status}" + (f" {code}" if code else ""),
                            response.status, code)
        return response.body

    try:
        plane.service = service_properties(
            get("Get Blob Service Properties", "/", "restype=service&comp=properties"))
    except ReadError as exc:
        plane.errors.append(exc.reason)
    try:
        plane.containers = _containers(get)
    except ReadError as exc:
        plane.errors.append(exc.reason)
        return plane
    for container in plane.containers[:MAX_CONTAINERS]:
        try:
            body = get("Get Container ACL", "/" + quote(container["name"], safe=""),
                       "restype=container&comp=acl")
            container["policies"] = stored_policies(body)
        except ReadError as exc:
            container["policies"] = None
            container["acl_error"] = exc.reason
    if len(plane.containers) > MAX_CONTAINERS:
        plane.errors.append(f"only the first {MAX_CONTAINERS} containers' ACLs were read")
    return plane


def _containers(get: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    marker = ""
    for _ in range(MAX_PAGES):
        params = "comp=list&maxresults=5000"
        if marker:
            params += f"&marker={quote(marker, safe='')}"
        root = _xml(get("List Containers", "/", params))
        for item in root.iter("Container"):
            props = item.find("Properties")
            out.append({
                "name": _text(item, "Name") or "?",
                "public_access": (_text(props, "PublicAccess") or "off") if props is not None
                else "off",
                "immutability_policy": _flag(props, "HasImmutabilityPolicy"),
                "legal_hold": _flag(props, "HasLegalHold"),
                "immutable_storage_with_versioning": _flag(
                    props, "ImmutableStorageWithVersioningEnabled"),
            })
        marker = _text(root, "NextMarker") or ""
        if not marker:
            return out
    raise ReadError(f"List Containers: more than {MAX_PAGES} pages; the rest was not read")


def service_properties(body: bytes) -> dict[str, Any]:
    """The parts of a StorageServiceProperties document that decide a leak's reach."""
    root = _xml(body)
    logging = root.find("Logging")
    cors = root.find("Cors")
    retention = root.find("DeleteRetentionPolicy")
    website = root.find("StaticWebsite")
    return {
        "logging": None if logging is None else {
            "read": _flag(logging, "Read") is True,
            "write": _flag(logging, "Write") is True,
            "delete": _flag(logging, "Delete") is True,
            "retention_days": _retention(logging),
        },
        "hour_metrics": _metrics(root.find("HourMetrics")),
        "minute_metrics": _metrics(root.find("MinuteMetrics")),
        "cors": [] if cors is None else [
            {
                "origins": _list(rule, "AllowedOrigins"),
                "methods": _list(rule, "AllowedMethods"),
                "headers": _list(rule, "AllowedHeaders"),
            }
            for rule in cors.iter("CorsRule")
        ],
        # absent (Azurite before it is first set): the service's default, off
        "delete_retention": {
            "enabled": _flag(retention, "Enabled") is True,
            "days": _int(_text(retention, "Days")),
            "allow_permanent_delete": _flag(retention, "AllowPermanentDelete"),
        },
        "static_website": None if website is None else _flag(website, "Enabled") is True,
    }


def stored_policies(body: bytes) -> list[dict[str, str | None]]:
    """A container's stored access policies (SignedIdentifiers): id, permissions, dates."""
    root = _xml(body) if body.strip() else ET.Element("SignedIdentifiers")
    out: list[dict[str, str | None]] = []
    for ident in root.iter("SignedIdentifier"):
        policy = ident.find("AccessPolicy")
        out.append({
            "id": _text(ident, "Id") or "?",
            "permissions": _text(policy, "Permission"),
            "start": _text(policy, "Start"),
            "expiry": _text(policy, "Expiry"),
        })
    return out


def _xml(body: bytes) -> ET.Element:
    if b"<!DOCTYPE" in body[:1024] or b"<!ENTITY" in body:
        raise ReadError("the service's answer declares a document type; it is not read")
    try:
        return ET.fromstring(body.lstrip(b"\xef\xbb\xbf"))
    except ET.ParseError:
        raise ReadError("the service's answer is not XML") from None


def _text(node: ET.Element | None, name: str) -> str | None:
    if node is None:
        return None
    child = node.find(name)
    if child is None or child.text is None:
        return None
    return child.text.strip()


def _flag(node: ET.Element | None, name: str) -> bool | None:
    value = _text(node, name)
    return None if value is None else value.lower() == "true"


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _list(node: ET.Element, name: str) -> list[str]:
    return [v.strip() for v in (_text(node, name) or "").split(",") if v.strip()]


def _retention(node: ET.Element) -> int | None:
    policy = node.find("RetentionPolicy")
    if policy is None or _flag(policy, "Enabled") is not True:
        return None
    return _int(_text(policy, "Days"))


def _metrics(node: ET.Element | None) -> dict[str, Any] | None:
    if node is None:
        return None
    return {"enabled": _flag(node, "Enabled") is True, "retention_days": _retention(node)}


def _field(body: bytes, name: str) -> str | None:
    try:
        return _text(_xml(body), name) if body.strip() else None
    except ReadError:
        return None
