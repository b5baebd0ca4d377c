"""An organisation's repositories, listed through its forge's REST API.

``github:ORG`` (``GET /orgs/ORG/repos``, a user's ``/users/NAME/repos`` when no such
organisation exists) and ``gitlab:GROUP`` (``GET /groups/GROUP/projects``, subgroups
included). The token comes from ``GITHUB_TOKEN`` / ``GITLAB_TOKEN`` and travels only
in a request header. Pages are followed through the ``Link`` header (``rel="next"``,
on the API's own host only). Rate limits are honoured: an answer that says none are
left (``X-RateLimit-Remaining: 0``, GitLab's ``RateLimit-Remaining``) makes the next
request wait for ``…-Reset``; a 403 or 429 refusal (GitHub's secondary rate limit)
is retried after its ``Retry-After`` seconds, or the reset time, or a minute.
Every request goes through ``verify/transport.py``: HTTPS, and internal addresses
only with ``--allow-internal``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from keyscope.errors import KeyscopeError
from keyscope.verify.guard import InternalHost

APIS = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4"}
FORGES = tuple(APIS)
TOKENS = {"github": "GITHUB_TOKEN", "gitlab": "GITLAB_TOKEN"}
PER_PAGE = 100
MAX_PAGES = 10_000  # 1,000,000 repositories: far past any organisation
MAX_BODY = 32 << 20  # one page of 100 repositories is well under 1 MiB
ATTEMPTS = 8  # refusals for rate limiting in a row before the listing gives up
SECONDARY_WAIT = 60.0  # GitHub: "wait at least one minute" when no header says how long
_LINK = re.compile(r'<([^>]*)>\s*;[^,]*\brel="?next"?')


@dataclass(frozen=True)
class ForgeOptions:
    """How organisations are listed."""

    include_forks: bool = False
    include_archived: bool = False
    api: str | None = None  # --forge-api: another API base (GitHub Enterprise, a test server)
    allow_internal: bool | tuple[InternalHost, ...] = False
    timeout: float = 30.0
    max_wait: float = 3600.0  # the longest rate-limit wait accepted, in seconds
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time


def list_repositories(forge: str, name: str, options: ForgeOptions) -> list[str]:
    """The clone URLs of ``name``'s repositories on ``forge`` (``github`` or
    ``gitlab``), forks and archived ones only when the options ask for them."""
    base = (options.api or APIS[forge]).rstrip("/")
    token = os.environ.get(TOKENS[forge], "")
    pager = _Pager(forge, name, base, token, options)
    urls: list[str] = []
    if forge == "github":
        query = f"?per_page={PER_PAGE}&type=all"
        try:
            repos = list(pager.items(f"{base}/orgs/{quote(name, safe='')}/repos{query}"))
        except _NotFound:
            repos = list(pager.items(f"{base}/users/{quote(name, safe='')}/repos{query}"))
        for repo in repos:
            if _wanted(repo.get("fork"), repo.get("archived"), options):
                urls.append(_url(repo.get("clone_url"), forge, name))
    else:
        archived = "" if options.include_archived else "&archived=false"
        url = (f"{base}/groups/{quote(name, safe='')}/projects?per_page={PER_PAGE}"
               f"&include_subgroups=true&order_by=id&sort=asc{archived}")  # fmt: skip
        for project in pager.items(url):
            fork = project.get("forked_from_project") is not None
            if _wanted(fork, project.get("archived"), options):
                urls.append(_url(project.get("http_url_to_repo"), forge, name))
    return urls


def _wanted(fork: object, archived: object, options: ForgeOptions) -> bool:
    return (options.include_forks or fork is not True) and (
        options.include_archived or archived is not True
    )


def _url(value: object, forge: str, name: str) -> str:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise KeyscopeError(f"{forge}:{name}: the API listed a repository without a clone URL")
    return value


class _NotFound(Exception):
    pass


class _Pager:
    """GET requests through the guarded transport, page after page."""

    def __init__(self, forge: str, name: str, base: str, token: str, options: ForgeOptions) -> None:
        from keyscope.verify.transport import Transport, VerifyOptions

        self.what = f"{forge}:{name}"
        self.options = options
        self.origin = urlsplit(base)[:2]
        self.headers: tuple[tuple[str, str], ...] = (
            ("Accept", "application/vnd.github+json" if forge == "github" else "application/json"),
        )
        if forge == "github":
            self.headers += (("X-GitHub-Api-Version", "2022-11-28"),)
        if token:
            name_ = "Authorization" if forge == "github" else "PRIVATE-TOKEN"
            self.headers += ((name_, f"Bearer {token}" if forge == "github" else token),)
        self.transport = Transport(VerifyOptions(
            allow_internal=options.allow_internal, timeout=options.timeout,
            per_host_interval=0.0, concurrency=1, max_per_host=MAX_PAGES * ATTEMPTS,
        ))  # fmt: skip
        self.resume_at = 0.0  # the clock time the rate limit allows the next request

    def items(self, url: str) -> Iterator[dict[str, Any]]:
        """Every object of every page from ``url`` on."""
        next_url: str | None = url
        for _ in range(MAX_PAGES):
            if next_url is None:
                return
            headers, body = self._get(next_url)
            try:
                page = json.loads(body)
            except ValueError:
                raise KeyscopeError(f"{self.what}: the API answered with no JSON list") from None
            if not isinstance(page, list):
                raise KeyscopeError(f"{self.what}: the API answered with no JSON list")
            yield from (item for item in page if isinstance(item, dict))
            next_url = self._next(headers.get("link", ""))
        raise KeyscopeError(f"{self.what}: more than {MAX_PAGES} pages")

    def _next(self, link: str) -> str | None:
        found = _LINK.search(link)
        if found is None:
            return None
        url = found.group(1)
        if urlsplit(url)[:2] != self.origin:  # pages stay on the API's host
            raise KeyscopeError(f"{self.what}: the API's next page is on another host")
        return url

    def _get(self, url: str) -> tuple[dict[str, str], bytes]:
        from keyscope.verify.transport import NotSent, Request

        request = Request("forge-list", "GET", url, url.split("?", 1)[0], self.headers,
                          max_body=MAX_BODY)  # fmt: skip
        for _ in range(ATTEMPTS):
            self._wait(self.resume_at - self.options.clock())
            try:
                response = self.transport.send(request)
            except NotSent as exc:
                raise KeyscopeError(f"{self.what}: {exc.detail}") from None
            headers = response.headers
            remaining, reset = _limits(headers)
            if remaining == 0 and reset is not None:
                self.resume_at = reset + 1.0
            wait = _refused_for(response.status, headers, response.body, self.resume_at,
                                self.options.clock())  # fmt: skip
            if wait is None:
                break
            self.resume_at = self.options.clock() + wait
        else:
            raise KeyscopeError(f"{self.what}: still rate limited after {ATTEMPTS} attempts")
        if response.status == 404:
            raise _NotFound
        if response.status in (401, 403):
            raise KeyscopeError(
                f"{self.what}: the API refused the request ({response.status}); "
                f"check {'GITHUB_TOKEN' if 'github' in self.what else 'GITLAB_TOKEN'}"
            )
        if response.status != 200:
            raise KeyscopeError(f"{self.what}: the API answered {response.status}")
        return headers, response.body

    def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if seconds > self.options.max_wait:
            raise KeyscopeError(
                f"{self.what}: rate limited for {seconds:.0f} s more, longer than the "
                f"{self.options.max_wait:.0f} s accepted"
            )
        self.options.sleep(seconds)


def _limits(headers: dict[str, str]) -> tuple[int | None, float | None]:
    """(requests left, the epoch second they are renewed) from GitHub's or GitLab's
    rate-limit headers."""
    remaining = headers.get("x-ratelimit-remaining", headers.get("ratelimit-remaining"))
    reset = headers.get("x-ratelimit-reset", headers.get("ratelimit-reset"))
    return _number(remaining), _number(reset)


def _number(text: str | None) -> Any:
    try:
        return None if text is None else int(text.strip())
    except ValueError:
        return None


def _refused_for(
    status: int, headers: dict[str, str], body: bytes, resume_at: float, now: float
) -> float | None:
    """Seconds to wait before asking again when the answer is a rate-limit refusal;
    None for any other answer."""
    if status not in (403, 429):
        return None
    after = _number(headers.get("retry-after"))
    if after is not None:
        return float(max(after, 0))
    remaining, _ = _limits(headers)
    if remaining == 0:
        return max(resume_at - now, 0.0)
    if status == 429 or b"rate limit" in body.lower():
        return SECONDARY_WAIT
    return None
