"""The only way keyscope talks to the network: a guarded, rate-limited, audited client.

Safety rails, in the order they apply to every request:

0. Before anything leaves the machine, the request is written to the audit log; if
   it cannot be, the request is refused (``audit.py``).
1. HTTPS only; plain HTTP only to a loopback address (a local storage emulator). A
   URL whose host is not a host name or IP address, or whose port is out of range,
   is refused (``guard.py``).
2. The host is resolved once; if any address is private, loopback, link-local or
   otherwise not public, the request is refused unless ``allow_internal`` allows it:
   ``True`` for every internal destination, or a list of HOST[:PORT] (a scanned file
   must not be able to make keyscope probe an internal service). The connection
   goes to the address that was checked, so DNS cannot change its answer in between.
3. No redirects are followed, no proxy is used, cookies are never kept.
4. At most ``concurrency`` requests at once, at least ``per_host_interval``
   seconds between two requests to one host, and at most ``max_per_host`` requests
   to one host in a run.
5. Every request, sent or refused, gets a result line in the audit log (JSON lines)
   with its URL redacted; the Authorization header is never written anywhere.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import SplitResult

from keyscope import __version__
from keyscope.verify.audit import AuditLog, AuditLogError
from keyscope.verify.guard import InternalHost, destination, internal_allowed, ip_of

MAX_BODY = 64 * 1024
USER_AGENT = f"keyscope/{__version__} (read-only credential check)"

Resolver = Callable[[str, int], list[str]]


@dataclass(frozen=True)
class VerifyOptions:
    """How live checks are sent. Nothing is sent unless the user asked for it."""

    deep: bool = False  # also list / read properties where the token allows it
    # private, loopback and link-local destinations: True allows all, a tuple only those
    allow_internal: bool | tuple[InternalHost, ...] = False
    timeout: float = 10.0  # seconds, per connect and per read
    per_host_interval: float = 1.0  # seconds between two requests to one host
    concurrency: int = 4  # requests in flight at once, over all hosts
    max_per_host: int = 200  # requests to one host per run: a file full of URLs for one
    # host must not turn keyscope into a flood (the rest are refused, and logged)
    audit_log: Path | None = None  # JSON lines; None: no log file
    # ``--verify-endpoint NAME=URL``: where the requests of a named endpoint go instead
    # of the service's own (a credential without a URL: an AWS key pair, a token). The
    # user chooses it, never a scanned file; every rail above still applies.
    endpoints: tuple[tuple[str, str], ...] = ()
    # plain HTTP to public hosts too (the crawler reads public pages; it sends no secret)
    plain_http: bool = False


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
    # (name, default base URL) of a service endpoint ``--verify-endpoint`` may replace;
    # None for a URL the credential carries.
    endpoint: tuple[str, str] | None = None
    # Bytes of a successful answer read at most (a download probe keeps none of the
    # object); None: up to MAX_BODY. Error answers are read up to MAX_BODY.
    keep: int | None = None
    # Sent only when the probe before it was refused for what the credential may not
    # say (the signed method); its answer decides when it was accepted.
    fallback: bool = False
    # Printed with the request in the notice before anything is sent (who logs it).
    notice: str = ""
    # A body: an alert's JSON (notify/), or a form only for a read-only call that its
    # API takes as a POST (sts:GetCallerIdentity); never data of the credential's owner.
    body: bytes = b""
    max_body: int = MAX_BODY  # bytes of the answer read (the crawler reads pages)


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes  # at most MAX_BODY bytes


def aimed(request: Request, endpoints: tuple[tuple[str, str], ...]) -> Request:
    """The request as it will be sent: a named endpoint replaced by the user's
    ``--verify-endpoint`` URL (its path kept below the new base)."""
    if request.endpoint is None:
        return request
    name, default = request.endpoint
    base = dict(endpoints).get(name)
    if base is None or not request.url.startswith(default):
        return request
    base = base.rstrip("/")
    return replace(
        request,
        url=base + request.url[len(default) :],
        shown_url=base + request.shown_url[len(default) :]
        if request.shown_url.startswith(default)
        else request.shown_url,
    )


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
    ip = ip_of(address)
    return ip is not None and ip.is_global and not ip.is_multicast


PLAIN_HTTP = (
    "plain HTTP is sent only to a local emulator on a loopback address; "
    "this credential's endpoint is not one"
)


def loopback_name(host: str) -> bool:
    """A name or literal that can only mean this machine (checked again once resolved)."""
    return host == "localhost" or host.endswith(".localhost") or is_loopback(host)


def is_loopback(address: str) -> bool:
    ip = ip_of(address)
    return ip is not None and ip.is_loopback


class Transport:
    """Sends probes with every safety rail; thread-safe."""

    def __init__(self, options: VerifyOptions, resolver: Resolver = system_resolver) -> None:
        self.options = options
        self.resolver = resolver
        self._slots = threading.BoundedSemaphore(max(1, options.concurrency))
        self._lock = threading.Lock()
        self._next_at: dict[str, float] = {}
        self._per_host: dict[str, int] = {}
        self._audit = AuditLog(options.audit_log) if options.audit_log else None
        self.sent = 0

    def send(self, request: Request, credential: str = "") -> Response:
        """Send one request, or raise NotSent. ``credential`` (a fingerprint) is logged."""
        request = aimed(request, self.options.endpoints)
        fields = {
            "credential": credential,
            "probe": request.probe,
            "method": request.method,
            "url": request.shown_url,
        }
        rid = None
        if self._audit is not None:
            try:
                rid = self._audit.request(fields)
            except AuditLogError as exc:
                raise NotSent("refused-by-keyscope", f"{exc}: nothing is sent unrecorded") from None
        try:
            response = self._send(request)
        except NotSent as exc:
            sent = exc.status != "refused-by-keyscope"
            self._result(rid, fields, sent, exc.status, None, exc.detail)
            raise
        self._result(rid, fields, True, "answered", response.status, None)
        return response

    def _result(
        self,
        rid: str | None,
        fields: dict[str, str],
        sent: bool,
        outcome: str,
        http_status: int | None,
        detail: str | None,
    ) -> None:
        if self._audit is None or rid is None:
            return
        result = {"sent": sent, "outcome": outcome, "httpStatus": http_status, "detail": detail}
        with contextlib.suppress(AuditLogError):  # the request line is on record, and
            self._audit.result(rid, fields | result)  # the outcome is in the report

    def _send(self, request: Request) -> Response:
        where = destination(request.url)
        if isinstance(where, str):
            raise NotSent("refused-by-keyscope", where)
        scheme, host, port, parts = where.scheme, where.host, where.port, where.parts
        # plain HTTP only to loopback, unless the crawler reads public pages
        plain = scheme == "http" and not self.options.plain_http
        addresses = self.addresses(host, port, plain=plain)
        self._wait_turn(host)
        with self._slots:
            return self._exchange(request, scheme, host, port, addresses[0], parts)

    def addresses(self, host: str, port: int, *, plain: bool) -> list[str]:
        """Where ``host`` may be reached: resolved once, every address checked against
        the internal-address rail, and ``plain`` (unencrypted) traffic only to
        loopback; NotSent otherwise. Connect to the first (also for SMTP, notify/)."""
        if plain and not loopback_name(host):
            raise NotSent("refused-by-keyscope", PLAIN_HTTP)
        addresses = self.resolver(host, port)
        if not addresses:
            raise NotSent("unreachable", f"{host} has no address")
        allowed = self.options.allow_internal
        internal = [
            a
            for a in addresses
            if not is_public(a) and not internal_allowed(allowed, host, port, a)
        ]
        if internal:
            hint = "--allow-internal" if allowed is False else "--allow-internal=HOST:PORT"
            raise NotSent(
                "refused-by-keyscope",
                f"{host} resolves to {internal[0]}, a private, loopback or link-local address; "
                f"keyscope does not probe internal addresses without {hint}",
            )
        if plain and not all(is_loopback(a) for a in addresses):
            raise NotSent("refused-by-keyscope", PLAIN_HTTP)
        return addresses

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
                conn.request(request.method, target, body=request.body or None, headers=headers)
                resp = conn.getresponse()
                limit = request.max_body
                if request.keep is not None and 200 <= resp.status < 300:
                    limit = min(limit, request.keep)
                body = b""
                if request.method != "HEAD" and limit > 0:
                    body = _read_body(resp, 3 * timeout, limit)
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


def _read_body(resp: http.client.HTTPResponse, seconds: float, limit: int = MAX_BODY) -> bytes:
    """At most ``limit`` bytes, within ``seconds`` in all: a server that trickles its
    answer byte by byte cannot hold a check for long."""
    deadline = time.monotonic() + seconds
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        if time.monotonic() > deadline:
            raise TimeoutError
        chunk = resp.read1(min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
