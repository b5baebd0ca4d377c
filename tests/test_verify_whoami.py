"""The generic "who am I" bearer check (verify/whoami.py) against a loopback HTTP
server that checks the token, wired into a provider with one table entry; and the
parts of the AWS and Google checks that need no server: named endpoints, the RSA
key reader, the plans' refusals."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

import keyscope
from keyscope import verify
from keyscope.model import ProbeResult
from keyscope.providers import registry
from keyscope.verify.endpoints import endpoint_names, parse_endpoint
from keyscope.verify.guard import parse_internal_hosts
from keyscope.verify.rsakeys import certificate_public, private_key_public
from keyscope.verify.transport import Request, Response, VerifyOptions, aimed
from keyscope.verify.whoami import WHOAMI, whoami_judge, whoami_requests
from tests.gcsserver import certificate_of
from tests.test_providers import TOKEN, ToyProvider, ToyToken
from tests.tokens import slack_webhook, tokens

IDENTITY = {"name": "alice", "type": "user",
            "auth": {"accessToken": {"role": "write", "displayName": "ci-upload"}}}


class _Platform(http.server.BaseHTTPRequestHandler):
    """Answers GET /api/whoami-v2: 200 with an identity for TOKEN, 401 otherwise."""

    seen: ClassVar[list[tuple[str, str, str | None]]] = []
    accepted: ClassVar[str] = TOKEN

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _handle(self) -> None:
        auth = self.headers.get("Authorization")
        type(self).seen.append((self.command, self.path, auth))
        good = self.command == "GET" and self.path == "/api/whoami-v2" and \
            auth == f"Bearer {type(self).accepted}"
        body = json.dumps(IDENTITY if good else {"error": "Invalid credentials"}).encode()
        self.send_response(200 if good else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _handle


@pytest.fixture
def platform() -> Iterator[str]:
    _Platform.seen.clear()
    _Platform.accepted = TOKEN
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Platform)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class HubProvider(ToyProvider):
    """The toy provider's tokens checked as Hugging Face tokens: one table entry."""

    def plan(self, credential: ToyToken, account: str | None, deep: bool) -> list[Request] | str:
        return whoami_requests("huggingface", credential.secret)

    def judge(self, credential: ToyToken, request: Request, response: Response,
              now: datetime) -> ProbeResult:
        return whoami_judge("huggingface", request, response)


@pytest.fixture
def hub() -> Iterator[HubProvider]:
    provider = HubProvider()
    registry.register(provider)
    yield provider
    registry.unregister(provider)


def options(base: str, tmp_path: Path) -> VerifyOptions:
    return VerifyOptions(allow_internal=parse_internal_hosts(base.split("//")[1]),
                         endpoints=(("huggingface", base),), per_host_interval=0.0,
                         timeout=5.0, audit_log=tmp_path / "audit.jsonl")


def test_a_live_token_names_its_owner(hub: HubProvider, platform: str, tmp_path: Path) -> None:
    [e] = keyscope.explain(TOKEN, verify=options(platform, tmp_path))
    v = e.verification
    assert v is not None and (v.status, v.live) == ("live", True)
    assert v.probes[0].facts == {"user": "alice", "type": "user", "tokenRole": "write",
                                 "tokenName": "ci-upload"}
    assert "alice" in v.summary
    assert _Platform.seen == [("GET", "/api/whoami-v2", f"Bearer {TOKEN}")]
    logged = (tmp_path / "audit.jsonl").read_text()
    assert TOKEN not in logged + json.dumps([p.url for p in v.probes]) + v.summary
    assert f"{platform}/api/whoami-v2" in logged


def test_a_refused_token_is_dead(hub: HubProvider, platform: str, tmp_path: Path) -> None:
    other = "toytok_" + "7a" * 12
    [e] = keyscope.explain(other, verify=options(platform, tmp_path))
    v = e.verification
    assert v is not None and (v.status, v.live, v.probes[0].http_status) == (
        "key-unknown", False, 401)
    assert [(m, p) for m, p, _ in _Platform.seen] == [("GET", "/api/whoami-v2")]


def test_the_notice_names_the_endpoint_never_the_token(hub: HubProvider, platform: str) -> None:
    target = verify.Target(ToyToken(TOKEN), None, "fp")  # type: ignore[arg-type]
    notice = verify.plan_notice([target], VerifyOptions())
    assert "GET https://huggingface.co/api/whoami-v2  (huggingface who am I" in notice
    assert TOKEN not in notice
    aimed_notice = verify.plan_notice(
        [target], VerifyOptions(endpoints=(("huggingface", platform),)))
    assert f"GET {platform}/api/whoami-v2" in aimed_notice


def test_a_real_hugging_face_token_is_checked_by_the_built_in_provider(
    platform: str, tmp_path: Path
) -> None:
    """The platform table's Hugging Face row and WHOAMI's agree: the built-in provider
    sends the who-am-I request; a token the server refuses is dead. An OpenAI admin key
    (whose row names another request) and a webhook URL send nothing."""
    hf = tokens()["hf-user-token"]
    _Platform.accepted = hf
    [e] = keyscope.explain(hf, verify=options(platform, tmp_path))
    v = e.verification
    assert v is not None and (v.status, v.live) == ("live", True)
    assert v.probes[0].facts["user"] == "alice"
    other = tokens()["hf-user-token"]
    [e] = keyscope.explain(other, verify=options(platform, tmp_path))
    assert e.verification is not None and e.verification.status == "key-unknown"
    assert [p for _, p, _ in _Platform.seen] == ["/api/whoami-v2"] * 2
    for value in (tokens()["openai-admin-key"], slack_webhook()):
        [e] = keyscope.explain(value, verify=options(platform, tmp_path))
        assert e.verification is not None and e.verification.status == "not-verifiable"
    assert len(_Platform.seen) == 2


@pytest.mark.parametrize("name", sorted(WHOAMI))
def test_every_table_entry_is_an_https_request_to_a_named_endpoint(name: str) -> None:
    entry = WHOAMI[name]
    facts = {"workspace": "dbc-1.cloud.databricks.com", "username": "u"}
    [request] = whoami_requests(name, "tok-" + "9" * 30, facts)  # type: ignore[misc]
    assert request.method in ("GET", "POST") and request.url.startswith("https://")
    assert "tok-" not in request.url + request.shown_url + request.notice
    base = entry.base.replace("WORKSPACE", facts["workspace"])
    assert request.endpoint == (entry.endpoint_name, base)
    assert entry.endpoint_name in endpoint_names()


def test_judge_picks_fields_and_reads_statuses() -> None:
    [request] = whoami_requests("github", "ghp_x")  # type: ignore[misc]
    live = whoami_judge("github", request, Response(
        200, {"x-oauth-scopes": "repo, read:org"}, json.dumps({"login": "bob", "id": 7}).encode()))
    assert (live.status, live.facts) == ("live", {"user": "bob", "userId": "7",
                                                  "scopes": "repo, read:org"})
    # GitHub's 403 is a rate limit, not a verdict; a 401 is.
    assert whoami_judge("github", request, Response(403, {}, b"")).status == "denied"
    assert whoami_judge("github", request, Response(401, {}, b"")).status == "key-unknown"
    [hf] = whoami_requests("huggingface", "hf_x")  # type: ignore[misc]
    assert whoami_judge("huggingface", hf, Response(200, {}, b"not json")).facts == {}


# --- named endpoints -------------------------------------------------------------------------


def test_parse_endpoint() -> None:
    assert parse_endpoint("aws-sts=https://sts.eu-west-1.amazonaws.com/") == (
        "aws-sts", "https://sts.eu-west-1.amazonaws.com")
    for bad in ("aws-sts", "unknown=https://x", "aws-sts=ftp://x", "aws-sts=https://x/?a=1",
                "aws-sts=https://user@x", "gcp-certs=https://bad host"):
        with pytest.raises(ValueError):
            parse_endpoint(bad)


def test_aimed_replaces_only_a_named_endpoint() -> None:
    named = Request("p", "GET", "https://sts.amazonaws.com/x?y", "https://sts.amazonaws.com/x",
                    endpoint=("aws-sts", "https://sts.amazonaws.com"))
    to = (("aws-sts", "http://127.0.0.1:9"),)
    assert aimed(named, to).url == "http://127.0.0.1:9/x?y"
    assert aimed(named, to).shown_url == "http://127.0.0.1:9/x"
    assert aimed(named, ()) == named
    carried = Request("p", "GET", "https://bucket.s3.amazonaws.com/k", "https://…")
    assert aimed(carried, to) == carried  # a URL the credential carries is never moved


# --- the RSA key reader ----------------------------------------------------------------------


def test_rsa_public_key_of_private_keys_and_certificates() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    expected = (numbers.n, numbers.e)
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
    pkcs1 = key.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()).decode()
    assert private_key_public(pkcs8) == private_key_public(pkcs1) == expected
    assert private_key_public("".join(pkcs8.splitlines()[1:-1])) == expected
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    _, cert = certificate_of(pem, "a@b.iam.gserviceaccount.com")
    assert certificate_public(cert) == expected
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert certificate_public(certificate_of(other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode(), "a@b")[1]) != expected
    ec_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    assert private_key_public(ec_key) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_rsa_reader_never_crashes_on_garbage(data: bytes) -> None:
    assert private_key_public(data) is None or isinstance(private_key_public(data), tuple)
    assert certificate_public(data) is None or isinstance(certificate_public(data), tuple)

