"""A generic "who am I" check for platform tokens: one request to a platform's
documented identity endpoint, as data (one ``WhoAmI`` per platform and form).

The token travels only in a header: a bearer header (``prefix`` + token) or HTTP
basic auth (``api:KEY`` for W&B, ``USERNAME:KEY`` for Kaggle, the user name read
beside the key); never in a URL, a notice or the audit log. Most checks are a GET;
an API that takes its read-only identity call as a POST (Slack's ``auth.test``,
W&B's GraphQL ``viewer`` query) gets that POST with a fixed body that reads nothing
of the owner's data. A platform whose endpoint lives on the account's own host
(a Databricks workspace) is checked only when that host was read beside the token.

200 means live unless the entry names a JSON field (``ok``) that must be true or
non-null: Slack answers 200 with ``{"ok": false, "error": "invalid_auth"}`` for a
dead token, W&B answers ``{"data": {"viewer": null}}``. The identity fields named
in the entry are picked from the JSON answer; a status in ``dead`` means the token
is refused. A provider wires a token kind with ``whoami_requests(NAME, token,
facts)`` in its ``plan`` and ``whoami_judge`` in its ``judge``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyscope.verify.interface import ProbeResult, probe_result
from keyscope.verify.transport import Request, Response

MAX_FACT = 200  # characters of one identity field kept
WORKSPACE = "WORKSPACE"  # in ``base``: the account's own host, read beside the token
WORKSPACE_UNKNOWN = (
    "not verifiable: workspace unknown (the token's workspace URL, DATABRICKS_HOST or "
    "a host = line, was not found beside it); nothing was sent"
)
USERNAME_UNKNOWN = "not verifiable: the user name that goes with the key was not found"
# Slack's error codes for a token it does not accept (auth.test, "Errors").
_SLACK_DEAD = ("invalid_auth", "not_authed", "account_inactive", "token_revoked",
               "token_expired", "no_permission", "org_login_required", "ekm_access_denied")
_WANDB_VIEWER = b'{"query": "query Viewer { viewer { id username entity } }"}'


@dataclass(frozen=True)
class WhoAmI:
    """How one platform says whose token it is."""

    name: str  # also the --verify-endpoint NAME (unless ``endpoint`` names another)
    base: str  # scheme://host of the service (``https://WORKSPACE``: the account's host)
    path: str  # the identity endpoint below it
    method: str = "GET"  # POST only for a read-only call the API takes as a POST
    body: bytes = b""  # that POST's fixed body: a query, never data of the owner
    header: str = "Authorization"
    prefix: str = "Bearer "  # written before the token in ``header``
    # HTTP basic auth instead of ``prefix``: the user name ("api"), or "" for the
    # token's ``username`` fact (read beside the key)
    basic: str | None = None
    extra: tuple[tuple[str, str], ...] = ()  # other headers the endpoint requires
    # (dotted JSON path, fact name): identity fields kept from a 200 answer
    fields: tuple[tuple[str, str], ...] = ()
    header_facts: tuple[tuple[str, str], ...] = ()  # (answer header, fact name)
    dead: tuple[int, ...] = (401, 403)  # statuses that mean the token is refused
    # A 200 answer is live only when this JSON field is true or not null; otherwise
    # ``error`` (a dotted path) names why, and a value in ``dead_errors`` means refused.
    ok: str | None = None
    error: str = "error"
    dead_errors: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()  # token kinds this form is for (): the platform's default
    endpoint: str = ""  # the --verify-endpoint NAME when several forms share a service
    notice: str = "logged by the platform with your IP address"

    @property
    def endpoint_name(self) -> str:
        return self.endpoint or self.name


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
        # auth.test: "checks authentication and tells you who you are"; no scope
        # needed, no side effect. Slack answers 200 for a dead token too.
        WhoAmI(
            "slack",
            "https://slack.com",
            "/api/auth.test",
            method="POST",
            extra=(("Content-Type", "application/x-www-form-urlencoded"),),
            fields=(("user", "user"), ("user_id", "userId"), ("team", "team"),
                    ("team_id", "teamId"), ("url", "workspaceUrl")),
            dead=(401,),
            ok="ok",
            dead_errors=_SLACK_DEAD,
        ),
        # The GraphQL viewer query (W&B's SDK's own "who am I"), basic auth api:KEY.
        WhoAmI(
            "wandb",
            "https://api.wandb.ai",
            "/graphql",
            method="POST",
            body=_WANDB_VIEWER,
            basic="api",
            extra=(("Content-Type", "application/json"),),
            fields=(("data.viewer.username", "user"), ("data.viewer.entity", "entity")),
            dead=(401,),
            ok="data.viewer",
            error="errors.0.message",
        ),
        # Kaggle documents no who-am-I: the competitions list, read-only, with the
        # kaggle.json's username:key (a KGAT_ token as a bearer token).
        WhoAmI(
            "kaggle",
            "https://www.kaggle.com",
            "/api/v1/competitions/list",
            basic="",
            kinds=("kaggle-api-key",),
            dead=(401,),
        ),
        WhoAmI(
            "kaggle-token",
            "https://www.kaggle.com",
            "/api/v1/competitions/list",
            kinds=("kaggle-api-token",),
            endpoint="kaggle",
            dead=(401,),
        ),
        WhoAmI(
            "databricks",
            f"https://{WORKSPACE}",
            "/api/2.0/preview/scim/v2/Me",
            fields=(("userName", "user"), ("id", "userId"), ("displayName", "name")),
            notice="logged in the workspace's audit log with your IP address",
        ),
    )
}


def whoami_for(kind: str, platform: str) -> WhoAmI | None:
    """The check of a token kind: the entry made for that kind, else its platform's."""
    for entry in WHOAMI.values():
        if kind in entry.kinds:
            return entry
    default = WHOAMI.get(platform)
    return default if default is not None and not default.kinds else None


def whoami_requests(
    name: str, token: str, facts: Mapping[str, str] | None = None
) -> list[Request] | str:
    """The one identity request for a token of the entry ``name`` (a WHOAMI key), or
    why none can be sent (a string): the workspace or user name it needs is unknown.
    ``facts`` are the token's offline facts (``workspace``, ``username``)."""
    entry = WHOAMI[name]
    facts = facts or {}
    base = entry.base
    if WORKSPACE in base:
        workspace = facts.get("workspace")
        if not workspace:
            return WORKSPACE_UNKNOWN
        base = base.replace(WORKSPACE, workspace)
    if entry.basic is not None:
        user = entry.basic or facts.get("username", "")
        if not user:
            return USERNAME_UNKNOWN
        pair = base64.b64encode(f"{user}:{token}".encode()).decode()
        auth = ("Authorization", f"Basic {pair}")
    else:
        auth = (entry.header, entry.prefix + token)
    url = base + entry.path
    return [
        Request(
            f"{entry.endpoint_name} who am I",
            entry.method,
            url,
            url,
            (*entry.extra, auth),
            endpoint=(entry.endpoint_name, base),
            keep=None if entry.fields or entry.ok else 0,
            notice=entry.notice,
            body=entry.body,
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
            answer: Any = json.loads(response.body) if entry.fields or entry.ok else None
        except ValueError:
            answer = None
        if entry.ok is not None and not _truthy(answer, entry.ok):
            error = _pick(answer, entry.error)
            if answer is None:
                return result("unexpected", "the answer is not JSON")
            if entry.dead_errors and error not in entry.dead_errors:
                return result("unexpected", f"the platform answered {error or 'not ok'}")
            return result("key-unknown", f"the platform refused the token ({error or 'no user'})")
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


def _walk(answer: Any, path: str) -> Any:
    """The value at a dotted path of a JSON answer (a number indexes a list)."""
    for part in path.split("."):
        if isinstance(answer, list) and part.isdigit():
            answer = answer[int(part)] if int(part) < len(answer) else None
        elif isinstance(answer, dict):
            answer = answer.get(part)
        else:
            return None
    return answer


def _truthy(answer: Any, path: str) -> bool:
    value = _walk(answer, path)
    return value is not None and value is not False


def _pick(answer: Any, path: str) -> str | None:
    """The scalar (or list of scalars) at a dotted path of a JSON answer, as text."""
    answer = _walk(answer, path)
    if isinstance(answer, list):
        items = [str(a) for a in answer[:20] if isinstance(a, str | int | float | bool)]
        return ",".join(items)[:MAX_FACT] or None
    if isinstance(answer, str | int | float | bool):
        return str(answer)[:MAX_FACT]
    return None
