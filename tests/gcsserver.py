"""A loopback stand-in for the two Google endpoints keyscope's Google Cloud checks use,
checking what Google checks, with public keys only.

- Cloud Storage's XML API for signed URLs: a V4 (``GOOG4-RSA-SHA256``) or V2 signature
  is verified with the RSA *public* keys of the signing service account (the server
  never holds a private key); a V4 ``GOOG4-HMAC-SHA256`` signature is recomputed with
  the HMAC key's secret (Google's documented chain: ``"GOOG4" + secret`` → date →
  location → ``storage`` → ``goog4_request``) from the request as received (an access
  id it does not hold is ``InvalidAccessKeyId``). The URL's validity window is
  enforced, then the object is served (``Range`` honoured) or ``NoSuchKey`` /
  ``NoSuchBucket``; anything unsigned or mis-signed is refused as Cloud Storage
  refuses it.
- The anonymous public-key lookup, ``/robot/v1/metadata/x509/EMAIL``: the
  certificates of the account's current keys by key id (a deleted key is gone).

Every request is logged (method, path, Range, Authorization or not) so a test can
prove what was sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.server
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

CERTS_PATH = "/robot/v1/metadata/x509/"


def certificate_of(private_pem: str, email: str) -> tuple[rsa.RSAPublicKey, str]:
    """The public key of a service-account key, and a certificate for it as Google
    publishes one (self-signed, the account's email as subject)."""
    key = serialization.load_pem_private_key(private_pem.encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, email)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    return key.public_key(), cert.public_bytes(serialization.Encoding.PEM).decode()


class GcsServer:
    """Signed-URL checks and the public-key lookup on 127.0.0.1 (a free port)."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, tuple[rsa.RSAPublicKey, str]]] = {}
        self.hmac_keys: dict[str, str] = {}  # access id → secret
        self.objects: dict[str, dict[str, bytes]] = {}
        self.log: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> GcsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def add_key(self, info: dict[str, str]) -> None:
        """Publish a service-account key (only its public half is kept)."""
        public, cert = certificate_of(info["private_key"], info["client_email"])
        self.keys.setdefault(info["client_email"], {})[info["private_key_id"]] = (public, cert)

    def add_hmac_key(self, access_id: str, secret: str) -> None:
        """An HMAC key (``gcloud storage hmac create``)."""
        self.hmac_keys[access_id] = secret

    def delete_key(self, email: str, key_id: str) -> None:
        del self.keys[email][key_id]

    def requests(self) -> list[dict[str, Any]]:
        """Every request received: method, path (with query), Range, whether it had an
        Authorization header."""
        with self._lock:
            return list(self.log)

    # -- the handler -------------------------------------------------------------------

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _answer(self, status: int, body: bytes = b"", ctype: str = "application/xml",
                        extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _error(self, status: int, code: str, details: str = "") -> None:
                body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
                        f"<Message>Access denied.</Message><Details>{details}</Details>"
                        "</Error>").encode()
                self._answer(status, body)

            def _handle(self) -> None:
                with server._lock:
                    server.log.append({"method": self.command, "path": self.path,
                                       "range": self.headers.get("Range"),
                                       "auth": "Authorization" in self.headers})
                if self.command not in ("GET", "HEAD"):
                    return self._error(405, "MethodNotAllowed", "this test server reads only")
                path, _, query = self.path.partition("?")
                if path.startswith(CERTS_PATH) and self.command == "GET":
                    return self._certs(unquote(path[len(CERTS_PATH):]))
                refusal = server.check_signature(self.command, path, query, self.headers)
                if refusal is not None:
                    return self._error(*refusal)
                return self._object(path)

            def _certs(self, email: str) -> None:
                if email not in server.keys:
                    body = json.dumps({"error": {"code": 404, "message": "Not Found"}})
                    return self._answer(404, body.encode(), "application/json")
                listed = {kid: cert for kid, (_, cert) in server.keys[email].items()}
                return self._answer(200, json.dumps(listed).encode(), "application/json")

            def _object(self, path: str) -> None:
                bucket, _, name = unquote(path).lstrip("/").partition("/")
                if bucket not in server.objects:
                    return self._error(404, "NoSuchBucket", "The specified bucket does not exist.")
                data = server.objects[bucket].get(name)
                if data is None:
                    return self._error(404, "NoSuchKey", "The specified key does not exist.")
                if self.headers.get("Range") == "bytes=0-0" and data:
                    return self._answer(206, data[:1], "application/octet-stream",
                                        {"Content-Range": f"bytes 0-0/{len(data)}"})
                return self._answer(200, data, "application/octet-stream")

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

        return Handler

    def check_signature(self, method: str, path: str, query: str,
                        headers: Any) -> tuple[int, str, str] | None:
        """None when the signed URL is valid now, else (status, code, details)."""
        params = parse_qsl(query, keep_blank_values=True)
        named = dict(params)
        if "X-Goog-Signature" in named:
            return self._v4(method, path, params, named, headers)
        if "Signature" in named and "GoogleAccessId" in named:
            return self._v2(method, path, named)
        return 403, "AccessDenied", "Anonymous caller does not have storage.objects.get access."

    def _v4(self, method: str, path: str, params: list[tuple[str, str]],
            named: dict[str, str], headers: Any) -> tuple[int, str, str] | None:
        algorithm = named.get("X-Goog-Algorithm")
        if algorithm not in ("GOOG4-RSA-SHA256", "GOOG4-HMAC-SHA256"):
            return 400, "InvalidArgument", "Unsupported algorithm."
        email, day, location, service, request = named["X-Goog-Credential"].split("/")
        signed_at = datetime.strptime(named["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        now = datetime.now(UTC)
        if now > signed_at + timedelta(seconds=int(named["X-Goog-Expires"])):
            return 400, "ExpiredToken", "Request has expired."
        if now < signed_at - timedelta(minutes=15):
            return 400, "InvalidArgument", "Request is not yet valid."
        names = named["X-Goog-SignedHeaders"].split(";")
        canonical_headers = "".join(f"{n}:{(headers.get(n) or '').strip()}\n" for n in names)
        canonical_query = "&".join(sorted(
            f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in params
            if k != "X-Goog-Signature"))
        canonical = "\n".join([method, path, canonical_query, canonical_headers,
                               named["X-Goog-SignedHeaders"], "UNSIGNED-PAYLOAD"])
        scope = f"{day}/{location}/{service}/{request}"
        to_sign = "\n".join([algorithm, named["X-Goog-Date"], scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        if algorithm == "GOOG4-HMAC-SHA256":
            return self._verify_hmac(email, (day, location, service, request),
                                     named["X-Goog-Signature"], to_sign)
        try:
            signature = binascii.unhexlify(named["X-Goog-Signature"])
        except (binascii.Error, ValueError):
            signature = b""
        return self._verify(email, signature, to_sign.encode())

    def _v2(self, method: str, path: str, named: dict[str, str]) -> tuple[int, str, str] | None:
        if datetime.now(UTC).timestamp() > int(named["Expires"]):
            return 400, "ExpiredToken", "Request has expired."
        to_sign = f"{method}\n\n\n{named['Expires']}\n{path}"
        try:
            signature = base64.b64decode(named["Signature"])
        except (binascii.Error, ValueError):
            signature = b""
        return self._verify(named["GoogleAccessId"], signature, to_sign.encode())

    def _verify_hmac(self, access_id: str, scope: tuple[str, ...], signature: str,
                     to_sign: str) -> tuple[int, str, str] | None:
        if access_id not in self.hmac_keys:
            return 403, "InvalidAccessKeyId", "The access key you provided does not exist."
        key = ("GOOG4" + self.hmac_keys[access_id]).encode()
        for part in scope:
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            return 403, "SignatureDoesNotMatch", "The signature we calculated does not match."
        return None

    def _verify(self, email: str, signature: bytes, message: bytes) -> tuple[int, str, str] | None:
        for public, _ in self.keys.get(email, {}).values():
            try:
                public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
                return None
            except InvalidSignature:
                continue
        return (403, "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you "
                "provided. Check your Google secret key and signing method.")
