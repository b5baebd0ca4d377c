"""An http(s) URL of a web archive or artifact is downloaded, not cloned
(``sources/download.py``), from a real HTTP server on loopback (``http.server`` in a
thread): a ``.warc.gz`` written by warcio holding an SAS URL minted by the Azure SDK
is found with its record origin, the path showing the URL; a 404 is a skipped
target and the scan goes on; a body over ``--download-limit`` is refused (declared)
or cut off (undeclared) without filling the disk; redirects are followed to http
only; nothing from the environment (proxy, .netrc) is sent. With and without
``--cluster``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from keyscope.inventory.store import open_store
from keyscope.scan import ScanOptions, scan
from keyscope.sources.download import is_download
from tests import sdk, tokens
from tests.warcs import gzip_warc

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-12-01T00:00:00Z"
LIMIT = 1 << 20


@dataclass
class Site:
    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    headers: list[dict[str, str]] = field(default_factory=list)  # of every request
    sent: dict[str, int] = field(default_factory=dict)  # bytes written per path


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            site.headers.append(dict(self.headers.items()))
            path = self.path.split("?", 1)[0]
            if path == "/moved.warc.gz":
                self._head(302, {"Location": "/crawl.warc.gz", "Content-Length": "0"})
            elif path == "/ftp.zip":
                self._head(302, {"Location": "ftp://127.0.0.1/x.zip", "Content-Length": "0"})
            elif path == "/declared.warc.gz":  # says how large it is: refused before reading
                self._head(200, {"Content-Length": str(LIMIT * 1024)})
            elif path == "/endless.warc.gz":  # says nothing, never ends: cut off
                self._head(200, {"Connection": "close"})
                chunk = b"\0" * 65536
                site.sent[path] = 0
                try:
                    while site.sent[path] < 64 * LIMIT:
                        self.wfile.write(chunk)
                        site.sent[path] += len(chunk)
                except OSError:
                    pass  # the client hung up
            elif path in site.files:
                body = site.files[path]
                self._head(200, {"Content-Length": str(len(body))})
                self.wfile.write(body)
            else:
                self._head(404, {"Content-Length": "0"})

        def _head(self, status: int, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()

    return Handler


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    key = sdk.new_key()
    sas = sdk.account_sas("crawldata", key, expiry=datetime(2027, 3, 1, tzinfo=UTC),
                          resource_types="o", services="b", permission="r")  # fmt: skip
    found = sdk.blob_url("crawldata", "exports", "db.bak", sas)
    pages = [("https://shop.example/", b"<p>welcome</p>"),
             ("https://shop.example/admin", f"<a href='{found}'>backup</a>".encode()),
             ("https://shop.example/about", b"<p>about us</p>")]  # fmt: skip
    served = Site(files={"/crawl.warc.gz": gzip_warc(pages)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def _scan(targets: list[str], cache: Path, limit: int = LIMIT) -> Any:
    options = ScanOptions(now=datetime(2026, 12, 1, tzinfo=UTC), cache_dir=cache,
                          download_limit=limit, jobs=1)  # fmt: skip
    return scan(targets, options)


def test_which_urls_are_downloaded() -> None:
    assert is_download("https://data.example/crawl/CC-MAIN-1.warc.gz")
    assert is_download("http://h.example/a/b.WARC")
    assert is_download("https://h.example/app.apk?sv=1&sig=x")  # by the path, not the query
    assert is_download("https://h.example/lib.whl") and is_download("https://h.example/x.tar.gz")
    assert not is_download("https://github.com/acme/web.git")
    assert not is_download("https://github.com/acme/web")
    assert not is_download("file:///tmp/x.warc.gz") and not is_download("ftp://h/x.zip")


def test_a_web_archive_url_is_downloaded_and_scanned_with_its_record_origin(
    site: Site, tmp_path: Path
) -> None:
    url = f"{site.url}/crawl.warc.gz"
    result = _scan([url], tmp_path)
    [finding] = result.findings
    assert finding.rule_id.startswith("azure")
    [loc] = finding.locations
    assert loc.path == url
    assert loc.origin[0].startswith("https://shop.example/admin @ ")
    assert result.skipped == []
    assert list((tmp_path / "downloads").iterdir()) == []  # removed after the scan
    # a redirect to it is followed, and shows the URL asked for
    moved = _scan([f"{site.url}/moved.warc.gz"], tmp_path)
    assert [loc.path for f in moved.findings for loc in f.locations] == [
        f"{site.url}/moved.warc.gz"]
    # a signed URL's query is not shown, nor are credentials
    signed = _scan([f"http://me:pw@{site.url[7:]}/crawl.warc.gz?sv=2025&sig=c2VjcmV0"], tmp_path)
    assert [loc.path for f in signed.findings for loc in f.locations] == [f"{url}?…"]
    assert site.headers[-1]["Authorization"] == "Basic bWU6cHc="  # to the URL's own host


def test_a_failed_download_is_a_skipped_target_and_the_scan_goes_on(
    site: Site, tmp_path: Path
) -> None:
    plain = tmp_path / "notes.txt"
    plain.write_text(f"token = {tokens.github()}\n")
    result = _scan([f"{site.url}/missing.warc.gz", f"{site.url}/ftp.zip", str(plain)],
                   tmp_path / "cache")  # fmt: skip
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in result.skipped}
    assert reasons == {
        "missing.warc.gz": "could not be downloaded: HTTP 404 Not Found",
        "ftp.zip": "could not be downloaded: redirected to a URL that is not http(s) (ftp:)",
    }
    assert [loc.path for f in result.findings for loc in f.locations] == [str(plain)]


def test_a_body_over_the_limit_is_refused_without_filling_the_disk(
    site: Site, tmp_path: Path
) -> None:
    result = _scan([f"{site.url}/declared.warc.gz", f"{site.url}/endless.warc.gz"], tmp_path)
    reasons = [s.reason for s in result.skipped]
    assert reasons == [
        f"could not be downloaded: larger than --download-limit ({LIMIT * 1024} > {LIMIT} bytes)",
        f"could not be downloaded: larger than --download-limit ({LIMIT} bytes): cut off",
    ]
    assert list((tmp_path / "downloads").iterdir()) == []  # nothing kept
    # the endless body was read only a little past the limit (socket buffers aside)
    assert site.sent["/endless.warc.gz"] < 16 * LIMIT


def _keyscope(*args: str, env: dict[str, str]) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "keyscope", "scan", "--now", NOW, "--fail-on", "never",
         "--format", "json", *args],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc, done.stderr


@pytest.mark.parametrize("cluster", [False, True], ids=["one machine", "cluster"])
def test_the_command_line_downloads_and_sends_nothing_from_the_environment(
    site: Site, tmp_path: Path, cluster: bool
) -> None:
    """A proxy and a .netrc for the server in the environment: neither is used."""
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login me password hunter2\n")
    (tmp_path / ".netrc").chmod(0o600)
    env = {"HOME": str(tmp_path), "http_proxy": "http://127.0.0.1:9", "HTTP_PROXY":
           "http://127.0.0.1:9", "XDG_CACHE_HOME": str(tmp_path / "cache")}  # fmt: skip
    url = f"{site.url}/crawl.warc.gz"
    before = len(site.headers)
    db = tmp_path / "inventory.sqlite3"
    args = [f"{url}?sig=c2VjcmV0", f"{site.url}/missing.warc.gz", "--download-limit", "2M",
            f"--db={db}"]  # fmt: skip
    doc, _ = _keyscope(*args, *(["--cluster", "local:1"] if cluster else []), env=env)
    [finding] = doc["findings"]
    assert [loc["path"] for loc in finding["locations"]] == [f"{url}?…"]
    with open_store(str(db)) as store:  # the inventory names the URL as the report does
        [row] = store.rows("SELECT source, place FROM occurrences")
    assert row["source"] == f"{url}?…"
    assert row["place"].startswith("crawl.warc.gz?…!/https://shop.example/admin @ ")
    [skip] = doc["skipped"]
    assert skip["reason"] == "could not be downloaded: HTTP 404 Not Found"
    sent = site.headers[before:]
    assert len(sent) == 2 and not any("Authorization" in h or "Proxy-Authorization" in h
                                      for h in sent)  # fmt: skip


def test_https_is_verified_against_the_trusted_certificates(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TLS server on loopback with a self-signed certificate: refused until the
    certificate is trusted (``SSL_CERT_FILE``), then downloaded."""
    import ssl

    from tests.notify_receivers import self_signed

    cert_file, key_file = self_signed(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_address[1]}/crawl.warc.gz"
    try:
        refused = _scan([url], tmp_path / "cache")
        [skip] = refused.skipped
        assert skip.reason.startswith("could not be downloaded: SSLCertVerificationError")
        assert refused.findings == []
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
        trusted = _scan([url], tmp_path / "cache")
        assert [loc.path for f in trusted.findings for loc in f.locations] == [url]
    finally:
        server.shutdown()
        server.server_close()
