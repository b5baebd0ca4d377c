"""Checks on where a probe may go, made before anything is sent: the URL's own form
(scheme, host name, port) and the internal destinations the user allowed.

A scanned file chooses the URL, so every part of it is hostile until checked: a port
out of range, a host name that is not a DNS name, an address inside the network.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

# One DNS label: letters, digits and inner hyphens (RFC 1123); underscores too, as
# some private names have them. Non-ASCII names are refused: Azure has none.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_HOST_PORT = re.compile(r"(?P<host>\[[^\]]*\]|[^:]+)(?::(?P<port>[0-9]{1,5}))?")


@dataclass(frozen=True)
class Destination:
    """Where a checked URL points."""

    scheme: str  # https | http
    host: str  # as in the URL, without brackets
    port: int
    parts: SplitResult


@dataclass(frozen=True)
class InternalHost:
    """One entry of ``--allow-internal=HOST[:PORT],…``: a name or an address, and
    the one port allowed there (every port when None)."""

    host: str  # lower case, without a trailing dot; an IP address in its standard form
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def destination(url: str) -> Destination | str:
    """The URL's scheme, host and port, or why no probe may be sent to it."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "the URL is malformed (its host or port cannot be read)"
    if scheme not in ("https", "http") or not host:
        return "not an http(s) URL"
    if port is None:
        port = 443 if scheme == "https" else 80
    elif port == 0:
        return "the URL's port is not a number from 1 to 65535"
    if not valid_host(host):
        return "the URL's host is not a valid host name or IP address"
    return Destination(scheme, host, port, parts)


def valid_host(host: str) -> bool:
    """An IP address, or an ASCII DNS name of at most 253 characters."""
    if ip_of(host) is not None:
        return True
    name = host[:-1] if host.endswith(".") else host
    return 0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split("."))


def parse_internal_hosts(text: str) -> tuple[InternalHost, ...]:
    """``HOST[:PORT],…`` (IPv6 in brackets when a port follows) → entries; ValueError
    names the entry that is not one."""
    out: list[InternalHost] = []
    for item in (x.strip() for x in text.split(",")):
        ip = ip_of(item)
        if ip is not None:  # a bare address, IPv6 included
            out.append(InternalHost(str(ip)))
            continue
        m = _HOST_PORT.fullmatch(item)
        host = m.group("host").strip("[]") if m else ""
        port = int(m.group("port")) if m and m.group("port") else None
        if not m or not valid_host(host) or port == 0 or (port or 0) > 65535:
            raise ValueError(f"{item!r} is not HOST or HOST:PORT (a port from 1 to 65535)")
        found = ip_of(host)
        out.append(InternalHost(str(found) if found else host.lower().rstrip("."), port))
    return tuple(out)


def allowed_internal(everything: bool, lists: Sequence[str]) -> bool | tuple[InternalHost, ...]:
    """The value of ``--allow-internal`` (``everything``) and of each
    ``--allow-internal=HOST[:PORT],…`` (``lists``); ValueError when both are given or an
    entry is malformed."""
    if not lists:
        return everything
    if everything:
        raise ValueError("give it bare or with HOST[:PORT],..., not both")
    return tuple(h for text in lists for h in parse_internal_hosts(text))


def internal_allowed(
    allowed: bool | tuple[InternalHost, ...], host: str, port: int, address: str
) -> bool:
    """May a probe for ``host:port`` go to the internal ``address``? ``True`` allows
    every internal destination; entries allow a host name or an address (any port, or
    the one given)."""
    if allowed is True or allowed is False:
        return allowed
    name = host.lower().rstrip(".")
    ip = ip_of(address)
    at = str(ip) if ip is not None else address
    return any(e.port in (None, port) and e.host in (name, at) for e in allowed)


def ip_of(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``text`` is written as (IPv6 zone dropped, IPv4-mapped unwrapped)."""
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0] if ":" in text else text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
