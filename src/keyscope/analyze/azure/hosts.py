"""Azure Storage endpoints: which account, service and cloud a URL points at."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import unquote

CLOUDS: dict[str, str] = {
    "core.windows.net": "AzureCloud (public)",
    "core.usgovcloudapi.net": "AzureUSGovernment",
    "core.chinacloudapi.cn": "AzureChinaCloud (21Vianet)",
    "core.cloudapi.de": "AzureGermanCloud (closed 2021)",
    "storage.azure.net": "AzureCloud (public, Azure DNS zone endpoint)",
}

SERVICE_NAMES: dict[str, str] = {
    "blob": "blob",
    "dfs": "dfs",
    "file": "file",
    "queue": "queue",
    "table": "table",
    "web": "web",
}

# Emulator ports (Azurite and the legacy Storage Emulator).
EMULATOR_PORTS: dict[int, str] = {10000: "blob", 10001: "queue", 10002: "table"}
LOOPBACK_HOSTS = frozenset(
    {"127.0.0.1", "localhost", "[::1]", "::1", "host.docker.internal", "azurite"}
)
DEV_ACCOUNT = "devstoreaccount1"
_DIGITS = re.compile(r"^[0-9]{1,5}$")

_ACCOUNT = r"(?P<account>[a-z0-9]{3,24})(?P<suffix>-secondary|-ipv6|-dualstack)?"
_PUBLIC_HOST = re.compile(
    _ACCOUNT
    + r"\.(?:z\d{1,2}\.)?(?P<service>blob|dfs|file|queue|table|web)(?:\.z\d{1,2})?\."
    + r"(?P<suffix_domain>core\.windows\.net|core\.usgovcloudapi\.net|core\.chinacloudapi\.cn"
    + r"|core\.cloudapi\.de)$"
)
_DNS_ZONE_HOST = re.compile(
    _ACCOUNT
    + r"\.z\d{2}\.(?P<service>blob|dfs|file|queue|table|web)"
    + r"\.(?P<suffix_domain>storage\.azure\.net)$"
)
_LOCALHOST_STYLE = re.compile(_ACCOUNT + r"\.(?P<service>blob|dfs|file|queue|table)\.localhost$")


@dataclass(frozen=True)
class AzureLocation:
    """Where a SAS or key points: parsed from a URL or an endpoint.

    ``account`` is ``None`` when the host hides it (custom domain, CDN) or no URL
    was given. ``path_segments`` are URL-decoded and exclude the account segment of
    path-style (emulator) URLs.
    """

    host: str | None
    scheme: str | None
    account: str | None
    service: str | None
    cloud: str | None
    endpoint_suffix: str | None
    emulator: bool
    secondary: bool
    custom_domain: bool
    path_segments: tuple[str, ...]
    # The token was found without this URL; the URL came from a nearby line.
    from_context: bool = False

    @property
    def endpoint(self) -> str | None:
        if self.host is None:
            return None
        return f"{self.scheme or 'https'}://{self.host}"


def parse_location(scheme: str | None, netloc: str, path: str) -> AzureLocation:
    """Classify a URL's host and path. Never raises on odd input."""
    netloc = netloc.rsplit("@", 1)[-1]  # drop any userinfo
    host = netloc.lower()
    hostname, port = _split_port(host)
    segments = tuple(unquote(s) for s in path.split("/") if s != "")

    if hostname in LOOPBACK_HOSTS or _is_ip(hostname):
        # Path-style: the first path segment is the account.
        account = segments[0] if segments else None
        secondary = bool(account and account.endswith("-secondary"))
        if account and secondary:
            account = account[: -len("-secondary")]
        service = EMULATOR_PORTS.get(port) if port is not None else None
        emulator = hostname in LOOPBACK_HOSTS or account == DEV_ACCOUNT
        return AzureLocation(
            host=netloc,
            scheme=scheme,
            account=account,
            service=service,
            cloud="emulator" if emulator else "path-style endpoint",
            endpoint_suffix=None,
            emulator=emulator,
            secondary=secondary,
            custom_domain=False,
            path_segments=segments[1:],
        )

    for pattern in (_PUBLIC_HOST, _DNS_ZONE_HOST, _LOCALHOST_STYLE):
        m = pattern.match(hostname)
        if m:
            suffix_domain = m.groupdict().get("suffix_domain")
            emulator = pattern is _LOCALHOST_STYLE
            return AzureLocation(
                host=netloc,
                scheme=scheme,
                account=m["account"],
                service=SERVICE_NAMES[m["service"]],
                cloud="emulator" if emulator else CLOUDS.get(suffix_domain or ""),
                endpoint_suffix=suffix_domain,
                emulator=emulator,
                secondary=m["suffix"] == "-secondary",
                custom_domain=False,
                path_segments=segments,
            )

    # Any other host: a custom domain or CDN in front of the account, which it hides.
    return replace(
        NO_LOCATION,
        host=netloc or None,
        scheme=scheme,
        custom_domain=bool(netloc),
        path_segments=segments,
    )


NO_LOCATION = AzureLocation(
    host=None,
    scheme=None,
    account=None,
    service=None,
    cloud=None,
    endpoint_suffix=None,
    emulator=False,
    secondary=False,
    custom_domain=False,
    path_segments=(),
)


def _split_port(host: str) -> tuple[str, int | None]:
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1 :]
        port = int(rest[1:]) if rest.startswith(":") and _DIGITS.match(rest[1:]) else None
        return host[: end + 1], port
    if ":" in host:
        name, _, p = host.rpartition(":")
        return name, int(p) if _DIGITS.match(p) else None
    return host, None


def _is_ip(hostname: str) -> bool:
    return bool(re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", hostname))
