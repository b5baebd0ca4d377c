"""What a crawl may do (``keyscope crawl``'s options), importable without the network
code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the verify package loads the network code
    from keyscope.verify.guard import InternalHost

SCOPES = ("same-site", "same-origin", "prefix")


@dataclass(frozen=True)
class CrawlOptions:
    """How a crawl goes: how far, how much, how fast, and where."""

    scope: str = "same-site"
    depth: int = 5  # links away from a start URL
    max_pages: int = 500  # requests in all (robots.txt, maps and redirects count)
    max_bytes: int = 256 * 1024 * 1024  # downloaded, over the whole crawl
    max_response: int = 64 * 1024 * 1024  # read of one answer (--max-file-size)
    rate: float = 1.0  # seconds between two requests to one host
    timeout: float = 10.0
    contact: str | None = None
    fetch_models: bool = False
    allow_internal: bool | tuple[InternalHost, ...] = False
