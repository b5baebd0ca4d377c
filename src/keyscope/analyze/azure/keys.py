"""Azure Storage account keys and connection strings."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from keyscope.analyze.azure.hosts import DEV_ACCOUNT, NO_LOCATION, AzureLocation, parse_location
from keyscope.errors import ParseError

DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_KEY = re.compile(r"^[A-Za-z0-9+/]{86}==$")
_IDENTIFIABLE = re.compile(r"^[A-Za-z0-9+/]{76}\+ASt[A-Za-z0-9+/]{5}[AQgw]==$")
_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")

CONNSTR_KEYS = {
    "defaultendpointsprotocol",
    "accountname",
    "accountkey",
    "endpointsuffix",
    "sharedaccesssignature",
    "usedevelopmentstorage",
    "developmentstorageproxyuri",
    "blobendpoint",
    "queueendpoint",
    "tableendpoint",
    "fileendpoint",
    "dfsendpoint",
    "blobsecondaryendpoint",
    "queuesecondaryendpoint",
    "tablesecondaryendpoint",
    "filesecondaryendpoint",
}
_CONNSTR_HINT = re.compile(
    r"(?i)\b(?:AccountKey|SharedAccessSignature|UseDevelopmentStorage|DefaultEndpointsProtocol|"
    r"(?:Blob|Queue|Table|File)Endpoint)\s*="
)


@dataclass(frozen=True)
class AzureAccountKey:
    """A Shared Key: full control of the storage account until it is rotated."""

    key: str
    account: str | None
    location: AzureLocation = NO_LOCATION
    public_dev_key: bool = False
    identifiable: bool = False


@dataclass(frozen=True)
class ConnectionString:
    """A parsed storage connection string (keys are case-insensitive)."""

    settings: dict[str, str]
    account: str | None
    account_key: str | None
    sas: str | None
    development_storage: bool
    endpoints: dict[str, str] = field(default_factory=dict)

    def location(self, service: str = "blob") -> AzureLocation:
        """Where the credential points: an explicit endpoint, or account + suffix."""
        endpoint = self.endpoints.get(service) or next(iter(self.endpoints.values()), None)
        if endpoint:
            try:
                parts = urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
            except ValueError:
                raise ParseError(
                    f"connection string: endpoint {endpoint[:40]!r} is not a URL"
                ) from None
            loc = parse_location(parts.scheme, parts.netloc, parts.path)
            if loc.account is None and self.account:
                loc = _with_account(loc, self.account)
            return loc
        if self.account:
            scheme = self.settings.get("defaultendpointsprotocol", "https")
            suffix = self.settings.get("endpointsuffix", "core.windows.net")
            return parse_location(scheme, f"{self.account}.{service}.{suffix}", "")
        return NO_LOCATION


def parse_account_key(key: str, account: str | None = None) -> AzureAccountKey:
    """Validate an account key: standard Base64 of 64 bytes (88 characters ending ``==``)."""
    key = key.strip()
    if not _KEY.match(key):
        raise ParseError(
            f"account key: expected 88 Base64 characters ending in '==' (got {len(key)} characters)"
        )
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise ParseError("account key: not valid Base64") from None
    if len(raw) != 64:
        raise ParseError(f"account key: decodes to {len(raw)} bytes, expected 64")
    if account is not None and not _ACCOUNT_NAME.match(account):
        raise ParseError(f"account name {account!r}: expected 3-24 lower-case letters and digits")
    dev = key == DEV_KEY
    loc = NO_LOCATION
    if account:
        loc = parse_location("https", f"{account}.blob.core.windows.net", "")
    return AzureAccountKey(
        key=key,
        account=account or (DEV_ACCOUNT if dev else None),
        location=loc,
        public_dev_key=dev,
        identifiable=bool(_IDENTIFIABLE.match(key)),
    )


def looks_like_connection_string(text: str) -> bool:
    return bool(_CONNSTR_HINT.search(text))


_SETTING_NAME = re.compile(r"[A-Za-z][A-Za-z ]{0,31}")


def _quoted(name: str) -> str:
    """A setting name as an error may quote it: scanned text that is no name (it may
    hold a piece of a secret, as a URL run into a connection string does) is not."""
    name = name.strip()
    return repr(name) if _SETTING_NAME.fullmatch(name) else "(a part that is no setting name)"


def parse_connection_string(text: str) -> ConnectionString:
    """Parse ``Key=Value;…`` in any key order and case, trailing ``;``, split over lines."""
    flat = _join_lines(text).strip().strip("\"'")
    settings: dict[str, str] = {}
    for part in flat.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise ParseError(f"connection string: {_quoted(name)} has no '='")
        setting = name.strip().lower()
        if setting not in CONNSTR_KEYS:
            raise ParseError(f"connection string: unknown setting {_quoted(name)}")
        settings[setting] = value.strip()
    if not settings:
        raise ParseError("connection string: empty")
    dev = settings.get("usedevelopmentstorage", "").lower() == "true"
    endpoints = {
        svc: settings[f"{svc}endpoint"]
        for svc in ("blob", "queue", "table", "file", "dfs")
        if f"{svc}endpoint" in settings
    }
    account = settings.get("accountname")
    key: str | None = settings.get("accountkey")
    sas = settings.get("sharedaccesssignature")
    if dev:
        account, key = DEV_ACCOUNT, DEV_KEY
    if not (key or sas or dev):
        raise ParseError(
            "connection string: it holds no credential (no AccountKey, SharedAccessSignature "
            "or UseDevelopmentStorage=true)"
        )
    if key and not account and not endpoints:
        raise ParseError("connection string: AccountKey without AccountName")
    return ConnectionString(
        settings=settings,
        account=account,
        account_key=key,
        sas=sas,
        development_storage=dev,
        endpoints=endpoints,
    )


def _join_lines(text: str) -> str:
    """A line that starts a new setting is a new setting; any other line break is a
    value wrapped in the middle (a pasted key) and joins without a separator."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    out = lines[0] if lines else ""
    for line in lines[1:]:
        name = line.split("=", 1)[0].strip().lower()
        starts_setting = "=" in line and name in CONNSTR_KEYS
        out += (";" if starts_setting and not out.endswith(";") else "") + line
    return out


def _with_account(loc: AzureLocation, account: str) -> AzureLocation:
    from dataclasses import replace

    return replace(loc, account=account)
