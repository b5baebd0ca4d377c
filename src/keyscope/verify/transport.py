"""The only way keyscope talks to the network: a guarded, rate-limited, audited client.

Safety rails, in the order they apply to every request:

1. HTTPS only; plain HTTP only to a loopback address (a local storage emulator).
2. The host is resolved once; if any address is private, loopback, link-local or
   otherwise not public, the request is refused unless ``allow_internal`` (a scanned
   file must not be able to make keyscope probe an internal service). The connection
   goes to the address that was checked, so DNS cannot change its answer in between.
3. No redirects are followed, no proxy is used, cookies are never kept.
4. At most ``concurrency`` requests at once, at least ``per_host_interval``
   seconds between two requests to one host, and at most ``max_per_host`` requests
   to one host in a run.
5. Every request, sent or refused, is appended to the audit log (JSON lines) with
   its URL redacted; the Authorization header is never written anywhere.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from keyscope import __version__

MAX_BODY = 64 * 1024
USER_AGENT = f"keyscope/{__version__} (read-only credential check)"

Resolver = Callable[[str, int], list[str]]


@dataclass(frozen=True)
class VerifyOptions:
    """How live checks are sent. Nothing is sent unless the user asked for it."""

    deep: bool = False  # also list / read properties where the token allows it
    allow_internal: bool = False  # allow private, loopback and link-local destinations
    timeout: float = 10.0  # seconds, per connect and per read
    per_host_interval: float = 1.0  # seconds between two requests to one host
    concurrency: int = 4  # requests in flight at once, over all hosts
    max_per_host: int = 200  # requests to one host per run: a file full of URLs for one
    # host must not turn keyscope into a flood (the rest are refused, and logged)
    audit_log: Path | None = None  # JSON lines; None: no log file


@dataclass(frozen=True)
class Request:
    """One probe as it will be sent. ``url`` holds the secret; ``shown_url`` never does."""

    probe: str
    method: str
    url: str
    shown_url: str
    headers: tuple[tuple[str, str], ...] = ()
    # Called right before sending, for signatures that include the time (Shared Key).
    authorize: Callable[[Request, str], dict[str, str]] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes  # at most MAX_BODY bytes


class NotSent(Exception):
    """The request was not answered: refused by a rail, host gone, or unreachable."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status  # refused-by-keyscope | account-not-found | unreachable
        self.detail = detail


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (NotSent for NXDOMAIN and lookup failures)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
            raise NotSent("account-not-found", f"{host} does not resolve (NXDOMAIN)") from None
        raise NotSent("unreachable", f"DNS lookup of {host} failed: {exc.strerror}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: str) -> bool:
    """A globally routable unicast address (not private, loopback, link-local, …)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


PLAIN_HTTP = (
    "plain HTTP is sent only to a local emulator on a loopback address; "
    "this credential's endpoint is not one"
)


def loopback_name(host: str) -> bool:
    """A name or literal that can only mean this machine (checked again once resolved)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return is_loopback(host)
    except ValueError:
        return False


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


class Transport:
    """Sends probes with every safety rail; thread-safe."""

    def __init__(self, options: VerifyOptions, resolver: Resolver = system_resolver) -> None:
        self.options = options
        self.resolver = resolver
        self._slots = threading.BoundedSemaphore(max(1, options.concurrency))
        self._lock = threading.Lock()
        self._next_at: dict[str, float] = {}
        self._per_host: dict[str, int] = {}
        self._log_lock = threading.Lock()
        self.sent = 0

    def send(self, request: Request, credential: str = "") -> Response:
        """Send one request, or raise NotSent. ``credential`` (a fingerprint) is logged."""
        try:
            response = self._send(request)
        except NotSent as exc:
            self._audit(
                request,
                credential,
                sent=exc.status != "refused-by-keyscope",
                outcome=exc.status,
                http_status=None,
                detail=exc.detail,
            )
            raise
        self._audit(
            request,
            credential,
            sent=True,
            outcome="answered",
            http_status=response.status,
            detail=None,
        )
        return response

    def _send(self, request: Request) -> Response:
        parts = urlsplit(request.url)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        if scheme not in ("https", "http") or not host:
            raise NotSent("refused-by-keyscope", f"not an http(s) URL: {request.shown_url}")
        port = parts.port or (443 if scheme == "https" else 80)
        if scheme == "http" and not loopback_name(host):
            raise NotSent("refused-by-keyscope", PLAIN_HTTP)
        addresses = self.resolver(host, port)
        if not addresses:
            raise NotSent("unreachable", f"{host} has no address")
        internal = [a for a in addresses if not is_public(a)]
        if internal and not self.options.allow_internal:
            raise NotSent(
                "refused-by-keyscope",
                f"{host} resolves to {internal[0]}, a private, loopback or link-local address; "
                "keyscope does not probe internal addresses without --allow-internal",
            )
        if scheme == "http" and not all(is_loopback(a) for a in addresses):
            raise NotSent("refused-by-keyscope", PLAIN_HTTP)
        self._wait_turn(host)
        with self._slots:
            return self._exchange(request, scheme, host, port, addresses[0], parts)

    def _wait_turn(self, host: str) -> None:
        interval = self.options.per_host_interval
        with self._lock:
            count = self._per_host.get(host, 0) + 1
            if count > self.options.max_per_host:
                raise NotSent(
                    "refused-by-keyscope",
                    f"already {self.options.max_per_host} requests to {host} in this run",
                )
            self._per_host[host] = count
            now = time.monotonic()
            at = max(now, self._next_at.get(host, now))
            self._next_at[host] = at + interval
        if at > now:
            time.sleep(at - now)

    def _exchange(
        self,
        request: Request,
        scheme: str,
        host: str,
        port: int,
        address: str,
        parts: SplitResult,
    ) -> Response:
        timeout = self.options.timeout
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        headers = {"User-Agent": USER_AGENT, "Accept": "*/*", **dict(request.headers)}
        if request.authorize is not None:
            headers.update(request.authorize(request, target))
        conn: http.client.HTTPConnection
        try:
            sock = socket.create_connection((address, port), timeout=timeout)
            if scheme == "https":
                context = ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=host)
                conn = http.client.HTTPSConnection(host, port, timeout=timeout)
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            conn.sock = sock
            try:
                conn.request(request.method, target, headers=headers)
                resp = conn.getresponse()
                body = _read_body(resp, 3 * timeout) if request.method != "HEAD" else b""
                self.sent += 1
                return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
            finally:
                conn.close()
        except ssl.SSLError as exc:
            raise NotSent("unreachable", f"TLS failed with {host}: {exc.reason}") from None
        except TimeoutError:
            raise NotSent("unreachable", f"{host} did not answer within {timeout:g} s") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise NotSent("unreachable", f"{host}:{port}: {reason}") from None
        except http.client.HTTPException as exc:
            # Only the exception's name: its text may quote the request line, secret and all.
            raise NotSent("unreachable", f"{host}:{port}: {type(exc).__name__}") from None

    def _audit(
        self,
        request: Request,
        credential: str,
        *,
        sent: bool,
        outcome: str,
        http_status: int | None,
        detail: str | None,
    ) -> None:
        path = self.options.audit_log
        if path is None:
            return
        record = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "credential": credential,
            "probe": request.probe,
            "method": request.method,
            "url": request.shown_url,
            "sent": sent,
            "outcome": outcome,
            "httpStatus": http_status,
            "detail": detail,
        }
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._log_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(line)


def _read_body(resp: http.client.HTTPResponse, seconds: float) -> bytes:
    """At most MAX_BODY bytes, within ``seconds`` in all: a server that trickles its
    answer byte by byte cannot hold a check for long."""
    deadline = time.monotonic() + seconds
    chunks: list[bytes] = []
    size = 0
    while size < MAX_BODY:
        if time.monotonic() > deadline:
            raise TimeoutError
        chunk = resp.read1(min(8192, MAX_BODY - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
