"""The crawl as a source (``sources/interface.py``): the parent crawls while the
workers scan, each fetched page one unit. A unit's blobs are the page, the ``data:``
URIs in it (decoded) and the original files of its source map (``sourcesContent``),
named ``PAGE-URL!/ORIGINAL-FILE``; a finding in a bundle is moved to the original
file, line and column the map's mappings give."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from keyscope.crawl.crawler import Crawler, CrawlStats, Page
from keyscope.crawl.links import data_uris
from keyscope.crawl.options import CrawlOptions
from keyscope.crawl.scope import normalized
from keyscope.crawl.sourcemaps import SourceMap, parse_map
from keyscope.model import RawFinding, Skipped
from keyscope.sources.interface import Batch, Blob, Source, SourceOptions, Unit, WorkerContext

DATA_URI_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class PageUnit:
    """One fetched page (and its source map) for a worker to scan."""

    page: Page

    def read(self, ctx: WorkerContext) -> Iterator[Blob | Skipped]:
        page = self.page
        when = page.captured
        yield Blob(path=page.url, data=page.body, captured=when)
        if page.kind in ("html", "css", "js", "json"):
            for n, (media, data) in enumerate(data_uris(page.body, DATA_URI_BYTES), 1):
                yield Blob(path=page.url, data=data, origin=(f"data: URI {n} ({media})",),
                           captured=when)
        if page.map_body is None or page.map_url is None:
            return
        parsed = parse_map(page.map_body)
        if isinstance(parsed, str):
            yield Skipped(page.map_url, parsed)
            yield Blob(path=page.map_url, data=page.map_body, captured=when)
            return
        for name, content in zip(parsed.sources, parsed.contents, strict=True):
            if content is not None:
                data = content.encode("utf-8", "surrogatepass")
                yield Blob(path=page.url, data=data, origin=(name,), captured=when)


class CrawlSource(Source):
    """Claims http(s) URLs (``keyscope crawl`` only) and crawls from them."""

    name = "crawl"

    def __init__(
        self,
        options: SourceOptions,
        crawl: CrawlOptions,
        progress: Callable[[CrawlStats], None] | None = None,
    ) -> None:
        super().__init__(options)
        self.crawl = crawl
        self.starts: list[str] = []
        self.progress = progress
        self.crawler: Crawler | None = None

    def claim(self, root: str) -> bool:
        if normalized(root) is None:
            return False
        self.starts.append(root)
        return True

    def units(self, skipped: list[Skipped], jobs: int) -> Iterator[Unit]:
        if not self.starts:
            return
        self.crawler = Crawler(self.starts, self.crawl)
        for page in self.crawler.pages(skipped, self.progress):
            yield PageUnit(page)

    def absorb(self, unit: Unit, batch: Batch) -> Batch:
        """Findings in a bundle with a map: located in the original file instead (the
        same place found in ``sourcesContent`` is kept once)."""
        if not isinstance(unit, PageUnit) or unit.page.map_body is None:
            return batch
        parsed = parse_map(unit.page.map_body)
        if isinstance(parsed, str):
            return batch
        return replace(batch, findings=_mapped(unit.page.url, parsed, batch.findings))


def _mapped(url: str, smap: SourceMap, findings: list[RawFinding]) -> list[RawFinding]:
    out: list[RawFinding] = []
    seen = {
        (f.explanation.fingerprint, f.location.origin, f.location.line)
        for f in findings
        if f.location.path == url and f.location.origin
    }
    for f in findings:
        loc = f.location
        if loc.path != url or loc.origin:
            out.append(f)
            continue
        where = smap.original(loc.line, loc.column - 1)
        if where is None:
            out.append(f)
            continue
        key = (f.explanation.fingerprint, (where.source,), where.line)
        if key in seen:
            continue  # the original file's own copy (sourcesContent) says it already
        moved = replace(
            loc,
            origin=(where.source,),
            line=where.line,
            column=where.column,
            end_line=where.line,
            end_column=where.column + (loc.end_column - loc.column),
        )
        out.append(replace(f, location=moved))
    return out
