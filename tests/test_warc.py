"""Web archives: ``keyscope scan file.warc(.gz)``, recognised by content. Archives are
written by the real tools: ``wget --warc-file`` crawling the crawl tests' loopback
site (``tests/crawl_site.py``), and warcio; hostile archives are cut and patched
from those."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.model import Skipped
from keyscope.sources.interface import Blob
from keyscope.unpack.interface import Budget, UnpackLimits
from keyscope.unpack.registry import expander_for
from keyscope.unpack.warc import WarcExpander
from tests.crawl_site import CrawlSite, token

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-12-01T00:00:00Z"
DATE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def scan(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "keyscope", "scan", "--now", NOW, *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def signature(url: str) -> str:
    return parse_qs(urlsplit(url).query)["sig"][0]


def origins(doc: dict[str, Any]) -> dict[str, list[tuple[str, ...]]]:
    """Each secret's location origins."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for f in doc["findings"]:
        for loc in f["locations"]:
            out.setdefault(loc["secret"], []).append(tuple(loc["origin"]))
    return out


@pytest.fixture(scope="module")
def wget_warcs(crawl_site: CrawlSite, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site crawled by wget into ``site.warc.gz`` (gzip per record) and
    ``plain.warc`` (uncompressed), asking for gzip-compressed answers."""
    wget = shutil.which("wget")
    assert wget is not None, "wget is needed (scripts/os-packages.txt)"
    out = tmp_path_factory.mktemp("warc")
    for name, extra in (("site", []), ("plain", ["--no-warc-compression"])):
        crawl_site.clear()
        subprocess.run(
            [wget, "-q", "-r", "-l", "3", "--timeout=1", "--tries=1", "--compression=gzip",
             f"--warc-file={out / name}", *extra, "-P", str(out / f"{name}-files"),
             crawl_site.site.url + "/"],
            timeout=120,
        )  # fmt: skip  # exit 4/8: the slow endpoint timed out, a 404; the archive is whole
        assert "/private/keys.html" not in crawl_site.site.log  # wget honours robots.txt too
        assert "gzip" in crawl_site.site.encodings[0]  # compressed answers are archived
    return out


@pytest.mark.parametrize("name", ["site.warc.gz", "plain.warc"])
def test_wget_archive_of_the_site(crawl_site: CrawlSite, wget_warcs: Path, name: str) -> None:
    archive = wget_warcs / name
    result = scan(str(archive), "--format", "json", "--show-secrets")
    assert result.returncode == 1, result.stderr
    found = origins(json.loads(result.stdout))
    url, t = crawl_site.site.url, crawl_site.tokens
    expected = {"ksindex": "/", "ksabout": "/about.html", "kscss": "/img/bg.svg",
                "kssrcset": "/img/hero-2x.txt", "ksembed": "/embed.html",
                "ksredirect": "/moved/target.html", "kshuge": "/huge.txt"}  # fmt: skip
    for place, path in expected.items():
        [first, *_] = found[signature(t[place])]
        assert re.fullmatch(re.escape(url + path) + " @ " + DATE, first[0]), (place, first)
    assert signature(t["ksprivate"]) not in found  # never archived
    # the bundle, as archived: the token in the minified script, by its URL
    [bundle] = found[signature(t["ksupload"])]
    assert bundle[0].startswith(url + "/assets/main.js @ ")


def test_recognised_by_content_and_located_in_every_format(
    crawl_site: CrawlSite, wget_warcs: Path, tmp_path: Path
) -> None:
    renamed = tmp_path / "capture.bin"
    shutil.copy(wget_warcs / "site.warc.gz", renamed)
    text = scan(str(renamed), "--format", "text", "--color", "never")
    url = crawl_site.site.url
    assert re.search(re.escape(f"{renamed}!/{url}/about.html @ ") + DATE + ":1:21", text.stdout)
    assert crawl_site.tokens["ksabout"] not in text.stdout
    sarif = json.loads(scan(str(renamed), "--format", "sarif").stdout)
    inside = [r for r in sarif["runs"][0]["results"] if "about.html" in json.dumps(r)]
    assert inside and "about.html @ " in json.dumps(inside[0]["relatedLocations"])


def _warcio(records: list[tuple[str, str, bytes, list[tuple[str, str]] | None]]) -> bytes:
    """A .warc.gz written by warcio: (uri, type, payload, http headers or None)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    for uri, kind, payload, headers in records:
        http = None
        if headers is not None:
            protocol = "GET" if kind == "request" else "HTTP/1.1"
            status = f"{urlsplit(uri).path} HTTP/1.1" if kind == "request" else "200 OK"
            http = StatusAndHeaders(status, headers, protocol=protocol)
        record = writer.create_warc_record(uri, kind, payload=io.BytesIO(payload),
                                           http_headers=http)  # fmt: skip
        writer.write_record(record)
    return buf.getvalue()


def test_warcio_archive_with_encoded_bodies(tmp_path: Path) -> None:
    import brotli  # type: ignore[import-untyped,unused-ignore]

    t = {name: token(name) for name in ("kschunked", "ksbrotli", "ksrequest", "ksresource")}
    gz = gzip.compress(f"var media = '{t['kschunked']}';\n".encode())
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(gz), gz)
    archive = tmp_path / "cc.warc.gz"
    archive.write_bytes(_warcio([
        ("https://example.com/app.js", "response", chunked,
         [("Content-Type", "text/javascript"), ("Transfer-Encoding", "chunked"),
          ("Content-Encoding", "gzip")]),
        ("https://example.com/page", "response",
         brotli.compress(f"<p>{t['ksbrotli']}</p>".encode()),
         [("Content-Type", "text/html"), ("Content-Encoding", "br")]),
        (t["ksrequest"], "request", b"", [("Host", "ksrequest.blob.core.windows.net")]),
        ("urn:example:notes", "resource", f"notes {t['ksresource']}\n".encode(), None),
    ]))  # fmt: skip
    found = origins(json.loads(scan(str(archive), "--format", "json", "--show-secrets").stdout))
    [(js,)] = found[signature(t["kschunked"])]
    assert re.fullmatch("https://example.com/app.js @ " + DATE, js)
    [(page,)] = found[signature(t["ksbrotli"])]
    assert page.startswith("https://example.com/page @ ")
    # the target URI of a request is scanned too: a SAS fetched is a SAS leaked
    [(request,)] = found[signature(t["ksrequest"])]
    assert request.endswith(" (request)")
    [(resource,)] = found[signature(t["ksresource"])]
    assert resource.startswith("urn:example:notes @ ") and resource.endswith("(resource)")


def _expand(data: bytes, limits: UnpackLimits | None = None) -> list[Blob | Skipped]:
    blob = Blob("x.warc.gz", data)
    assert isinstance(expander_for(blob), WarcExpander)
    budget = Budget(limits or UnpackLimits(), len(data))
    return list(WarcExpander().expand(blob, budget))


def _plain(uri: str, body: bytes, length: int | None = None) -> bytes:
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body
    size = str(len(http) if length is None else length).encode()
    return (b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: " + uri.encode() +
            b"\r\nWARC-Date: 2026-01-02T03:04:05Z\r\nContent-Length: " + size +
            b"\r\n\r\n" + http + b"\r\n\r\n")  # fmt: skip


def test_hostile_archives_end_in_skipped_entries() -> None:
    good = gzip.compress(_plain("https://a.example/1", b"one"))
    # cut in the middle of the second record's gzip member: the first stays
    second = gzip.compress(_plain("https://a.example/2", b"two" * 1000))
    items = _expand(good + second[: len(second) // 2])
    assert [b.origin for b in items if isinstance(b, Blob)][-1] == ("https://a.example/1 @ "
                                                                    "2026-01-02T03:04:05Z",)
    assert "cannot be read any further" in items[-1].reason  # type: ignore[union-attr]
    # a record that says it is larger than any member: skipped, not read
    huge = _plain("https://a.example/h", b"x", length=1 << 40)
    items = _expand(gzip.compress(huge))
    assert [type(i) for i in items] == [Skipped] and "larger than" in items[0].reason  # type: ignore[union-attr]
    # no Content-Length, a header that never ends, junk between records
    for data, reason in (
        (b"WARC/1.0\r\nWARC-Type: response\r\n\r\n", "without a Content-Length"),
        (b"WARC/1.0\r\n" + b"X-A: b\r\n" * 10000, "header block of more than"),
        (_plain("https://a.example/1", b"one") + b"GARBAGE\r\n", "not a WARC record header"),
        (_plain("https://a.example/1", b"one", length=5000), "cut short"),
    ):
        items = _expand(data)
        assert any(isinstance(i, Skipped) and reason in i.reason for i in items), reason
    # a chunked body that lies: the stored bytes are scanned, and said so
    lying = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbody\r\n"
    record = (b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: https://a.example/c\r\n"
              b"Content-Length: %d\r\n\r\n%s\r\n\r\n") % (len(lying), lying)  # fmt: skip
    items = _expand(record)
    assert any(isinstance(i, Skipped) and "malformed chunk size" in i.reason for i in items)
    assert any(isinstance(i, Blob) and b"zz\r\nbody" in i.data for i in items)


def test_a_decompression_bomb_stops_at_the_stream_limit() -> None:
    body = b"\0" * (4 << 20)
    bomb = gzip.compress(_plain("https://a.example/z", body) * 8)  # 32 MiB in ~100 KiB
    limits = UnpackLimits(total_bytes=8 << 20, ratio=20)
    items = _expand(bomb, limits)
    assert isinstance(items[-1], Skipped) and "decompresses to more than" in items[-1].reason
    assert sum(isinstance(i, Blob) for i in items) < 8 * 2


def test_each_record_is_unpacked_with_a_budget_of_its_own() -> None:
    """A Common Crawl file holds more records than one container's member budget: each
    record (and what it holds, a zip served by the site) is unpacked on its own."""
    import zipfile
    from datetime import UTC, datetime

    from keyscope.detect.rules import load_rules
    from keyscope.scan import ScanOptions, _WorkerState

    def zipped(text: str) -> bytes:
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as z:
            z.writestr("config/settings.json", text)
        return inner.getvalue()

    secret = token("kszipped")
    # 100 downloads, each a zip of one member: 100 members in zips in all
    filler = b"".join(
        gzip.compress(_plain(f"https://a.example/{i}.zip", zipped("{}"))) for i in range(100)
    )
    last = zipped(f'{{"url": "{secret}"}}')
    data = filler + gzip.compress(_plain("https://a.example/b.zip", last))
    state = _WorkerState(load_rules(()), "re", datetime(2026, 12, 1, tzinfo=UTC), ScanOptions())
    state.limits = UnpackLimits(members=50)  # far fewer than the zips' members together
    batch = state.scan_blobs([Blob("many.warc.gz", data)])
    [finding] = batch.findings
    where = finding.location.origin
    assert where[0].startswith("https://a.example/b.zip @ ") and where[1] == "config/settings.json"
    assert batch.skipped == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048), st.booleans())
def test_any_bytes_after_the_magic_never_raise(tail: bytes, compress: bool) -> None:
    data = b"WARC/1.0\r\n" + tail
    items = _expand(gzip.compress(data) if compress else data)
    assert all(isinstance(i, Blob | Skipped) for i in items)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.integers(0, 5), st.integers(0, 200))
def test_any_source_map_never_raises(mappings: str, line: int, column: int) -> None:
    from keyscope.crawl.sourcemaps import parse_map

    doc = json.dumps({"version": 3, "sources": ["a.js", "b.js"], "mappings": mappings})
    smap = parse_map(doc.encode())
    assert not isinstance(smap, str)
    where = smap.original(line, column)
    assert where is None or where.source in ("a.js", "b.js")


def test_gzip_members_read_in_any_sizes_equal_gzip() -> None:
    """Many members, each leftover carried to the next, output cut at any size."""
    import random

    from keyscope.unpack.warc import _Inflated

    rnd = random.Random(7)
    members = [gzip.compress(rnd.randbytes(rnd.randrange(1, 300_000)) * 2) for _ in range(60)]
    data = b"".join(members)
    reader = _Inflated(io.BytesIO(data))
    out = bytearray()
    while True:
        buffer = bytearray(rnd.choice([1, 7, 100, 5000, 1 << 16, 1 << 20]))
        n = reader.readinto(buffer)
        if not n:
            break
        out += buffer[:n]
    assert bytes(out) == gzip.decompress(data)
