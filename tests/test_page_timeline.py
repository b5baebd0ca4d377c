"""Web pages on the timeline: a web archive's record is dated by its WARC-Date, a
crawled page by its Last-Modified or its fetch time (``Location.captured``); the
timeline of ``report/timeline.py`` (JSON ``timeline``, the HTML page's chart) then
shows each capture of a page that holds the credential. Archives are written by
warcio; the tokens are SAS URLs signed by azure-storage-blob with a fake key."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema

from keyscope.crawl.crawler import captured_at
from keyscope.report.html import page_data
from keyscope.scan import ScanOptions, scan
from tests.crawl_site import token

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-12-01T00:00:00Z"


def _archive(records: list[tuple[str, str, bytes]]) -> bytes:
    """A .warc.gz written by warcio: (target URI, WARC-Date, page) per response."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    for uri, date, page in records:
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        record = writer.create_warc_record(uri, "response", payload=io.BytesIO(page),
                                           http_headers=http,
                                           warc_headers_dict={"WARC-Date": date})
        writer.write_record(record)
    return buf.getvalue()


def _scan_json(path: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "keyscope", "scan", "--now", NOW, "--format", "json", str(path)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    schema = json.loads(files("keyscope").joinpath("schemas/scan-v1.json").read_text())
    jsonschema.validate(doc, schema)
    return doc


def test_each_capture_of_an_archived_page_is_an_event_at_its_warc_date(tmp_path: Path) -> None:
    sas, other = token("kswarcpage"), token("kswarcother")
    archive = tmp_path / "site.warc.gz"
    archive.write_bytes(_archive([
        ("https://example.com/config.js", "2025-03-01T10:00:00Z", f"var u='{sas}';".encode()),
        ("https://example.com/about", "2025-01-15T08:30:00Z", b"<p>nothing here</p>"),
        ("https://example.com/config.js", "2025-06-20T12:00:00Z", f"var u='{sas}';".encode()),
        ("https://example.com/late.html", "2025-09-09T09:09:09Z", f"<a href='{other}'>".encode()),
    ]))  # fmt: skip
    doc = _scan_json(archive)
    captured = sorted(loc["captured"] for f in doc["findings"] for loc in f["locations"])
    assert captured == ["2025-03-01T10:00:00Z", "2025-06-20T12:00:00Z", "2025-09-09T09:09:09Z"]
    # one timeline per storage account (the token's name is its account), oldest first
    assert [t["subject"] for t in doc["timeline"]] == [
        "storage account 'kswarcpage'", "storage account 'kswarcother'"]
    events = [(e["event"], e["date"], e["commit"], e["origin"][0].split(" @ ")[0])
              for t in doc["timeline"] for e in t["events"]]
    assert events == [
        ("captured", "2025-03-01T10:00:00Z", "", "https://example.com/config.js"),
        ("captured", "2025-06-20T12:00:00Z", "", "https://example.com/config.js"),
        ("captured", "2025-09-09T09:09:09Z", "", "https://example.com/late.html"),
    ]


def test_a_record_without_a_valid_warc_date_has_no_capture_time(tmp_path: Path) -> None:
    archive = tmp_path / "odd.warc.gz"
    archive.write_bytes(_archive([("https://example.com/x", "yesterday", token("ksodd").encode())]))
    doc = _scan_json(archive)
    [finding] = doc["findings"]
    assert [loc["captured"] for loc in finding["locations"]] == [None]
    assert doc["timeline"] == []


def test_the_html_page_data_carries_page_events(tmp_path: Path) -> None:
    sas = token("kshtmlpage")
    archive = tmp_path / "site.warc.gz"
    archive.write_bytes(_archive([
        ("https://example.com/a.js", "2025-02-02T02:02:02Z", f"x='{sas}'".encode()),
    ]))  # fmt: skip
    result = scan([archive], ScanOptions(jobs=1, git=False,
                                         now=datetime(2026, 12, 1, tzinfo=UTC)))
    data = page_data(result)
    [timeline] = data["timeline"]
    [event] = timeline["events"]
    assert (event["event"], event["date"], event["commit"], event["author"]) == (
        "captured", "2025-02-02T02:02:02Z", "", "")
    assert data["findings"][0]["locations"][0]["captured"] == "2025-02-02T02:02:02Z"


def test_a_crawled_page_is_dated_by_last_modified_else_by_its_fetch() -> None:
    assert captured_at("Wed, 21 Oct 2015 07:28:00 GMT") == "2015-10-21T07:28:00Z"
    assert captured_at("Wed, 21 Oct 2015 09:28:00 +0200") == "2015-10-21T07:28:00Z"
    before = datetime.now(UTC).replace(microsecond=0)
    for missing in (None, "", "not a date", "Wed, 21 Oct 2015 07:28:00"):
        when = datetime.strptime(captured_at(missing), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert before <= when <= datetime.now(UTC) + timedelta(seconds=1), missing
