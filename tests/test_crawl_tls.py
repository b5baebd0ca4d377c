"""``keyscope crawl`` over HTTPS against a real TLS server on loopback (its
certificate made by ``tests/notify_receivers.self_signed``, trusted through
``SSL_CERT_FILE``): a host that answers over HTTPS has its ``http://`` links fetched
over HTTPS, an untrusted certificate is refused, and robots.txt's ``Crawl-delay``
spaces the requests. What was requested, when and how is
read from the server's own log."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.crawl_site import token
from tests.notify_receivers import self_signed

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class TlsSite:
    """Pages on https://127.0.0.1:PORT; ``log``: (path, monotonic time) per request."""

    url: str
    pages: dict[str, str]
    log: list[tuple[str, float]] = field(default_factory=list)


@pytest.fixture
def tls_site(tmp_path: Path) -> Iterator[tuple[TlsSite, Path]]:
    cert_file, key_file = self_signed(tmp_path)
    site = TlsSite("", {})

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            site.log.append((self.path, time.monotonic()))
            body = site.pages.get(self.path)
            status = 200 if body is not None else 404
            data = (body if body is not None else "not found").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if self.path.endswith(".txt")
                             else "text/html")  # fmt: skip
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    port = httpd.server_address[1]
    site.url = f"https://127.0.0.1:{port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield site, cert_file
    finally:
        httpd.shutdown()
        httpd.server_close()


def crawl(trust: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    env["PYTHONPATH"] = str(ROOT / "src")
    if trust is not None:
        env["SSL_CERT_FILE"] = str(trust)
    return subprocess.run(
        [sys.executable, "-m", "keyscope", "crawl", "--allow-internal", "--format", "json",
         "--show-secrets", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def test_http_links_of_a_host_that_speaks_https_are_fetched_over_https(
    tls_site: tuple[TlsSite, Path],
) -> None:
    site, cert = tls_site
    secret = token("kstls")
    plain = site.url.replace("https://", "http://")
    site.pages.update({
        "/robots.txt": "User-agent: *\nAllow: /\n",
        "/": f'<a href="{plain}/next.html">next</a>',  # http:// to the same host and port
        "/next.html": f"<p>{secret}</p>",
    })  # fmt: skip
    result = crawl(cert, site.url + "/", "--rate", "0", "--depth", "2")
    doc = json.loads(result.stdout)
    paths = [p for p, _ in site.log]
    # a plain HTTP request to this TLS port would never reach the log as /next.html
    assert "/next.html" in paths, (paths, doc["skipped"])
    [finding] = doc["findings"]
    assert finding["locations"][0]["path"] == site.url + "/next.html"
    assert not any(s["path"].startswith("http://") for s in doc["skipped"])


def test_an_untrusted_certificate_is_refused(tls_site: tuple[TlsSite, Path]) -> None:
    site, _ = tls_site
    site.pages["/"] = f"<p>{token('ksuntrusted')}</p>"
    result = crawl(None, site.url + "/", "--rate", "0")
    doc = json.loads(result.stdout)
    assert doc["findings"] == []
    assert "/" not in [p for p, _ in site.log]  # no request got through the handshake
    [entry] = [s for s in doc["skipped"] if s["path"] == site.url + "/"]
    assert "certificate" in entry["reason"].lower(), entry


def test_crawl_delay_spaces_the_requests_to_a_host(tls_site: tuple[TlsSite, Path]) -> None:
    site, cert = tls_site
    site.pages.update({
        "/robots.txt": "User-agent: *\nCrawl-delay: 1\n",
        "/": '<a href="/a.html">a</a> <a href="/b.html">b</a>',
        "/a.html": "a", "/b.html": "b",
    })  # fmt: skip
    crawl(cert, site.url + "/", "--rate", "0", "--depth", "1")
    times = {p: t for p, t in site.log}
    assert {"/", "/a.html", "/b.html"} <= set(times), site.log
    pages = sorted(times[p] for p in ("/", "/a.html", "/b.html"))
    gaps = [b - a for a, b in itertools.pairwise(pages)]
    assert all(gap >= 0.95 for gap in gaps), gaps
