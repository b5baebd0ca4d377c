"""Real receivers on loopback for the alert tests: an HTTP server (``http.server`` in a
thread) that records every request and can be told to fail, stall or answer 500, and
an SMTP server (``aiosmtpd``) with STARTTLS and AUTH, its certificate made here with
``cryptography``."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from keyscope.notify.payload import alert_payload
from keyscope.owners.assign import OwnerResolver, assign_owners
from keyscope.owners.config import OwnersMap
from keyscope.scan import ScanOptions, scan
from tests.sdk import NOW, incident_url, new_key


def leaked_alert(folder: Path) -> tuple[dict[str, Any], list[bytes]]:
    """The alert for a real scan of a file holding an SDK-signed SAS URL and a
    connection string, and every form of their secrets that must never be sent."""
    key = new_key()
    url = incident_url("alertsacct", key)
    (folder / "settings.py").write_text(
        f'URL = "{url}"\n'
        f'CONN = "DefaultEndpointsProtocol=https;AccountName=alertsacct;AccountKey={key};'
        'EndpointSuffix=core.windows.net"\n'
    )
    result = scan([str(folder)], ScanOptions(jobs=1, now=NOW))
    assign_owners(result, OwnerResolver(OwnersMap(), [str(folder)]))
    sas = next(f for f in result.findings if f.explanation.access.kind == "account-sas")
    payload = alert_payload(sas, "new", scan_id="scan-1", first_seen=NOW)
    sig = unquote(url.split("sig=", 1)[1].split("&", 1)[0])
    forms = [sig, quote(sig, safe=""), key, quote(key, safe=""), key[:20], sig[:20]]
    return payload, [f.encode() for f in forms]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """``mode``: ok (200 ``ok``), 500, 429 (with Retry-After), 400 (``invalid_blocks``),
    302 (a redirect), stall (answers after ``stall`` seconds)."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    mode: str = "ok"
    stall: float = 3.0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def start_http() -> HttpReceiver:
    holder: dict[str, HttpReceiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = holder["r"]
            size = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(size)
            receiver.requests.append(
                Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            mode = receiver.mode
            if mode == "stall":
                time.sleep(receiver.stall)
            status, answer, extra = {
                "ok": (200, b"ok", {}),
                "stall": (200, b"ok", {}),
                "500": (500, b"internal error", {}),
                "429": (429, b"rate_limited", {"Retry-After": "7"}),
                "400": (400, b"invalid_blocks", {}),
                "302": (302, b"", {"Location": "http://127.0.0.1:1/elsewhere"}),
            }[mode]
            try:
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the client gave up (stall)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = holder["r"] = HttpReceiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


def http_receiver() -> Iterator[HttpReceiver]:
    receiver = start_http()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keyscope test SMTP")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class SmtpReceiver:
    port: int
    cert: Path
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def smtp_receiver(
    folder: Path, user: str, password: str, *, starttls: bool = True
) -> Iterator[SmtpReceiver]:
    """aiosmtpd on loopback: STARTTLS required (unless ``starttls`` is False: then not
    offered at all), AUTH required after it, every accepted message recorded."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = self_signed(folder)
    receiver = SmtpReceiver(free_port(), cert)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            receiver.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                      bytes(envelope.content)))
            return "250 Message accepted"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == user.encode() and (
            data.password == password.encode())
        if ok:
            receiver.logins.append(user)
        return AuthResult(success=ok, handled=False)

    kwargs: dict[str, Any] = {}
    if starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        kwargs = {"tls_context": context, "require_starttls": True}
    controller = Controller(
        Handler(), hostname="127.0.0.1", port=receiver.port, authenticator=authenticator,
        auth_required=True, auth_require_tls=starttls, **kwargs,
    )
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()
