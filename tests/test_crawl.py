"""``keyscope crawl`` against a real website on loopback (``tests/crawl_site.py``): an
esbuild bundle with its source maps and a lazily loaded chunk, robots.txt, redirects
in and out of scope, a slow and a huge answer, an endless chain of pages, a model
file; every token is a real SAS signed by azure-storage-blob with a fake key. What
was requested is read from the servers' own logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest

from tests.crawl_site import CrawlSite

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-12-01T00:00:00Z"
CONTACT = "https://example.org/security-contact"


def crawl(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "keyscope", "crawl", "--now", NOW, *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def signature(token: str) -> str:
    """What a finding's ``secret`` holds for a SAS URL: its signature, decoded."""
    return parse_qs(urlsplit(token).query)["sig"][0]


def located(doc: dict[str, Any]) -> dict[str, list[tuple[str, tuple[str, ...], int, int]]]:
    """Each secret's locations: (path, origin, line, column)."""
    out: dict[str, list[tuple[str, tuple[str, ...], int, int]]] = {}
    for f in doc["findings"]:
        for loc in f["locations"]:
            out.setdefault(loc["secret"], []).append(
                (loc["path"], tuple(loc["origin"]), loc["line"], loc["column"])
            )
    return out


@pytest.fixture(scope="module")
def full_crawl(crawl_site: CrawlSite) -> tuple[subprocess.CompletedProcess[str], list[str],
                                                list[str], list[str]]:  # fmt: skip
    """One crawl of the whole site, same-origin, as the acceptance tests read it."""
    crawl_site.clear()
    result = crawl(
        crawl_site.site.url + "/", "--allow-internal", "--scope", "same-origin", "--rate", "0",
        "--timeout", "1", "--max-file-size", "1M", "--depth", "5", "--contact", CONTACT,
        "--format", "json", "--show-secrets", "-v",
    )  # fmt: skip
    return (result, list(crawl_site.site.log), list(crawl_site.other.log),
            list(crawl_site.site.agents))  # fmt: skip


def test_every_token_on_the_site_is_found_at_its_url(
    crawl_site: CrawlSite, full_crawl: Any
) -> None:
    result, _, _, _ = full_crawl
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    schema = json.loads(files("keyscope").joinpath("schemas/scan-v1.json").read_text())
    jsonschema.validate(doc, schema)  # scan's JSON document, as scan writes it
    found = located(doc)
    t, url = crawl_site.tokens, crawl_site.site.url

    def paths(place: str) -> set[str]:
        return {p for p, *_ in found.get(signature(t[place]), [])}

    assert paths("ksindex") == {url + "/"}
    assert paths("ksabout") == {url + "/about.html"}  # served gzip-compressed
    assert paths("ksconfig") == {url + "/api/config.json"}  # named by a string in the bundle
    assert paths("kscss") == {url + "/img/bg.svg"}  # a CSS url()
    assert paths("kssrcset") == {url + "/img/hero-2x.txt"}  # srcset
    assert paths("ksembed") == {url + "/embed.html"}  # an iframe
    assert paths("kssitemap") == {url + "/hidden.html"}  # only in sitemap.xml
    assert paths("ksredirect") == {url + "/moved/target.html"}  # a redirect within scope
    assert paths("kshuge") == {url + "/huge.txt"}  # in the first --max-file-size bytes
    # the data: URI is decoded: its member names it
    where = {(p, o) for p, o, *_ in found[signature(t["ksdatauri"])]}
    assert (url + "/", ("data: URI 1 (text/plain)",)) in where


def test_crawled_pages_are_dated_and_on_the_timeline(
    crawl_site: CrawlSite, full_crawl: Any
) -> None:
    """The site sends no Last-Modified: each page is dated by its fetch, during the
    crawl, and each credential's timeline has an event per page that holds it."""
    result, _, _, _ = full_crawl
    doc = json.loads(result.stdout)
    url = crawl_site.site.url
    pages: dict[str, set[str]] = {}
    for f in doc["findings"]:
        for loc in f["locations"]:
            assert loc["captured"] is not None and loc["git"] is None, loc
            pages.setdefault(f["fingerprint"], set()).add(loc["path"])
    events: dict[str, set[str]] = {}
    for t in doc["timeline"]:
        for e in t["events"]:
            assert (e["event"], e["commit"], e["author"]) == ("captured", "", "")
            events.setdefault(e["fingerprint"], set()).add(e["path"])
    assert events == pages and any(url + "/about.html" in p for p in events.values())
    dates = {e["date"] for t in doc["timeline"] for e in t["events"]}
    stamps = [datetime.strptime(d, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) for d in dates]
    assert max(stamps) - min(stamps) < timedelta(minutes=5)
    assert datetime.now(UTC) - min(stamps) < timedelta(hours=2)


def test_bundle_findings_name_the_original_file_and_line(
    crawl_site: CrawlSite, full_crawl: Any
) -> None:
    result, _, _, _ = full_crawl
    found = located(json.loads(result.stdout))
    t, url = crawl_site.tokens, crawl_site.site.url
    # the map's sourcesContent: the original file and its line (esbuild names the
    # sources relative to the map)
    main = url + "/assets/main.js"
    assert found[signature(t["ksupload"])] == [(main, ("../../src/upload.js",), 2, 19)]
    # a comment the minifier dropped is only in sourcesContent
    assert found[signature(t["kscomment"])] == [(main, ("../../src/main.js",), 2, 33)]
    # the lazily loaded chunk, its map named by a SourceMap header
    [(chunk, origin, line, _)] = found[signature(t["ksplayer"])]
    assert chunk.startswith(url + "/assets/chunks/player-") and chunk.endswith(".js")
    assert (origin, line) == (("../../../src/player.js",), 3)
    # no sourcesContent: the bundle's finding moved through the VLQ mappings to the
    # original file, line and column
    widget = url + "/assets/widget.js"
    assert found[signature(t["kswidget"])] == [(widget, ("../../src/widget.js",), 2, 13)]


def test_nothing_disallowed_or_out_of_scope_is_requested(
    crawl_site: CrawlSite, full_crawl: Any
) -> None:
    result, site_log, other_log, agents = full_crawl
    found = located(json.loads(result.stdout))
    t = crawl_site.tokens
    assert "/private/keys.html" not in site_log  # robots.txt: Disallow: /private/
    assert other_log == []  # the other origin: linked and redirected to, never asked
    assert site_log[0] == "/robots.txt"  # before anything else
    assert "/redirect-out" in site_log and "/redirect-in" in site_log
    # the endless chain stops at --depth 5; the loop back to its start is not refetched
    assert "/chain/5.html" in site_log and "/chain/6.html" not in site_log
    assert site_log.count("/chain/1.html") == 1
    assert len(site_log) == len(set(site_log))  # nothing twice
    assert "/models/model.pkl" not in site_log  # not without --fetch-models
    for place in ("ksprivate", "ksother", "ksoutside", "ksdeep", "ksslow"):
        assert signature(t[place]) not in found, place
    assert set(agents) == {f"keyscope-crawler/0.1.0 (+{CONTACT})"}
    skipped = {s["path"]: s["reason"] for s in json.loads(result.stdout)["skipped"]}
    url, other = crawl_site.site.url, crawl_site.other.url
    assert "robots.txt" in skipped[url + "/private/keys.html"]
    assert "scope" in skipped[other + "/other.html"]
    assert "leaves the --scope" in skipped[other + "/redirected.html"]
    assert "--fetch-models" in skipped[url + "/models/model.pkl"]
    assert "did not answer within 1 s" in skipped[url + "/slow"]
    assert "only the first 1048576 bytes" in skipped[url + "/huge.txt"]
    assert "1 disallowed by robots.txt" in result.stderr  # the summary


def test_internal_addresses_are_refused_without_allow_internal(crawl_site: CrawlSite) -> None:
    crawl_site.clear()
    result = crawl(crawl_site.site.url + "/", "--rate", "0", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert crawl_site.site.log == [] and doc["findings"] == []
    [entry] = doc["skipped"]
    assert "loopback" in entry["reason"] and "--allow-internal" in entry["reason"]
    # allowing another host only does not allow this one
    result = crawl(crawl_site.site.url + "/", "--allow-internal=10.0.0.1", "--format", "json")
    assert crawl_site.site.log == [] and json.loads(result.stdout)["findings"] == []


def test_fetch_models_downloads_and_judges_a_linked_model(crawl_site: CrawlSite) -> None:
    crawl_site.clear()
    result = crawl(
        crawl_site.site.url + "/", "--allow-internal", "--rate", "0", "--timeout", "1",
        "--depth", "1", "--fetch-models", "--format", "json", "--max-file-size", "1M",
    )  # fmt: skip
    assert "/models/model.pkl" in crawl_site.site.log
    models = json.loads(result.stdout)["model_findings"]
    assert [(m["path"], m["verdict"]) for m in models] == [
        (crawl_site.site.url + "/models/model.pkl", "executes-code")
    ]


def test_scopes_and_budgets(crawl_site: CrawlSite) -> None:
    url = crawl_site.site.url
    # same-site (the default): the other port on the same host is the same site
    crawl_site.clear()
    crawl(url + "/", "--allow-internal", "--rate", "0", "--timeout", "1", "--depth", "1",
          "--max-file-size", "1M", "--format", "json")  # fmt: skip
    assert "/other.html" in crawl_site.other.log
    # prefix: only what is under the start URL's folder (robots.txt aside)
    crawl_site.clear()
    crawl(url + "/chain/1.html", "--allow-internal", "--rate", "0", "--scope", "prefix",
          "--format", "json")  # fmt: skip
    assert {p for p in crawl_site.site.log if not p.startswith("/chain/")} == {"/robots.txt"}
    # --max-pages counts every request, robots.txt included
    crawl_site.clear()
    result = crawl(url + "/", "--allow-internal", "--rate", "0", "--max-pages", "3",
                   "--format", "json")  # fmt: skip
    assert len(crawl_site.site.log) == 3
    assert any("--max-pages 3" in s["reason"] for s in json.loads(result.stdout)["skipped"])
    # --max-bytes: nothing more once the budget is spent
    crawl_site.clear()
    crawl(url + "/", "--allow-internal", "--rate", "0", "--max-bytes", "1K", "--format", "json")
    assert crawl_site.site.log[:2] == ["/robots.txt", "/sitemap.xml"] and len(
        crawl_site.site.log
    ) <= 4


def test_rate_spaces_requests_to_one_host(crawl_site: CrawlSite) -> None:
    import time

    crawl_site.clear()
    started = time.monotonic()
    crawl(crawl_site.site.url + "/about.html", "--allow-internal", "--rate", "0.5",
          "--depth", "1", "--format", "json")  # fmt: skip
    # the sitemap is one link away too: three waits of --rate
    assert crawl_site.site.log == ["/robots.txt", "/sitemap.xml", "/about.html", "/"]
    assert time.monotonic() - started >= 1.5


def test_text_and_sarif_reports_name_the_url_and_original_file(crawl_site: CrawlSite) -> None:
    url = crawl_site.site.url
    args = (url + "/assets/widget.js", "--allow-internal", "--rate", "0", "--depth", "0")
    text = crawl(*args, "--format", "text", "--color", "never")
    assert f"{url}/assets/widget.js!/../../src/widget.js:2:13" in text.stdout
    assert crawl_site.tokens["kswidget"] not in text.stdout  # redacted
    sarif = json.loads(crawl(*args, "--format", "sarif").stdout)
    [result] = sarif["runs"][0]["results"]
    uris = json.dumps(result)
    assert f"{url}/assets/widget.js" in uris and "../../src/widget.js" in uris


def test_vlq_and_mappings() -> None:
    from keyscope.crawl.sourcemaps import SourceMap, decode_mappings, vlq

    assert vlq("AAAA") == [0, 0, 0, 0]
    assert vlq("gB") == [16] and vlq("D") == [-1] and vlq("2H") == [123]
    assert vlq("g") == [] and vlq("!") == []  # cut short, not Base64
    lines = decode_mappings("AAAA,IAAI;AACA")
    assert lines == [([0, 4], [(0, 0, 0), (0, 0, 4)]), ([0], [(0, 1, 4)])]
    smap = SourceMap(["a.ts"], [None], "AAAA,IAAI;AACA")
    assert smap.original(1, 6) is not None and smap.original(1, 6).column == 7  # type: ignore[union-attr]
    assert smap.original(3, 0) is None


def test_links_read_statically() -> None:
    from keyscope.crawl.links import data_uris, links, source_mapping_url

    html = (b'<base href="/v2/"><a href="x.html">x</a><img srcset="a.png 1x, b.png 2x">'
            b'<style>body{background:url("c.svg")}</style><div style="background:url(d.png)">'
            b'<script type="module">import "./e.js"; import("./f.js")</script>')  # fmt: skip
    found = links("html", html)
    assert found.base == "/v2/"
    assert found.urls == ["x.html", "a.png", "b.png", "c.svg", "d.png", "./e.js", "./f.js"]
    js = b'import{a}from"./g.js";export*from"../h.js";fetch("/api/i.json");x("j")\n'
    assert links("js", js + b"//# sourceMappingURL=app.js.map\n").urls == [
        "./g.js", "../h.js", "/api/i.json"
    ]
    assert source_mapping_url(js + b"//# sourceMappingURL=app.js.map\n") == "app.js.map"
    assert data_uris(b'src="data:text/plain;base64,aGVsbG8="', 100) == [("text/plain", b"hello")]
    assert data_uris(b"href='data:,a%20b'", 100) == [("text/plain", b"a b")]


def test_progress_line_shows_pages_bytes_and_queue() -> None:
    import io

    from keyscope.crawl.crawler import CrawlStats
    from keyscope.report.progress import CrawlLine

    out = io.StringIO()
    line = CrawlLine(out)
    line.update(CrawlStats(pages=12, bytes=3 * 1024 * 1024, queued=40))
    line.close()
    assert "crawling: 12 pages, 3.0 MB, 40 queued" in out.getvalue()
    assert out.getvalue().endswith("\r\033[K")  # wiped at the end


def test_hostile_bundle_and_map_end_in_skipped_entries(crawl_site: CrawlSite) -> None:
    crawl_site.clear()
    url = crawl_site.site.url + "/broken/app.js"
    result = crawl(url, "--allow-internal", "--rate", "0", "--depth", "0", "--format", "json",
                   "--show-secrets")  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert crawl_site.site.log == ["/robots.txt", "/broken/app.js", "/broken/app.js.map"]
    doc = json.loads(result.stdout)
    [finding] = doc["findings"]
    assert finding["locations"][0]["path"] == url  # the bundle, as it is
    skipped = {s["path"]: s["reason"] for s in doc["skipped"]}
    assert skipped[url + ".map"] == "source map is not JSON"


def test_usage_errors_and_https_first() -> None:
    result = crawl()
    assert result.returncode == 2 and "give at least one URL" in result.stderr
    result = crawl("ftp://example.com/")
    assert result.returncode == 2 and "not an http:// or https:// URL" in result.stderr
    # a bare host name is crawled over HTTPS (here it does not resolve: nothing sent)
    result = crawl("nothing.invalid", "--format", "json", "--rate", "0")
    [entry] = json.loads(result.stdout)["skipped"]
    assert entry["path"] == "https://nothing.invalid/" and "does not resolve" in entry["reason"]
    assert "1 where robots.txt could not be read" in result.stderr
