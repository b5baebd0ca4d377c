"""The frontier: breadth first from the start URLs, within the scope and robots.txt,
to ``depth`` links away, at most ``max_pages`` answers and ``max_bytes`` downloaded.
Each page's links are read statically (``links.py``); a script's source map is
fetched with it (``SourceMap`` header or ``sourceMappingURL``). Everything not
fetched is counted by reason and reported as a Skipped entry."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from keyscope.crawl.fetch import Fetched, Fetcher
from keyscope.crawl.links import kind_of, links, source_mapping_url
from keyscope.crawl.options import CrawlOptions
from keyscope.crawl.robots import Robots, robots_of
from keyscope.crawl.scope import Scope, normalized, origin
from keyscope.model import Skipped

# linked files that are model weights: not downloaded unless --fetch-models
MODEL_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".safetensors", ".joblib",
                  ".h5", ".hdf5", ".keras", ".onnx", ".gguf", ".tflite", ".pb", ".npy", ".npz",
                  ".mar", ".nemo")  # fmt: skip
FOLLOWED = ("html", "css", "js", "json", "sitemap")  # kinds whose links are read


@dataclass(frozen=True)
class Page:
    """One fetched answer to scan, with the source map its script named, if fetched."""

    url: str
    body: bytes
    kind: str
    map_url: str | None = None
    map_body: bytes | None = None
    captured: str | None = None  # Last-Modified, else the fetch time (ISO 8601)

_ISO = "%Y-%m-%dT%H:%M:%SZ"


def captured_at(last_modified: str | None) -> str:
    """A page's date for its timeline: its Last-Modified (an HTTP date) when it has a
    valid one, else now (when it was fetched); ISO 8601 in UTC."""
    if last_modified:
        try:
            when = parsedate_to_datetime(last_modified)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None and when.tzinfo is not None:
            return when.astimezone(UTC).strftime(_ISO)
    return datetime.now(UTC).strftime(_ISO)


@dataclass
class CrawlStats:
    """What a crawl did, for the progress line and the summary."""

    pages: int = 0  # answers received
    requests: int = 0  # requests tried (refused and failed ones too): --max-pages counts these
    bytes: int = 0
    queued: int = 0
    skipped: Counter[str] | None = None

    def __post_init__(self) -> None:
        self.skipped = Counter()


Progress = Callable[[CrawlStats], None]


class Crawler:
    """One crawl: ``pages`` yields what it fetched, in order."""

    def __init__(
        self, starts: list[str], options: CrawlOptions, fetcher: Fetcher | None = None
    ) -> None:
        self.options = options
        self.starts = [u for u in (normalized(s) for s in starts) if u]
        self.scope = Scope(options.scope, self.starts)
        self.fetcher = fetcher or Fetcher(
            allow_internal=options.allow_internal,
            timeout=options.timeout,
            interval=options.rate,
            contact=options.contact,
        )
        self.stats = CrawlStats()
        self._robots: dict[str, Robots] = {}
        self._seen: set[str] = set()
        self._queue: deque[tuple[str, int]] = deque()
        self._https: set[str] = set()  # hosts answered over HTTPS: their http links upgraded
        self._last: dict[str, float] = {}
        self._out: list[Skipped] = []  # where entries not fetched go (``pages``' list)

    def pages(self, skipped: list[Skipped], progress: Progress | None = None) -> Iterator[Page]:
        """Fetch breadth first; every URL not fetched becomes one entry in ``skipped``."""
        self._out = skipped
        for url in self.starts:
            self._enqueue(url, 0, skipped, front=False)
        while self._queue:
            url, depth = self._queue.popleft()
            self.stats.queued = len(self._queue)
            if self.stats.requests >= self.options.max_pages:
                self._skip(skipped, url, f"--max-pages {self.options.max_pages} reached")
                continue
            left = self.options.max_bytes - self.stats.bytes
            if left <= 0:
                self._skip(skipped, url, f"--max-bytes {self.options.max_bytes} reached")
                continue
            answer = self._get(url, min(left, self.options.max_response))
            if progress:
                progress(self.stats)
            if isinstance(answer, str):
                self._skip(skipped, url, f"not fetched: {answer}")
                continue
            if url.startswith("https://"):
                self._https.add(origin(url).removeprefix("https://"))
            if 300 <= answer.status < 400:
                self._redirect(answer, depth, skipped)
                continue
            if answer.status >= 400:
                self._skip(skipped, url, f"answered HTTP {answer.status}")
                continue
            page = self._page(answer, depth, skipped)
            if page is not None:
                yield page

    def _page(self, answer: Fetched, depth: int, skipped: list[Skipped]) -> Page | None:
        url = answer.url
        if answer.truncated:
            cap = len(answer.body)
            self._skip(skipped, url, f"larger than {cap} bytes: only the first {cap} bytes scanned")
        if answer.note:
            self._skip(skipped, url, answer.note)
        kind = kind_of(answer.headers.get("content-type"), url, answer.body)
        if kind in FOLLOWED and depth < self.options.depth:
            found = links(kind, answer.body)
            base = normalized(found.base, url) if found.base else url
            for link in found.urls:
                target = normalized(link, base or url)
                if target is not None:
                    self._enqueue(target, depth + 1, skipped, front=False)
        map_url = map_body = None
        if kind in ("js", "css"):
            named = answer.headers.get("sourcemap") or answer.headers.get("x-sourcemap")
            named = named or source_mapping_url(answer.body)
            if named and not named.startswith("data:"):
                map_url = normalized(named, url)
                if map_url is not None:
                    map_body = self._fetch_map(map_url, skipped)
            elif named:
                map_url, map_body = url + " (inline map)", _inline_map(named)
        return Page(url, answer.body, kind, map_url if map_body is not None else None, map_body,
                    captured_at(answer.headers.get("last-modified")))

    def _fetch_map(self, url: str, skipped: list[Skipped]) -> bytes | None:
        """The source map at ``url`` (fetched now, with its script), if allowed."""
        if url in self._seen:
            return None
        self._seen.add(url)
        reason = self._refusal(url)
        if reason is not None:
            self._skip(skipped, url, reason)
            return None
        left = self.options.max_bytes - self.stats.bytes
        if self.stats.requests >= self.options.max_pages or left <= 0:
            self._skip(skipped, url, "source map not fetched: --max-pages or --max-bytes reached")
            return None
        answer = self._get(url, min(left, self.options.max_response))
        if isinstance(answer, str) or answer.status != 200:
            why = answer if isinstance(answer, str) else f"answered HTTP {answer.status}"
            self._skip(skipped, url, f"source map not fetched: {why}")
            return None
        return answer.body

    def _redirect(self, answer: Fetched, depth: int, skipped: list[Skipped]) -> None:
        location = answer.headers.get("location")
        target = normalized(location, answer.url) if location else None
        if target is None:
            self._skip(skipped, answer.url, f"redirect ({answer.status}) without a usable Location")
            return
        if not self.scope.admits(target):
            why = f"redirect from {answer.url} leaves the --scope: not followed"
            self._skip(skipped, target, why)
            return
        self._enqueue(target, depth, skipped, front=True)

    def _enqueue(self, url: str, depth: int, skipped: list[Skipped], *, front: bool) -> None:
        if url.startswith("http://"):
            host = url[7:].split("/", 1)[0]
            if host in self._https:  # HTTPS preferred where the host speaks it
                url = "https://" + url[7:]
        if url in self._seen:
            return
        self._seen.add(url)
        reason = self._refusal(url)
        if reason is None and not self.options.fetch_models and _is_model(url):
            reason = "model file not downloaded (--fetch-models downloads and judges it)"
        if reason is not None:
            self._skip(skipped, url, reason)
            return
        if front:
            self._queue.appendleft((url, depth))
        else:
            self._queue.append((url, depth))

    def _refusal(self, url: str) -> str | None:
        """Why ``url`` may not be requested: out of scope, or disallowed by robots.txt."""
        if not self.scope.admits(url):
            return f"outside the --scope {self.scope.kind}: not requested"
        robots = self._robots_of(origin(url))
        if not robots.allows(url):
            return robots.note or "disallowed by robots.txt: not requested"
        return None

    def _robots_of(self, site_origin: str) -> Robots:
        robots = self._robots.get(site_origin)
        if robots is None:
            robots = robots_of(site_origin, self._get)
            self._robots[site_origin] = robots
            if self.options.depth < 1:
                return robots
            # the sitemaps it names, and the usual one, are one link away from the start
            for sitemap in robots.sitemaps():
                target = normalized(sitemap, site_origin + "/")
                if target is not None:
                    self._enqueue(target, 1, self._out, front=False)
            usual = site_origin + "/sitemap.xml"  # asked for only where it may be
            if self.scope.admits(usual) and robots.allows(usual):
                self._enqueue(usual, 1, self._out, front=False)
        return robots

    def _get(self, url: str, cap: int) -> Fetched | str:
        """One request, counted, after the host's Crawl-delay when it asks for more than
        --rate (the transport keeps --rate itself)."""
        host = origin(url)
        robots = self._robots.get(host)
        extra = (robots.delay() - self.options.rate) if robots else 0.0
        if extra > 0 and host in self._last:
            wait = self._last[host] + extra - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, 60.0))
        answer = self.fetcher.get(url, cap)
        self._last[host] = time.monotonic()
        self.stats.requests += 1
        if not isinstance(answer, str):
            self.stats.pages += 1
            self.stats.bytes += len(answer.body)
        return answer

    def _skip(self, skipped: list[Skipped], url: str, reason: str) -> None:
        assert self.stats.skipped is not None
        self.stats.skipped[_reason_kind(reason)] += 1
        skipped.append(Skipped(url, reason))


def _is_model(url: str) -> bool:
    return url.split("?", 1)[0].lower().endswith(MODEL_SUFFIXES)


def _inline_map(named: str) -> bytes | None:
    from keyscope.crawl.links import decode_data

    head, _, payload = named.partition(",")
    return decode_data(head.encode(), payload.encode())


def _reason_kind(reason: str) -> str:
    """The summary's line for a reason: its text before any detail."""
    if "robots.txt could not be read" in reason or "robots.txt answered" in reason:
        return "where robots.txt could not be read"
    for key in ("robots.txt", "--scope", "--max-pages", "--max-bytes", "model file",
                "larger than", "did not answer", "HTTP", "source map"):  # fmt: skip
        if key in reason:
            return {
                "robots.txt": "disallowed by robots.txt",
                "--scope": "outside the scope",
                "--max-pages": "--max-pages reached",
                "--max-bytes": "--max-bytes reached",
                "model file": "model files not downloaded",
                "larger than": "cut at the size limit",
                "did not answer": "timed out",
                "HTTP": "HTTP errors",
                "source map": "source maps not fetched",
            }[key]
    return "not fetched (other reasons)"
