"""Storage log lines written exactly as Microsoft documents them, for the usage tests
and the benchmark: classic ``$logs`` v1.0/v2.0 (field order, ``;``, quoted fields
HTML-escaped, the unquoted request URL with ``&amp;``, ``ip:port``, ``sig=XXXXX``),
Azure Monitor resource-log JSON lines (``PT1H.json``), and Log Analytics exports."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote, urlsplit

# "Storage Analytics log format", version 1.0 fields in order
CLASSIC_V1 = (
    "version-number", "request-start-time", "operation-type", "request-status",
    "http-status-code", "end-to-end-latency-in-ms", "server-latency-in-ms",
    "authentication-type", "requester-account-name", "owner-account-name", "service-type",
    "request-url", "requested-object-key", "request-id-header", "operation-count",
    "requester-ip-address", "request-version-header", "request-header-size",
    "request-packet-size", "response-header-size", "response-packet-size",
    "request-content-length", "request-md5", "server-md5", "etag-identifier",
    "last-modified-time", "conditions-used", "user-agent-header", "referrer-header",
    "client-request-id",
)
CLASSIC_V2_EXTRA = ("user-object-id", "tenant-id", "application-id", "audience", "issuer",
                    "user-principal-name", "reserved-field", "authorization-detail")
QUOTED = {"requested-object-key", "request-md5", "server-md5", "etag-identifier",
          "user-agent-header", "client-request-id"}
ANALYTICS_COLUMNS = (
    "TimeGenerated [UTC]", "AccountName", "Location", "Protocol", "OperationName",
    "AuthenticationType", "StatusCode", "StatusText", "DurationMs", "ServerLatencyMs", "Uri",
    "CallerIpAddress", "CorrelationId", "SchemaVersion", "OperationVersion",
    "AuthenticationHash", "RequesterObjectId", "RequesterTenantId", "RequesterAppId",
    "RequesterAudience", "RequesterTokenIssuer", "RequesterUpn", "AuthorizationDetails",
    "UserAgentHeader", "ReferrerHeader", "ClientRequestId", "Etag", "ServiceType",
    "OperationCount", "ObjectKey", "RequestHeaderSize", "RequestBodySize",
    "ResponseHeaderSize", "ResponseBodySize", "RequestMd5", "ResponseMd5",
    "LastModifiedTime", "ConditionsUsed", "ContentLengthHeader", "Category", "TlsVersion",
    "SasExpiryStatus", "MetricResponseType", "SourceUri", "DestinationUri", "AccessTier",
    "SourceAccessTier", "RehydratePriority", "DownloadRange", "Type", "_ResourceId",
)


def signature_of(url: str) -> str:
    """The ``sig`` value of a SAS URL, percent-decoded once (never plus-decoded)."""
    for part in urlsplit(url).query.split("&"):
        if part.startswith("sig="):
            return unquote(part[4:])
    raise ValueError("no sig")


def sas_hash(url: str) -> str:
    """The documented formula: HEX_UPPER(SHA256(ascii(url_decode(sig))))."""
    return hashlib.sha256(signature_of(url).encode("ascii")).hexdigest().upper()


def key_hash(key_b64: str) -> str:
    """HEX_UPPER(SHA256(base64_decode(accountKey)))."""
    import base64

    return hashlib.sha256(base64.b64decode(key_b64)).hexdigest().upper()


def logged(url: str) -> str:
    """The URL as logs keep it: the signature's value replaced with XXXXX."""
    return re.sub(r"([?&]sig=)[^&]*", r"\1XXXXX", url)


@dataclass(frozen=True)
class Request:
    """One request as the service saw it."""

    time: datetime
    operation: str
    status: int
    status_text: str  # resource logs' StatusText
    classic_status: str  # $logs request-status: SASSuccess, SASAuthorizationError…
    url: str  # as sent, with the real signature
    ip: str
    port: int
    user_agent: str
    account: str
    auth_type: str  # resource logs: SAS, AccountKey
    token_hash: str  # resource logs' AuthenticationHash
    category: str
    request_bytes: int = 0
    response_bytes: int = 0

    @property
    def object_key(self) -> str:
        path = urlsplit(self.url).path
        return f"/{self.account}{unquote(path)}"

    @property
    def stamp(self) -> str:
        return self.time.strftime("%Y-%m-%dT%H:%M:%S.%f") + "1Z"  # 7 fraction digits


def classic_line(r: Request, version: str = "2.0") -> str:
    """One ``$logs`` line, field by field."""
    values = {
        "version-number": version,
        "request-start-time": r.stamp,
        "operation-type": r.operation,
        "request-status": r.classic_status,
        "http-status-code": str(r.status),
        "end-to-end-latency-in-ms": "7",
        "server-latency-in-ms": "7",
        "authentication-type": "sas",
        "requester-account-name": "",
        "owner-account-name": r.account,
        "service-type": "blob",
        "request-url": logged(r.url),
        "requested-object-key": r.object_key,
        "request-id-header": "b4f41e7c-e01e-0044-3a2f-00aa1b000000",
        "operation-count": "0",
        "requester-ip-address": f"{r.ip}:{r.port}",
        "request-version-header": "2019-12-12",
        "request-header-size": "654",
        "request-packet-size": str(r.request_bytes),
        "response-header-size": "337",
        "response-packet-size": str(r.response_bytes),
        "request-content-length": str(r.request_bytes),
        "request-md5": "XrY7u+Ae7tCTyyK7j1rNww==",
        "server-md5": "XrY7u+Ae7tCTyyK7j1rNww==",
        "etag-identifier": '"0x8D9CEF88004E296"',
        "last-modified-time": "Monday, 03-Jan-22 20:34:54 GMT",
        "conditions-used": "",
        "user-agent-header": r.user_agent,
        "referrer-header": "",
        "client-request-id": "7c0d0a58-1ee1-4d6b-b2b6-4b3f0c9a1f7e",
    }
    names = CLASSIC_V1 + (CLASSIC_V2_EXTRA if version == "2.0" else ())
    out = []
    for name in names:
        value = values.get(name, "")
        if name in QUOTED:
            out.append('"' + html.escape(value, quote=True) + '"')
        else:
            out.append(html.escape(value, quote=False))
    return ";".join(out)


def resource_record(r: Request) -> dict[str, object]:
    """One ``insights-logs-storage*`` record (``PT1H.json`` line)."""
    return {
        "time": r.stamp,
        "resourceId": f"/subscriptions/0/resourceGroups/rg/providers/Microsoft.Storage/"
                      f"storageAccounts/{r.account}/blobServices/default",
        "category": r.category,
        "operationName": r.operation,
        "operationVersion": "2022-11-02",
        "schemaVersion": "1.0",
        "statusCode": r.status,
        "statusText": r.status_text,
        "durationMs": 7,
        "callerIpAddress": f"{r.ip}:{r.port}",
        "correlationId": "b4f41e7c-e01e-0044-3a2f-00aa1b000000",
        "identity": {"type": r.auth_type, "tokenHash": r.token_hash},
        "location": "westeurope",
        "properties": {
            "accountName": r.account,
            "userAgentHeader": r.user_agent,
            "serviceType": "blob",
            "objectKey": r.object_key,
            "requestHeaderSize": 654,
            "requestBodySize": r.request_bytes,
            "responseHeaderSize": 337,
            "responseBodySize": r.response_bytes,
            "tlsVersion": "TLS 1.2",
        },
        "uri": logged(r.url).replace("core.windows.net/", "core.windows.net:443/", 1),
        "protocol": "HTTPS",
        "resourceType": "Microsoft.Storage/storageAccounts/blobServices",
    }


def resource_line(r: Request) -> str:
    return json.dumps(resource_record(r), separators=(",", ":"))


def analytics_row(r: Request) -> dict[str, object]:
    """One ``StorageBlobLogs`` row as Log Analytics exports it."""
    return {
        "TimeGenerated [UTC]": r.stamp,
        "AccountName": r.account,
        "Location": "westeurope",
        "Protocol": "HTTPS",
        "OperationName": r.operation,
        "AuthenticationType": r.auth_type,
        "StatusCode": str(r.status),
        "StatusText": r.status_text,
        "Uri": logged(r.url),
        "CallerIpAddress": f"{r.ip}:{r.port}",
        "AuthenticationHash": r.token_hash,
        "UserAgentHeader": r.user_agent,
        "ObjectKey": r.object_key,
        "RequestBodySize": str(r.request_bytes),
        "ResponseBodySize": str(r.response_bytes),
        "Category": r.category,
        "Type": "StorageBlobLogs",
    }


def analytics_csv(requests: list[Request]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(ANALYTICS_COLUMNS)
    for r in requests:
        row = analytics_row(r)
        w.writerow([row.get(c, "") for c in ANALYTICS_COLUMNS])
    return buf.getvalue()


def analytics_json(requests: list[Request]) -> str:
    """The JSON export: an array of row objects, keys without the ``[UTC]`` suffix."""
    rows = []
    for r in requests:
        row = analytics_row(r)
        row["TimeGenerated"] = row.pop("TimeGenerated [UTC]")
        rows.append(row)
    return json.dumps(rows, indent=2)
