"""Strict parser for Azure Storage shared access signatures (SAS).

Input: the query part of a SAS URL (already split from the URL) and where the URL
pointed. Output: an :class:`AzureSas` with every parameter decoded, or a
:class:`~keyscope.errors.ParseError` that names the offending field.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import date, datetime

from keyscope.analyze.azure.hosts import NO_LOCATION, AzureLocation
from keyscope.analyze.textforms import looks_percent_encoded_query, percent_decode
from keyscope.analyze.timefmt import parse_datetime
from keyscope.errors import NotStorageCredential, ParseError

ACCOUNT_SERVICES = {"b": "blob", "f": "file", "q": "queue", "t": "table"}
SERVICE_ORDER = "bfqt"
RESOURCE_TYPES = {"s": "service", "c": "container", "o": "object"}
BLOB_RESOURCES = {
    "b": "blob",
    "bv": "version",
    "bs": "snapshot",
    "c": "container",
    "d": "directory",
}
FILE_RESOURCES = {"f": "file", "s": "share"}
UD_FIELDS = ("skoid", "sktid", "skt", "ske", "sks", "skv")
UD_OPTIONAL = ("saoid", "suoid", "scid", "skdutid", "sduoid", "srh", "srq")
OVERRIDES = {
    "rscc": "Cache-Control",
    "rscd": "Content-Disposition",
    "rsce": "Content-Encoding",
    "rscl": "Content-Language",
    "rsct": "Content-Type",
}
TABLE_RANGE = ("spk", "srk", "epk", "erk")
KNOWN = {
    "sv",
    "ss",
    "srt",
    "sp",
    "st",
    "se",
    "sip",
    "spr",
    "sr",
    "sdd",
    "si",
    "sig",
    "ses",
    "tn",
    *UD_FIELDS,
    *UD_OPTIONAL,
    *OVERRIDES,
    *TABLE_RANGE,
}
# Ordinary URL parameters that may sit beside a SAS; not part of the token.
URL_PARAMS = {
    "snapshot",
    "versionid",
    "comp",
    "restype",
    "timeout",
    "api-version",
    "prefix",
    "maxresults",
    "marker",
    "delimiter",
    "include",
    "sk",
}

FIRST_VERSION = date(2012, 2, 12)
_VERSION = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_IPV4 = r"(?:\d{1,3}\.){3}\d{1,3}"
_IP_RANGE = re.compile(rf"^{_IPV4}(?:-{_IPV4})?$")
_B64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


@dataclass(frozen=True)
class AzureSas:
    """A decoded Azure Storage SAS. ``params`` holds every SAS parameter, URL-decoded."""

    kind: str  # account | service | service-policy | user-delegation
    params: dict[str, str]
    signature: str
    version: str | None
    services: tuple[str, ...]  # blob/file/queue/table (dfs for DFS hosts)
    resource_types: tuple[str, ...]  # account SAS only: service/container/object
    permissions: str | None
    start: datetime | None
    expiry: datetime | None
    ip_range: str | None
    protocols: tuple[str, ...]
    resource: str | None  # sr
    directory_depth: int | None
    policy_id: str | None
    encryption_scope: str | None
    table_name: str | None
    service: str | None  # the single service of a service/UD SAS, when known
    location: AzureLocation = NO_LOCATION
    snapshot: str | None = None
    version_id: str | None = None
    key_start: datetime | None = None
    key_expiry: datetime | None = None
    user_delegation: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)
    table_range: dict[str, str] = field(default_factory=dict)
    extra_params: dict[str, str] = field(default_factory=dict)

    @property
    def kind_label(self) -> str:
        return {
            "account": "account SAS",
            "service": "service SAS",
            "service-policy": "service SAS bound to a stored access policy",
            "user-delegation": "user delegation SAS",
        }[self.kind]


def split_query(query: str) -> dict[str, str]:
    """Split ``a=b&c=d`` into decoded pairs, tolerating ``?``, encodings and junk."""
    q = query.strip().lstrip("?")
    for _ in range(3):
        if looks_percent_encoded_query(q):
            q = percent_decode(q, 1)
    pairs: dict[str, str] = {}
    for part in q.split("&"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = percent_decode(name.strip()).lower()
        if not sep or not name:
            continue
        if name in pairs and pairs[name] != percent_decode(value):
            raise ParseError(f"{name}: given twice with different values")
        pairs[name] = value if name in OVERRIDES else percent_decode(value)
    # Response-header overrides are decoded once only: their values may hold '%'.
    for name in OVERRIDES:
        if name in pairs:
            pairs[name] = percent_decode(pairs[name], 1)
    return pairs


def is_sas_query(pairs: dict[str, str]) -> bool:
    return "sig" in pairs and bool(pairs.keys() & {"sv", "se", "sp", "si", "ss", "sr", "skoid"})


def decode_signature(sig: str) -> bytes:
    """The signature must be standard Base64 of exactly 32 bytes (HMAC-SHA256)."""
    if not _B64.match(sig) or len(sig) % 4:
        raise ParseError(f"sig: {_short(sig)!r} is not Base64")
    try:
        raw = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        raise ParseError(f"sig: {_short(sig)!r} is not Base64") from None
    if len(raw) != 32:
        raise ParseError(f"sig: decodes to {len(raw)} bytes; an HMAC-SHA256 signature has 32")
    return raw


def parse_sas(pairs: dict[str, str], location: AzureLocation = NO_LOCATION) -> AzureSas:
    """Build an :class:`AzureSas` from decoded query pairs. Strict: see module docstring."""
    reject_lookalikes(pairs)
    if "sig" not in pairs:
        raise ParseError("sig: missing; a SAS always carries its signature")
    sig = pairs["sig"].replace(" ", "+")  # a '+' decoded as a space by a careless client
    decode_signature(sig)

    version = pairs.get("sv")
    if version is not None:
        _check_version(version)

    is_account = "ss" in pairs or "srt" in pairs
    is_ud = any(k in pairs for k in UD_FIELDS)
    if is_account:
        kind = "account"
        for f in ("ss", "srt", "sp", "se", "sv"):
            if f not in pairs:
                raise ParseError(f"{f}: missing; an account SAS needs ss, srt, sp, se and sv")
        for f in ("sr", "si", *UD_FIELDS):
            if f in pairs:
                raise ParseError(f"{f}: not allowed in an account SAS (it has ss/srt)")
    elif is_ud:
        kind = "user-delegation"
        missing = [f for f in UD_FIELDS if f not in pairs]
        if missing:
            raise ParseError(
                f"{missing[0]}: missing; a user delegation SAS needs " + ", ".join(UD_FIELDS)
            )
        if "si" in pairs:
            raise ParseError("si: a user delegation SAS cannot use a stored access policy")
        for f in ("sp", "se"):
            if f not in pairs:
                raise ParseError(f"{f}: missing; a user delegation SAS needs sp and se")
    elif "si" in pairs:
        kind = "service-policy"
        if len(pairs["si"]) > 64:
            raise ParseError("si: longer than 64 characters")
    else:
        kind = "service"
        for f in ("sp", "se"):
            if f not in pairs:
                raise ParseError(
                    f"{f}: missing; a service SAS without a stored policy (si) needs sp and se"
                )
    if version is None and kind in ("account", "user-delegation"):
        raise ParseError(f"sv: missing; required for a {kind} SAS")

    services: tuple[str, ...] = ()
    resource_types: tuple[str, ...] = ()
    service: str | None = None
    resource = pairs.get("sr")
    if kind == "account":
        services = _letters(pairs["ss"], ACCOUNT_SERVICES, "ss", SERVICE_ORDER)
        resource_types = _letters(pairs["srt"], RESOURCE_TYPES, "srt", "sco")
    else:
        service = _service_of(pairs, location)
        services = (service,) if service else ()

    start = parse_datetime(pairs["st"], "st") if "st" in pairs else None
    expiry = parse_datetime(pairs["se"], "se") if "se" in pairs else None
    if start and expiry and expiry <= start:
        raise ParseError(f"se: expiry {pairs['se']} is not after start {pairs['st']}")

    ip_range = pairs.get("sip")
    if ip_range is not None and not _valid_ip_range(ip_range):
        raise ParseError(f"sip: {ip_range!r} is not an IPv4 address or range a.b.c.d-e.f.g.h")
    protocols = _protocols(pairs.get("spr"))

    depth: int | None = None
    if "sdd" in pairs:
        if not re.fullmatch(r"[0-9]{1,4}", pairs["sdd"]):
            raise ParseError(f"sdd: {pairs['sdd']!r} is not a non-negative integer")
        depth = int(pairs["sdd"])
    if resource == "d" and depth is None:
        raise ParseError("sdd: missing; a directory SAS (sr=d) needs its depth")

    user_delegation: dict[str, str] = {}
    key_start = key_expiry = None
    if kind == "user-delegation":
        user_delegation = {k: pairs[k] for k in (*UD_FIELDS, *UD_OPTIONAL) if k in pairs}
        key_start = parse_datetime(pairs["skt"], "skt")
        key_expiry = parse_datetime(pairs["ske"], "ske")
        if "saoid" in pairs and "suoid" in pairs:
            raise ParseError("saoid/suoid: a SAS may carry only one of them")

    extra = {k: v for k, v in pairs.items() if k not in KNOWN}

    return AzureSas(
        kind=kind,
        params={k: v for k, v in pairs.items() if k in KNOWN},
        signature=sig,
        version=version,
        services=services,
        resource_types=resource_types,
        permissions=pairs.get("sp"),
        start=start,
        expiry=expiry,
        ip_range=ip_range,
        protocols=protocols,
        resource=resource,
        directory_depth=depth,
        policy_id=pairs.get("si"),
        encryption_scope=pairs.get("ses"),
        table_name=pairs.get("tn"),
        service=service,
        location=location,
        snapshot=pairs.get("snapshot"),
        version_id=pairs.get("versionid"),
        key_start=key_start,
        key_expiry=key_expiry,
        user_delegation=user_delegation,
        overrides={k: pairs[k] for k in OVERRIDES if k in pairs},
        table_range={k: pairs[k] for k in TABLE_RANGE if k in pairs},
        extra_params=extra,
    )


def reject_lookalikes(pairs: dict[str, str]) -> None:
    """Service Bus/Event Hubs and Logic Apps tokens look like SAS but are not Storage."""
    if "skn" in pairs or ("sr" in pairs and "://" in pairs.get("sr", "") and "sv" not in pairs):
        raise NotStorageCredential(
            "not an Azure Storage SAS: this is a Service Bus / Event Hubs / IoT Hub "
            "shared access signature (sr=<resource URL>, se=<epoch>, skn=<policy>)"
        )
    se = pairs.get("se", "")
    if se.isdigit() and "sv" not in pairs:
        raise NotStorageCredential(
            "not an Azure Storage SAS: its expiry is a Unix epoch and it has no sv, the shape "
            "of a Service Bus / Event Hubs token"
        )
    sp = pairs.get("sp", "")
    if sp.startswith("/") or pairs.get("sv") == "1.0":
        raise NotStorageCredential(
            "not an Azure Storage SAS: sp=/triggers… with sv=1.0 is an Azure Logic Apps "
            "trigger URL signature"
        )


def _check_version(version: str) -> None:
    m = _VERSION.match(version)
    if not m:
        raise ParseError(f"sv: {version!r} is not a service version (YYYY-MM-DD)")
    try:
        d = date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise ParseError(f"sv: {version!r} is not a real date") from None
    if d < FIRST_VERSION:
        raise ParseError(f"sv: {version!r} predates the first SAS version 2012-02-12")


def _letters(value: str, table: dict[str, str], name: str, order: str) -> tuple[str, ...]:
    if not value:
        raise ParseError(f"{name}: empty")
    for ch in value:
        if ch not in table:
            raise ParseError(f"{name}: unknown letter {ch!r} (allowed: {''.join(table)})")
    return tuple(table[ch] for ch in order if ch in value)


def _service_of(pairs: dict[str, str], location: AzureLocation) -> str | None:
    sr = pairs.get("sr")
    host_service = location.service
    if sr is not None:
        if sr in BLOB_RESOURCES:
            return "dfs" if host_service == "dfs" else "blob"
        if sr in FILE_RESOURCES:
            return "file"
        raise ParseError(f"sr: unknown signed resource {sr!r} (blob: b, bv, bs, c, d; file: f, s)")
    if "tn" in pairs or pairs.keys() & set(TABLE_RANGE):
        return "table"
    if host_service in ("queue", "table"):
        return host_service
    return None


def _valid_ip_range(value: str) -> bool:
    if not _IP_RANGE.match(value):
        return False
    return all(0 <= int(octet) <= 255 for part in value.split("-") for octet in part.split("."))


def _protocols(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ("https", "http")
    parts = tuple(p.strip().lower() for p in value.split(","))
    if parts == ("https",):
        return ("https",)
    if set(parts) == {"https", "http"} and len(parts) == 2:
        return ("https", "http")
    raise ParseError(f"spr: {value!r} is not a permitted protocol (https or https,http)")


def _short(text: str) -> str:
    return text if len(text) <= 12 else text[:8] + "…"
