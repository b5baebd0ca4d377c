"""The who-am-I checks that are not a bearer GET (verify/whoami.py): Slack's
auth.test (a POST judged by its body), W&B's GraphQL viewer query (a POST with basic
auth api:KEY), Kaggle's basic auth USERNAME:KEY, and Databricks' SCIM Me on the
workspace read beside the token. Each runs through the built-in provider, verify's
guard and ``--verify-endpoint NAME=URL --allow-internal`` against one loopback HTTP
server that checks the credential, the method and the body the way the platform
does. Slack webhooks are never posted to."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

import keyscope
from keyscope.cli import main
from keyscope.verify.guard import parse_internal_hosts
from keyscope.verify.transport import Request, Response, VerifyOptions
from keyscope.verify.whoami import WHOAMI, WORKSPACE_UNKNOWN, whoami_judge, whoami_requests
from tests.tokens import HEX, rand, slack_webhook, tokens

WORKSPACE = "dbc-5a3c1e7f-90b2.cloud.databricks.com"
KAGGLE_USER = "ada-lovelace"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Accepts:
    """The credentials the fake platforms accept (everything else is refused)."""

    slack: str = ""
    wandb: str = ""
    kaggle: tuple[str, str] = ("", "")
    kaggle_token: str = ""
    databricks: str = ""
    seen: list[Seen] = field(default_factory=list)


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    user, _, key = base64.b64decode(header[6:]).decode().partition(":")
    return user, key


class _Platforms(http.server.BaseHTTPRequestHandler):
    """Slack, W&B, Kaggle and a Databricks workspace on one loopback port: each route
    answers as its platform does, and only to the method and body its API takes."""

    accepts: ClassVar[Accepts] = Accepts()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        a = type(self).accepts
        a.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
        auth = self.headers.get("Authorization")
        route = (self.command, self.path)
        if route == ("POST", "/api/auth.test"):
            # Slack: 200 either way; the body says whether the token was accepted.
            if auth == f"Bearer {a.slack}" and not body:
                return self._answer(200, {"ok": True, "url": "https://acme.slack.com/",
                                          "team": "Acme", "user": "deploy-bot",
                                          "team_id": "T0123ABCD", "user_id": "U0456EFGH"})
            return self._answer(200, {"ok": False, "error": "invalid_auth"})
        if route == ("POST", "/graphql"):
            query = json.loads(body or b"{}").get("query", "")
            if "viewer" not in query or "mutation" in query:
                return self._answer(400, {"errors": [{"message": "only the viewer query"}]})
            if _basic(auth) != ("api", a.wandb):
                return self._answer(401, {"errors": [{"message": "user is not logged in"}]})
            return self._answer(200, {"data": {"viewer": {"id": "VXNlcjox",
                                                          "username": "ada", "entity": "acme"}}})
        if route == ("GET", "/api/v1/competitions/list") and not body:
            if _basic(auth) == a.kaggle or auth == f"Bearer {a.kaggle_token}":
                return self._answer(200, [{"ref": "titanic"}])
            return self._answer(401, {"code": 401, "message": "Unauthenticated"})
        if route == ("GET", "/api/2.0/preview/scim/v2/Me") and not body:
            if auth == f"Bearer {a.databricks}":
                return self._answer(200, {"userName": "ada@acme.example", "id": "8842",
                                          "displayName": "Ada"})
            return self._answer(401, {"error_code": "401", "message": "Unauthorized"})
        return self._answer(405, {"error": f"{self.command} {self.path} is not an API call"})

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


@pytest.fixture
def platforms() -> Iterator[tuple[str, Accepts]]:
    accepts = Accepts()
    _Platforms.accepts = accepts
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Platforms)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", accepts
    server.shutdown()
    server.server_close()


def _options(base: str, tmp_path: Path) -> VerifyOptions:
    names = ("slack", "wandb", "kaggle", "databricks")
    return VerifyOptions(allow_internal=parse_internal_hosts(base.split("//")[1]),
                         endpoints=tuple((n, base) for n in names), per_host_interval=0.0,
                         timeout=5.0, audit_log=tmp_path / "audit.jsonl")


def _verify(text: str, base: str, tmp_path: Path) -> Any:
    [e] = keyscope.explain(text, verify=_options(base, tmp_path))
    assert e.verification is not None
    return e.verification


def _no_leak(secret: str, verification: Any, tmp_path: Path) -> None:
    logged = (tmp_path / "audit.jsonl").read_text() if (tmp_path / "audit.jsonl").exists() else ""
    shown = json.dumps([[p.url, p.facts, p.detail] for p in verification.probes])
    assert secret not in logged + shown + verification.summary


def test_slack_auth_test_is_judged_by_its_body(
    platforms: tuple[str, Accepts], tmp_path: Path
) -> None:
    base, accepts = platforms
    token = tokens()["slack-bot-token"]
    accepts.slack = token
    v = _verify(token, base, tmp_path)
    assert (v.status, v.live) == ("live", True)
    assert v.probes[0].facts == {"user": "deploy-bot", "userId": "U0456EFGH", "team": "Acme",
                                 "teamId": "T0123ABCD", "workspaceUrl": "https://acme.slack.com/"}
    [seen] = accepts.seen
    assert (seen.method, seen.path, seen.body) == ("POST", "/api/auth.test", b"")
    _no_leak(token, v, tmp_path)
    # A dead token: Slack still answers 200, with ok false.
    dead = tokens()["slack-user-token"]
    v = _verify(dead, base, tmp_path)
    assert (v.status, v.live, v.probes[0].http_status) == ("key-unknown", False, 200)
    assert "invalid_auth" in (v.probes[0].detail or "")
    _no_leak(dead, v, tmp_path)


def test_a_slack_error_that_is_not_about_the_token_is_not_a_verdict() -> None:
    [request] = whoami_requests("slack", "xoxb-1")  # type: ignore[misc]
    ratelimited = Response(200, {}, b'{"ok": false, "error": "ratelimited"}')
    assert whoami_judge("slack", request, ratelimited).status == "unexpected"
    assert whoami_judge("slack", request, Response(200, {}, b"<html>")).status == "unexpected"
    revoked = Response(200, {}, b'{"ok": false, "error": "token_revoked"}')
    assert whoami_judge("slack", request, revoked).status == "key-unknown"


def test_wandb_viewer_query_with_basic_auth(
    platforms: tuple[str, Accepts], tmp_path: Path
) -> None:
    base, accepts = platforms
    key = rand(HEX, 40)
    accepts.wandb = key
    v = _verify(f"WANDB_API_KEY={key}\n", base, tmp_path)
    assert (v.status, v.live) == ("live", True)
    assert v.probes[0].facts == {"user": "ada", "entity": "acme"}
    [seen] = accepts.seen
    assert (seen.method, seen.path) == ("POST", "/graphql")
    assert json.loads(seen.body)["query"].startswith("query Viewer { viewer {")
    _no_leak(key, v, tmp_path)
    new = tokens()["wandb-api-key"]  # the wandb_v1_ form, refused
    v = _verify(new, base, tmp_path)
    assert (v.status, v.probes[0].http_status) == ("key-unknown", 401)
    _no_leak(new, v, tmp_path)
    # An anonymous answer (no viewer) is a refused key, not a live one.
    [request] = whoami_requests("wandb", key)  # type: ignore[misc]
    anonymous = Response(200, {}, b'{"data": {"viewer": null}}')
    assert whoami_judge("wandb", request, anonymous).status == "key-unknown"


def test_kaggle_basic_auth_takes_the_username_from_kaggle_json(
    platforms: tuple[str, Accepts], tmp_path: Path
) -> None:
    base, accepts = platforms
    key = rand(HEX, 32)
    accepts.kaggle = (KAGGLE_USER, key)
    kaggle_json = json.dumps({"username": KAGGLE_USER, "key": key})
    v = _verify(kaggle_json, base, tmp_path)
    assert (v.status, v.live) == ("live", True)
    [seen] = accepts.seen
    assert (seen.method, seen.path, _basic(seen.headers["Authorization"])) == (
        "GET", "/api/v1/competitions/list", (KAGGLE_USER, key))
    _no_leak(key, v, tmp_path)
    # The same key under another user name is refused.
    other = json.dumps({"username": "grace-h-1906", "key": key})
    assert _verify(other, base, tmp_path).status == "key-unknown"
    # A KGAT_ token goes as a bearer token to the same endpoint (--verify-endpoint kaggle).
    kgat = tokens()["kaggle-api-token"]
    accepts.kaggle_token = kgat
    v = _verify(kgat, base, tmp_path)
    assert v.status == "live" and accepts.seen[-1].headers["Authorization"] == f"Bearer {kgat}"
    _no_leak(kgat, v, tmp_path)


def test_databricks_only_with_its_workspace(
    platforms: tuple[str, Accepts], tmp_path: Path
) -> None:
    base, accepts = platforms
    token = tokens()["databricks-token"]
    accepts.databricks = token
    cfg = f"[DEFAULT]\nhost = https://{WORKSPACE}\ntoken = {token}\n"
    v = _verify(cfg, base, tmp_path)
    assert (v.status, v.live) == ("live", True)
    assert v.probes[0].facts == {"user": "ada@acme.example", "userId": "8842", "name": "Ada"}
    [seen] = accepts.seen
    assert (seen.method, seen.path) == ("GET", "/api/2.0/preview/scim/v2/Me")
    _no_leak(token, v, tmp_path)
    # Without the workspace nothing is sent.
    v = _verify(f"DATABRICKS_TOKEN={token}\n", base, tmp_path)
    assert v.status == "not-verifiable" and "workspace unknown" in v.summary
    assert len(accepts.seen) == 1
    assert whoami_requests("databricks", token) == WORKSPACE_UNKNOWN
    [request] = whoami_requests("databricks", token, {"workspace": WORKSPACE})  # type: ignore[misc]
    assert request.url == f"https://{WORKSPACE}/api/2.0/preview/scim/v2/Me"
    assert request.endpoint == ("databricks", f"https://{WORKSPACE}")


def test_a_slack_webhook_is_never_posted_to(
    platforms: tuple[str, Accepts], tmp_path: Path
) -> None:
    base, accepts = platforms
    v = _verify(slack_webhook(), base, tmp_path)
    assert v.status == "not-verifiable" and "sends a message" in v.summary
    assert accepts.seen == []


def test_scan_verify_through_the_cli_leaks_no_token(
    platforms: tuple[str, Accepts], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``scan --verify --verify-endpoint NAME=URL --allow-internal=HOST:PORT`` over a tree
    with a kaggle.json, a .databrickscfg, a Slack token and a Slack webhook: three
    requests, each the platform's, no webhook post, and no token in any output."""
    base, accepts = platforms
    key, slack, dapi = rand(HEX, 32), tokens()["slack-bot-token"], tokens()["databricks-token"]
    hook = slack_webhook()
    accepts.kaggle, accepts.slack, accepts.databricks = (KAGGLE_USER, key), slack, dapi
    tree = tmp_path / "repo"
    (tree / ".kaggle").mkdir(parents=True)
    (tree / ".kaggle" / "kaggle.json").write_text(
        json.dumps({"username": KAGGLE_USER, "key": key}))
    (tree / ".databrickscfg").write_text(f"[DEFAULT]\nhost = https://{WORKSPACE}\n"
                                         f"token = {dapi}\n")
    (tree / "notify.py").write_text(f'SLACK_BOT_TOKEN = "{slack}"\nHOOK = "{hook}"\n')
    host = base.split("//")[1]
    args = ["scan", "--format", "json", "--verify", f"--allow-internal={host}",
            "--verify-interval", "0", "--audit-log", str(tmp_path / "a.jsonl")]
    for name in ("slack", "kaggle", "databricks"):
        args += ["--verify-endpoint", f"{name}={base}"]
    rc = main([*args, str(tree)])
    out = capsys.readouterr()
    assert rc in (0, 1), out.err
    statuses = sorted(
        (f["explanation"]["access"]["kind"], f["explanation"]["verification"]["status"])
        for f in json.loads(out.out)["findings"])
    assert statuses == [("databricks-token", "live"), ("kaggle-api-key", "live"),
                        ("slack-bot-token", "live"), ("slack-webhook", "not-verifiable")]
    assert sorted((s.method, s.path) for s in accepts.seen) == [
        ("GET", "/api/2.0/preview/scim/v2/Me"), ("GET", "/api/v1/competitions/list"),
        ("POST", "/api/auth.test")]
    logged = (tmp_path / "a.jsonl").read_text()
    basic = base64.b64encode(f"{KAGGLE_USER}:{key}".encode()).decode()
    for secret in (key, slack, dapi, hook.rsplit("/", 1)[1], basic):
        assert secret not in out.out + out.err + logged
    assert f"POST {base}/api/auth.test" in out.err  # the notice names the request


@pytest.mark.parametrize("name", sorted(WHOAMI))
def test_every_entry_sends_its_token_only_in_a_header(name: str) -> None:
    secret = "tok-" + "9" * 30
    facts = {"workspace": WORKSPACE, "username": KAGGLE_USER}
    [request] = whoami_requests(name, secret, facts)  # type: ignore[misc]
    assert isinstance(request, Request) and request.url.startswith("https://")
    assert request.method == WHOAMI[name].method
    assert secret not in request.url + request.shown_url + request.notice
    assert secret.encode() not in request.body
    sent = [v for _, v in request.headers]
    assert any(secret in v or secret in _decoded(v) for v in sent)


def _decoded(value: str) -> str:
    return base64.b64decode(value[6:]).decode() if value.startswith("Basic ") else ""
