"""Read-only probes for Azure Storage credentials, and what their answers mean.

The ladder (docs/architecture.md, --verify): first Get Account Information on the
token's own resource (no customer data; the resource need not exist), or for
queue/table/file-only tokens the nearest read-only call on their service. Only with
``deep``, and only where the token's permissions allow it: List Containers / List
Blobs with ``maxresults=1``, Get Blob Service Properties (is logging on? soft
delete?), Get Blob Properties (HEAD). Never Get Blob, never Get Messages, never a
write. An answer such as ``AuthorizationPermissionMismatch`` still proves that the
signature was accepted: authorization is checked after authentication.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlsplit

from keyscope.analyze.azure.hosts import AzureLocation
from keyscope.analyze.azure.keys import AzureAccountKey
from keyscope.analyze.azure.sas import AzureSas
from keyscope.verify.interface import ProbeResult
from keyscope.verify.sharedkey import shared_key_headers
from keyscope.verify.transport import Request, Response, loopback_name

GAI = "restype=account&comp=properties"
GAI_MIN_VERSION = "2018-03-28"
NOT_FOUND_CODES = frozenset(
    {
        "BlobNotFound",
        "ContainerNotFound",
        "ResourceNotFound",
        "QueueNotFound",
        "TableNotFound",
        "ShareNotFound",
        "ParentNotFound",
        "PathNotFound",
        "FilesystemNotFound",
    }
)
MISMATCH_CODES = {
    "AuthorizationPermissionMismatch": "permission-mismatch",
    "AuthorizationResourceTypeMismatch": "resource-type-mismatch",
    "AuthorizationServiceMismatch": "service-mismatch",
    "AuthorizationProtocolMismatch": "protocol-mismatch",
    "AuthorizationSourceIPMismatch": "source-ip-mismatch",
    "KeyBasedAuthenticationNotPermitted": "key-auth-disabled",
    "AccountIsDisabled": "account-disabled",
}
_XML_FIELD = r"<{0}>(.*?)</{0}>"
_JSON_CODE = re.compile(rb'"code"\s*:\s*"([^"]{1,100})"')
_JSON_MESSAGE = re.compile(rb'"value"\s*:\s*"([^"]{1,500})"')
_FACT_HEADERS = {
    "x-ms-sku-name": "sku",
    "x-ms-account-kind": "accountKind",
    "x-ms-is-hns-enabled": "hierarchicalNamespace",
}


@dataclass(frozen=True)
class Endpoint:
    """Where probes go: the service endpoint's base URL (with the account segment
    for path-style URLs) and the resource path below it."""

    base: str
    service: str  # blob | queue | table | file
    segments: tuple[str, ...]


def sas_requests(sas: AzureSas, account: str | None, deep: bool) -> list[Request] | str:
    """The probes for one SAS, in order; a string says why none can be sent."""
    target = _sas_target(sas, account)
    if isinstance(target, str):
        return target
    query = _sas_query(sas)
    shown_query = _sas_query(sas, redact=True)
    letters = set(sas.permissions or "")
    seg = target.segments
    out: list[Request] = []

    def add(
        probe: str, method: str, path: str, params: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        sep = "&" if params else ""
        out.append(
            Request(
                probe,
                method,
                f"{target.base}{path}?{params}{sep}{query}",
                f"{target.base}{path}?{params}{sep}{shown_query}",
                headers,
            )
        )

    old = sas.version is not None and sas.version < GAI_MIN_VERSION
    gai = GAI + ("&api-version=" + GAI_MIN_VERSION if old else "")
    if sas.kind == "account":
        if target.service == "blob":
            add("Get Account Information", "GET", "/", gai)
        else:
            add(
                f"Get {target.service.title()} Service Properties",
                "GET",
                "/",
                "restype=service&comp=properties",
            )
        if deep and target.service == "blob":
            types = set(sas.resource_types)
            if "service" in types and "l" in letters:
                add("List Containers", "GET", "/", "comp=list&maxresults=1")
            if "service" in types and "r" in letters:
                add("Get Blob Service Properties", "GET", "/", "restype=service&comp=properties")
            if len(seg) == 1 and "container" in types and "l" in letters:
                add("List Blobs", "GET", _path(seg), "restype=container&comp=list&maxresults=1")
            if len(seg) >= 2 and "object" in types and "r" in letters:
                add("Get Blob Properties", "HEAD", _path(seg), "")
        return out

    if target.service == "queue":
        if not seg:
            return "the URL does not name the queue this SAS was made for"
        add("Get Queue Metadata", "GET", _path(seg[:1]), "comp=metadata")
        return out
    if target.service == "table":
        table = sas.table_name or (seg[0] if seg else None)
        if not table:
            return "the token does not name its table (tn)"
        # A filter that matches no entity: proves access without reading any data.
        nothing = quote(f"PartitionKey eq 'keyscope-probe-{uuid.uuid4()}'", safe="")
        add(
            "Query Entities (matching none)",
            "GET",
            f"/{quote(table)}()",
            f"$filter={nothing}&$top=1",
            (("Accept", "application/json;odata=nometadata"),),
        )
        return out
    if target.service == "file":
        if not seg:
            return "the URL does not name the share this SAS was made for"
        if len(seg) >= 2:
            add("Get File Properties", "HEAD", _path(seg), "")
        else:
            add("Get Share Properties", "HEAD", _path(seg), "restype=share")
        return out
    # Blob service, user delegation and stored-policy SAS: on the token's own resource.
    if not seg:
        return "the URL does not name the container or blob this SAS was made for"
    add("Get Account Information", "GET", _path(seg), gai)
    if deep:
        if sas.resource == "c" and "l" in letters:
            add("List Blobs", "GET", _path(seg[:1]), "restype=container&comp=list&maxresults=1")
        if sas.resource in ("b", "bs", "bv") and "r" in letters and len(seg) >= 2:
            add("Get Blob Properties", "HEAD", _path(seg), "")
    return out


def key_requests(key: AzureAccountKey, account: str | None, deep: bool) -> list[Request] | str:
    """Shared Key-signed equivalents for an account key (or connection string)."""
    acct = key.account or account
    if not acct:
        return "the account name is unknown; give --account NAME"
    loc = key.location
    base = _base(loc, acct) if loc.host else f"https://{acct}.blob.core.windows.net"
    if base is None:
        return "the connection string's blob endpoint is not usable"

    def sign(request: Request, target: str) -> dict[str, str]:
        return shared_key_headers(request.method, target, acct, key.key, dict(request.headers))

    requests = [
        Request(
            "Get Account Information", "GET", f"{base}/?{GAI}", f"{base}/?{GAI}", authorize=sign
        )
    ]
    if deep:
        for probe, params in (
            ("List Containers", "comp=list&maxresults=1"),
            ("Get Blob Service Properties", "restype=service&comp=properties"),
        ):
            requests.append(
                Request(probe, "GET", f"{base}/?{params}", f"{base}/?{params}", authorize=sign)
            )
    return requests


def judge(
    request: Request,
    response: Response,
    *,
    sas: AzureSas | None,
    now: datetime,
    emulator: bool,
) -> ProbeResult:
    """What one answer means (§7.3), with Azurite's differences (§7.4) for emulators."""
    code = response.headers.get("x-ms-error-code") or _body_field(response.body, "Code")
    detail = _body_field(response.body, "AuthenticationErrorDetail") or _message(response.body)
    facts = {
        name: response.headers[h] for h, name in _FACT_HEADERS.items() if h in response.headers
    }
    status = response.status

    def result(outcome: str, text: str | None = detail) -> ProbeResult:
        return ProbeResult(
            request.probe, request.method, request.shown_url, outcome, status, code, text, facts
        )

    if 200 <= status < 300:
        facts.update(_body_facts(request.probe, response.body))
        return result("live", None)
    if status == 404 and (code in NOT_FOUND_CODES or request.method == "HEAD"):
        return result("live", "authorized; the resource itself does not exist")
    if 300 <= status < 400:
        where = response.headers.get("location", "")
        host = re.sub(r"^[a-z]+://([^/?#]*).*$", r"\1", where, flags=re.I)
        return result(
            "redirect-refused", f"redirect to {host or 'an unnamed location'} not followed"
        )
    if code in MISMATCH_CODES:
        return result(MISMATCH_CODES[code])
    if status == 403 and (
        code == "AuthenticationFailed" or (emulator and code == "AuthorizationFailure")
    ):
        return result(_refusal(detail, sas, now))
    if status == 403:
        return result("denied")
    return result("unexpected")


def _refusal(detail: str | None, sas: AzureSas | None, now: datetime) -> str:
    """Expired, not yet valid, or a rejected signature, from the detail text or
    (Azurite sends none) from the token's own dates."""
    text = (detail or "").lower()
    timing = "time frame" in text or "has to be after" in text or "must be after" in text
    if sas is not None:
        if sas.start is not None and sas.start > now:
            return "not-yet-valid"
        if sas.expiry is not None and sas.expiry <= now:
            return "expired"
        if sas.key_expiry is not None and sas.key_expiry <= now:
            return "expired"
    if timing:
        return "expired"
    if sas is not None and sas.policy_id is not None:
        return "policy-or-signature-rejected"
    return "signature-rejected"


def _sas_target(sas: AzureSas, account: str | None) -> Endpoint | str:
    loc = sas.location
    acct = loc.account or account
    service = _probe_service(sas, loc)
    if loc.host is None:
        if not acct:
            return "a bare SAS query without its URL or account name; give --account NAME"
        host = f"{acct}.{service}.core.windows.net"
        return Endpoint(f"https://{host}", service, ())
    base = _base(loc, acct)
    if base is None:
        return "the URL's account is unknown"
    return Endpoint(base, service, loc.path_segments)


def _probe_service(sas: AzureSas, loc: AzureLocation) -> str:
    if loc.service in ("blob", "dfs", "web"):
        return "blob"
    if loc.service in ("queue", "table", "file"):
        return loc.service
    if sas.service in ("queue", "table", "file"):
        return sas.service
    if sas.kind == "account" and "blob" not in sas.services and sas.services:
        return sas.services[0]
    if sas.kind in ("service", "service-policy") and sas.resource is None:
        return "queue"  # blob and file service SAS carry sr, table SAS carry tn
    return "blob"


def service_base(loc: AzureLocation, account: str | None) -> str | None:
    """The service root URL for an account's location (``posture`` reads it too)."""
    return _base(loc, account)


def _base(loc: AzureLocation, account: str | None) -> str | None:
    """The service root: path-style endpoints keep their account segment; a DFS host
    is probed on its blob host (a DFS SAS is valid there too)."""
    host = loc.host or ""
    # Azure serves every endpoint over HTTPS: a leaked http:// URL is probed over
    # HTTPS. Only a local emulator keeps plain HTTP.
    local = loopback_name(urlsplit("//" + host).hostname or "")
    scheme = (loc.scheme or "https").lower() if local else "https"
    if loc.cloud in ("emulator", "path-style endpoint") and not _named_host(host):
        if not account:
            return None
        segment = account + ("-secondary" if loc.secondary else "")
        return f"{scheme}://{host}/{quote(segment)}"
    if loc.service == "dfs":
        host = re.sub(r"\.dfs\.", ".blob.", host, count=1)
    return f"{scheme}://{host}"


def _named_host(host: str) -> bool:
    """``acct.blob.localhost`` style: the account is in the host name, not the path."""
    return ".localhost" in host


def _sas_query(sas: AzureSas, redact: bool = False) -> str:
    pairs = [(k, v) for k, v in sas.params.items() if k != "sig"]
    pairs.append(("sig", "REDACTED" if redact else sas.signature))
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in pairs)


def _path(segments: tuple[str, ...]) -> str:
    return "".join("/" + quote(s, safe="") for s in segments) or "/"


def _body_field(body: bytes, name: str) -> str | None:
    m = re.search(_XML_FIELD.format(name).encode(), body, re.S)
    if m is None:
        if name == "Code":
            j = _JSON_CODE.search(body)
            return j.group(1).decode("utf-8", "replace") if j else None
        return None
    return _clean(m.group(1).decode("utf-8", "replace"))


def _message(body: bytes) -> str | None:
    text = _body_field(body, "Message")
    if text is None:
        j = _JSON_MESSAGE.search(body)
        text = _clean(j.group(1).decode("utf-8", "replace")) if j else None
    if text is None:
        return None
    return re.split(r"\s*(?:\\n|\n)?RequestId:", text, maxsplit=1)[0].strip() or None


def _clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text[:500]


def _body_facts(probe: str, body: bytes) -> dict[str, str]:
    """Evidence for the owner from a service's answer; no names of data are kept."""
    facts: dict[str, str] = {}
    if probe == "Get Blob Service Properties":
        logging = re.search(rb"<Logging>(.*?)</Logging>", body, re.S)
        if logging:
            for op in ("Read", "Write", "Delete"):
                m = re.search(rf"<{op}>(true|false)</{op}>".encode(), logging.group(1))
                if m:
                    facts[f"logging{op}"] = m.group(1).decode()
        retention = re.search(
            rb"<DeleteRetentionPolicy>\s*<Enabled>(true|false)</Enabled>", body, re.S
        )
        if retention:
            facts["softDelete"] = retention.group(1).decode()
    elif probe in ("List Containers", "List Blobs"):
        tag = b"<Container>" if probe == "List Containers" else b"<Blob>"
        facts["listedOne"] = "yes" if tag in body else "no (empty)"
    return facts
