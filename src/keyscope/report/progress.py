"""A one-line progress display on a terminal: files, bytes, findings, rate."""

from __future__ import annotations

import time
from typing import Protocol, TextIO

from keyscope.model import Progress
from keyscope.redact import terminal_safe
from keyscope.report.text import human_bytes

MIN_INTERVAL = 0.1


class _StatusLine:
    """One line on a terminal, rewritten in place and wiped at the end."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._shown = False

    def show(self, text: str) -> None:
        self.stream.write(f"\r\033[K{terminal_safe(text)}")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


class ProgressLine(_StatusLine):
    """``scanning: files, bytes, findings, rate``, at most every MIN_INTERVAL seconds."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._last = 0.0

    def update(self, p: Progress) -> None:
        now = time.monotonic()
        if now - self._last < MIN_INTERVAL:
            return
        self._last = now
        rate = p.bytes / p.seconds if p.seconds > 0 else 0.0
        self.show(
            f"scanning: {p.files} files, {human_bytes(p.bytes)}, "
            f"{p.findings} findings, {human_bytes(rate)}/s"
        )


class CountLine(_StatusLine):
    """``checking credentials: 3/12`` on one terminal line."""

    def __init__(self, stream: TextIO, what: str) -> None:
        super().__init__(stream)
        self.what = what

    def update(self, done: int, total: int) -> None:
        self.show(f"{self.what}: {done}/{total}")


class CrawlLine(_StatusLine):
    """``crawling: 12 pages, 3.4 MB, 40 queued`` on one terminal line."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._last = 0.0

    def update(self, stats: CrawlProgress) -> None:
        now = time.monotonic()
        if now - self._last < MIN_INTERVAL:
            return
        self._last = now
        self.show(
            f"crawling: {stats.pages} pages, {human_bytes(stats.bytes)}, "
            f"{stats.queued} queued"
        )


class CrawlProgress(Protocol):
    """What the crawl line shows (``crawl.crawler.CrawlStats``)."""

    @property
    def pages(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def queued(self) -> int: ...
