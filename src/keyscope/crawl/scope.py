"""Which URLs a crawl may request: ``same-site`` (the start's host or its registrable
domain's other hosts), ``same-origin`` (scheme, host and port) or ``prefix`` (URLs
under the start URL's folder)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit

from keyscope.crawl.options import SCOPES
from keyscope.verify.guard import ip_of

# second-level labels under which a registrable domain has three labels (co.uk, com.au …);
# an approximation of the Public Suffix List, which keyscope does not ship
_SHARED_SECOND = {"co", "com", "net", "org", "gov", "edu", "ac", "ne", "or", "go"}


def normalized(url: str, base: str | None = None) -> str | None:
    """``url`` resolved against ``base``, without its fragment, with a lower-case
    scheme and host and no default port; None when it is no http(s) URL."""
    try:
        full = urljoin(base, url.strip()) if base else url.strip()
        full = urldefrag(full)[0]
        parts = urlsplit(full)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            return None
        host = parts.hostname.lower()
        if ":" in host:
            host = f"[{host}]"
        port = parts.port
    except ValueError:
        return None
    netloc = host if port in (None, 80 if scheme == "http" else 443) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a normalized URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def site(host: str) -> str:
    """The registrable domain of ``host`` as keyscope approximates it (the last two
    labels, three under ``co.uk``-like suffixes); an IP address or a one-label name is
    its own site."""
    host = host.lower().rstrip(".")
    labels = host.split(".")
    if ip_of(host) is not None or len(labels) < 2:
        return host
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SHARED_SECOND else 2
    return ".".join(labels[-keep:])


class Scope:
    """The URLs a crawl started at ``starts`` may request."""

    def __init__(self, kind: str, starts: Sequence[str]) -> None:
        if kind not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        self.kind = kind
        self.starts = list(starts)
        self._sites = {site(urlsplit(u).hostname or "") for u in starts}
        self._origins = {origin(u) for u in starts}
        self._prefixes = [u[: u.rfind("/") + 1] for u in starts]

    def admits(self, url: str) -> bool:
        if self.kind == "same-origin":
            return origin(url) in self._origins
        if self.kind == "prefix":
            return any(url.startswith(p) for p in self._prefixes)
        return site(urlsplit(url).hostname or "") in self._sites
