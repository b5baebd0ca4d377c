"""One GET through the verify transport (``verify/transport.py``: the URL guard,
internal addresses refused unless allowed, the connection to the checked address,
the per-host delay), with the crawler's User-Agent, compressed answers decoded and
bodies read to a cap. Redirects are not followed here: the crawler decides."""

from __future__ import annotations

from dataclasses import dataclass

from keyscope import __version__
from keyscope.unpack.httpbody import decode
from keyscope.verify.guard import InternalHost
from keyscope.verify.transport import NotSent, Request, Resolver, Transport, VerifyOptions
from keyscope.verify.transport import system_resolver as system_resolver

CONTACT = "https://github.com/keyscope/keyscope"  # where site owners read what it is


def user_agent(contact: str | None) -> str:
    """``keyscope-crawler/VERSION (+CONTACT)``: names the tool, and whom to ask."""
    return f"keyscope-crawler/{__version__} (+{contact or CONTACT})"


def accepted_encodings() -> str:
    """What the crawler can decode: gzip and deflate, br when brotli is installed."""
    try:
        import brotli  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
    except ImportError:
        return "gzip, deflate"
    return "gzip, deflate, br"


@dataclass(frozen=True)
class Fetched:
    """An answer: status, headers (lower-case names), the decoded body (at most the
    cap) and whether the body was longer than the cap."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool = False
    note: str | None = None  # why the body is as sent (a coding keyscope cannot undo)


class Fetcher:
    """GET requests, one at a time, ``interval`` seconds apart per host."""

    def __init__(
        self,
        *,
        allow_internal: bool | tuple[InternalHost, ...],
        timeout: float,
        interval: float,
        contact: str | None,
        resolver: Resolver = system_resolver,
    ) -> None:
        options = VerifyOptions(
            allow_internal=allow_internal,
            timeout=timeout,
            per_host_interval=interval,
            concurrency=1,
            max_per_host=1 << 62,  # the crawl's own --max-pages bounds it
            plain_http=True,
        )
        self.transport = Transport(options, resolver)
        self.headers = (
            ("User-Agent", user_agent(contact)),
            ("Accept-Encoding", accepted_encodings()),
            ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
        )
        self.interval = interval

    def get(self, url: str, cap: int) -> Fetched | str:
        """The answer to GET ``url`` (a redirect is an answer), or why there is none."""
        request = Request("crawl", "GET", url, url, self.headers, max_body=cap + 1)
        try:
            response = self.transport.send(request)
        except NotSent as exc:
            return exc.detail
        body = response.body
        truncated = len(body) > cap
        note = None
        coding = response.headers.get("content-encoding")
        if coding and not truncated:
            decoded = decode(body, coding, cap)
            if isinstance(decoded, str):
                note = decoded
            else:
                body = decoded
        elif coding:
            note = f"{coding} body cut at {cap} bytes: scanned as sent"
        return Fetched(url, response.status, response.headers, body[:cap], truncated, note)
