"""A generic "who am I" check for bearer tokens: one GET of a platform's documented
identity endpoint with the token in a header, as data (one ``WhoAmI`` per platform).

200 means live, and the identity fields named in the entry are picked from the JSON
answer; a status in ``dead`` (401, and 403 where the platform uses it for an unknown
token) means the token is refused. A provider wires a token kind with
``whoami_requests(NAME, token)`` in its ``plan`` and ``whoami_judge`` in its ``judge``.
The token travels only in the header: never in a URL, a notice or the audit log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from keyscope.verify.interface import ProbeResult, probe_result
from keyscope.verify.transport import Request, Response

MAX_FACT = 200  # characters of one identity field kept


@dataclass(frozen=True)
class WhoAmI:
    """How one platform says whose token it is."""

    name: str  # also the --verify-endpoint NAME
    base: str  # scheme://host of the service
    path: str  # the identity endpoint below it
    header: str = "Authorization"
    prefix: str = "Bearer "  # written before the token in ``header``
    extra: tuple[tuple[str, str], ...] = ()  # other headers the endpoint requires
    # (dotted JSON path, fact name): identity fields kept from a 200 answer
    fields: tuple[tuple[str, str], ...] = ()
    header_facts: tuple[tuple[str, str], ...] = ()  # (answer header, fact name)
    dead: tuple[int, ...] = (401, 403)  # statuses that mean the token is refused
    notice: str = "logged by the platform with your IP address"


WHOAMI: dict[str, WhoAmI] = {
    e.name: e
    for e in (
        WhoAmI(
            "huggingface",
            "https://huggingface.co",
            "/api/whoami-v2",
            fields=(
                ("name", "user"),
                ("type", "type"),
                ("auth.accessToken.role", "tokenRole"),
                ("auth.accessToken.displayName", "tokenName"),
            ),
        ),
        WhoAmI("openai", "https://api.openai.com", "/v1/models", dead=(401,)),
        WhoAmI(
            "anthropic",
            "https://api.anthropic.com",
            "/v1/models",
            header="x-api-key",
            prefix="",
            extra=(("anthropic-version", "2023-06-01"),),
            dead=(401,),  # 403 is permission_error: the key authenticated
        ),
        WhoAmI(
            "replicate",
            "https://api.replicate.com",
            "/v1/account",
            fields=(("username", "user"), ("type", "type")),
        ),
        WhoAmI(
            "github",
            "https://api.github.com",
            "/user",
            extra=(("Accept", "application/vnd.github+json"),),
            fields=(("login", "user"), ("id", "userId")),
            header_facts=(("x-oauth-scopes", "scopes"),),
            dead=(401,),  # 403: rate limited or blocked, not a verdict on the token
        ),
        WhoAmI(
            "gitlab",
            "https://gitlab.com",
            "/api/v4/personal_access_tokens/self",
            header="PRIVATE-TOKEN",
            prefix="",
            fields=(
                ("name", "tokenName"),
                ("scopes", "scopes"),
                ("expires_at", "expiresAt"),
                ("user_id", "userId"),
            ),
        ),
        WhoAmI(
            "npm", "https://registry.npmjs.org", "/-/whoami", fields=(("username", "user"),)
        ),
    )
}


def whoami_requests(name: str, token: str) -> list[Request]:
    """The one identity request for a token of the platform ``name`` (a WHOAMI key)."""
    entry = WHOAMI[name]
    url = entry.base + entry.path
    headers = (*entry.extra, (entry.header, entry.prefix + token))
    return [
        Request(
            f"{name} who am I",
            "GET",
            url,
            url,
            headers,
            endpoint=(name, entry.base),
            keep=None if entry.fields else 0,
            notice=entry.notice,
        )
    ]


def whoami_judge(name: str, request: Request, response: Response) -> ProbeResult:
    """What the platform's answer to the identity request means."""
    entry = WHOAMI[name]
    status = response.status
    facts: dict[str, str] = {}

    def result(outcome: str, why: str | None = None) -> ProbeResult:
        return probe_result(request, outcome, status, None, why, facts)

    if status == 200:
        try:
            answer: Any = json.loads(response.body) if entry.fields else None
        except ValueError:
            answer = None
        for path, fact in entry.fields:
            value = _pick(answer, path)
            if value is not None:
                facts[fact] = value
        for header, fact in entry.header_facts:
            if header in response.headers:
                facts[fact] = response.headers[header][:MAX_FACT]
        who = facts.get("user") or facts.get("tokenName")
        return result("live", f"the token belongs to {who}" if who else None)
    if status in entry.dead:
        return result("key-unknown", "the platform refused the token")
    if 300 <= status < 400:
        return result("redirect-refused", "redirect not followed")
    if status in (401, 403, 429):
        return result("denied")
    return result("unexpected")


def _pick(answer: Any, path: str) -> str | None:
    """The scalar (or list of scalars) at a dotted path of a JSON answer, as text."""
    for part in path.split("."):
        if not isinstance(answer, dict):
            return None
        answer = answer.get(part)
    if isinstance(answer, list):
        items = [str(a) for a in answer[:20] if isinstance(a, str | int | float | bool)]
        return ",".join(items)[:MAX_FACT] or None
    if isinstance(answer, str | int | float | bool):
        return str(answer)[:MAX_FACT]
    return None
