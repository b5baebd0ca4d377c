"""robots.txt (RFC 9309) per origin, through Python's ``urllib.robotparser``: fetched
once before the origin's first page; a 4xx answer allows everything, a 5xx answer or
no answer disallows everything, as the RFC says."""

from __future__ import annotations

from collections.abc import Callable
from urllib.robotparser import RobotFileParser

from keyscope.crawl.fetch import Fetched

AGENT = "keyscope"  # the product token robots.txt groups are matched against
ROBOTS_BYTES = 512 * 1024  # the RFC's minimum a crawler must read


class Robots:
    """The rules of one origin."""

    def __init__(self, answer: Fetched | str) -> None:
        self.parser = RobotFileParser()
        self.note: str | None = None
        if isinstance(answer, str):
            self.parser.disallow_all = True  # type: ignore[attr-defined]
            self.note = f"robots.txt could not be read ({answer}): nothing fetched there"
        elif 200 <= answer.status < 300:
            self.parser.parse(answer.body.decode("utf-8", "replace").splitlines())
        elif 400 <= answer.status < 500:
            self.parser.allow_all = True  # type: ignore[attr-defined]
        else:
            self.parser.disallow_all = True  # type: ignore[attr-defined]
            self.note = f"robots.txt answered {answer.status}: nothing fetched there"

    def allows(self, url: str) -> bool:
        return self.parser.can_fetch(AGENT, url)

    def delay(self) -> float:
        """The group's Crawl-delay, 0 when none."""
        value = self.parser.crawl_delay(AGENT)
        try:
            return float(value) if value is not None else 0.0
        except (TypeError, ValueError):
            return 0.0

    def sitemaps(self) -> list[str]:
        return list(self.parser.site_maps() or [])


def robots_of(origin: str, get: Callable[[str, int], Fetched | str]) -> Robots:
    """Fetch and read ``origin``'s robots.txt (redirects are not followed: a redirect
    answers 3xx, read as no rules, i.e. everything allowed)."""
    answer = get(origin + "/robots.txt", ROBOTS_BYTES)
    if not isinstance(answer, str) and 300 <= answer.status < 400:
        return Robots(Fetched(answer.url, 404, {}, b""))
    return Robots(answer)
