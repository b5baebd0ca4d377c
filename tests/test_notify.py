"""Alerts over HTTP, to a real receiver on loopback: the signed webhook, Slack and Teams
bodies in their documented shapes, a receiver that fails, stalls or answers 500 (a
retryable DeliveryError with nothing secret in it), the network guard, the config's
rules for secrets, and ``keyscope notify test``. The alert of a real scan never carries
the secret's bytes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import pytest

from keyscope.cli import main
from keyscope.errors import ConfigError
from keyscope.notify.config import build, load_targets, targets_from_list
from keyscope.notify.interface import DeliveryError, NotifyOptions
from keyscope.notify.payload import checked, sample_payload
from keyscope.notify.slack import SlackNotifier, slack_message
from keyscope.notify.teams import MAX_BYTES, TeamsNotifier, teams_body
from keyscope.notify.webhook import WebhookNotifier, signature, signature_valid
from keyscope.verify.transport import Transport, VerifyOptions
from tests.notify_receivers import HttpReceiver, http_receiver, leaked_alert
from tests.sdk import NOW, incident_url, new_key

LOOPBACK = NotifyOptions(allow_internal=True, timeout=1.0, interval=0.0)
HOOK_SECRET = b"webhook-signing-key-for-tests"
SLACK_PATH = "/services/T0000/B0000/slackurltokenXYZ"  # the URL is the credential


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    yield from http_receiver()


def via(options: NotifyOptions = LOOPBACK) -> Transport:
    return Transport(VerifyOptions(allow_internal=options.allow_internal,
                                   timeout=options.timeout, per_host_interval=0))


@pytest.fixture(scope="module")
def leaked(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[bytes]]:
    return leaked_alert(tmp_path_factory.mktemp("leak"))


def assert_secret_free(data: bytes, forms: list[bytes]) -> None:
    for form in forms:
        assert form not in data


def test_payload_has_the_agreed_shape(leaked: tuple[dict[str, Any], list[bytes]]) -> None:
    payload, _ = leaked
    assert payload["schema"] == "keyscope.alert/1"
    assert set(payload) >= {"trigger", "fingerprint", "provider", "kind", "account", "severity",
                            "sentence", "expires", "first_seen", "scan_id", "locations",
                            "revocation", "owners"}
    assert payload["account"] == "alertsacct" and payload["expires"] == "2051-10-06T07:09:59Z"
    assert payload["locations"][0]["location"].endswith("settings.py:1")
    assert payload["revocation"] and all(isinstance(s, str) for s in payload["revocation"])


def test_webhook_bodies_follow_the_alert_schema(
    receiver: HttpReceiver, leaked: tuple[dict[str, Any], list[bytes]]
) -> None:
    schema = json.loads(files("keyscope").joinpath("schemas/alert-v1.json").read_text())
    hook = WebhookNotifier("siem", 1, receiver.base, HOOK_SECRET, via())
    hook.send(leaked[0])
    hook.send(sample_payload(NOW))
    for got in receiver.requests:
        jsonschema.validate(json.loads(got.body), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**sample_payload(NOW), "trigger": "other"}, schema)


def test_webhook_is_signed_and_carries_no_secret(
    receiver: HttpReceiver, leaked: tuple[dict[str, Any], list[bytes]]
) -> None:
    payload, forms = leaked
    hook = WebhookNotifier("siem", 1, f"{receiver.base}/hook", HOOK_SECRET, via())
    hook.send(payload)
    (got,) = receiver.requests
    assert got.path == "/hook" and got.headers["content-type"] == "application/json"
    stamp = got.headers["x-keyscope-timestamp"]
    assert got.headers["x-keyscope-signature"] == signature(HOOK_SECRET, stamp, got.body)
    assert signature_valid(HOOK_SECRET, stamp, got.body, got.headers["x-keyscope-signature"])
    assert not signature_valid(HOOK_SECRET, stamp, got.body + b" ",
                               got.headers["x-keyscope-signature"])
    assert not signature_valid(b"other", stamp, got.body, got.headers["x-keyscope-signature"])
    old = str(int(stamp) - 600)
    assert not signature_valid(HOOK_SECRET, old, got.body, signature(HOOK_SECRET, old, got.body))
    assert got.headers["x-keyscope-event"] == "new"
    body = json.loads(got.body)
    assert body["sentence"] == payload["sentence"] and body["fingerprint"] == payload["fingerprint"]
    assert body["locations"] and body["revocation"]
    assert_secret_free(got.body + json.dumps(got.headers).encode(), forms)


def test_every_destination_leaves_the_secret_out(
    receiver: HttpReceiver, leaked: tuple[dict[str, Any], list[bytes]]
) -> None:
    payload, forms = leaked
    SlackNotifier("slack", 1, receiver.base + SLACK_PATH, via()).send(payload)
    TeamsNotifier("teams", 1, receiver.base + "/workflows/x?sig=abc", via()).send(payload)
    assert len(receiver.requests) == 2
    for got in receiver.requests:
        assert payload["sentence"].encode() in got.body
        assert_secret_free(got.body, forms)


def test_a_secret_slipped_into_a_payload_is_masked(receiver: HttpReceiver) -> None:
    url = incident_url("slippedacct", new_key())
    payload = sample_payload(NOW)
    payload["sentence"] = f"see {url}"  # an upstream bug must not leak it
    WebhookNotifier("siem", 1, receiver.base, HOOK_SECRET, via()).send(payload)
    sig = url.split("sig=", 1)[1]
    assert sig.encode() not in receiver.requests[0].body
    assert unquote(sig).encode() not in receiver.requests[0].body


@pytest.mark.parametrize(("mode", "retryable"), [("500", True), ("429", True), ("stall", True),
                                                 ("400", False), ("302", False)])
def test_failures_are_delivery_errors(receiver: HttpReceiver, mode: str, retryable: bool) -> None:
    receiver.mode = mode
    slack = SlackNotifier("team-alerts", 1, receiver.base + SLACK_PATH, via())
    with pytest.raises(DeliveryError) as caught:
        slack.send(sample_payload(NOW))
    err = caught.value
    assert err.retryable is retryable
    assert "slackurltokenXYZ" not in err.reason and "T0000" not in err.reason
    assert err.reason.startswith("team-alerts: ")
    if mode == "429":
        assert err.retry_after == 7 and "rate_limited" in err.reason
    if mode == "400":
        assert "invalid_blocks" in err.reason
    if mode == "302":
        assert "does not follow redirects" in err.reason
    if mode == "stall":
        assert "did not answer within 1 s" in err.reason


def test_a_receiver_that_is_down_is_retryable() -> None:
    from tests.notify_receivers import free_port

    hook = WebhookNotifier("siem", 1, f"http://127.0.0.1:{free_port()}/", HOOK_SECRET, via())
    with pytest.raises(DeliveryError) as caught:
        hook.send(sample_payload(NOW))
    assert caught.value.retryable


def test_the_network_guard_applies(receiver: HttpReceiver) -> None:
    closed = NotifyOptions(allow_internal=False, timeout=1.0)
    hook = WebhookNotifier("siem", 1, receiver.base, HOOK_SECRET, via(closed))
    with pytest.raises(DeliveryError) as caught:
        hook.send(sample_payload(NOW))
    assert not caught.value.retryable and "--allow-internal" in caught.value.reason
    assert receiver.requests == []


def test_an_invalid_payload_is_not_retried(receiver: HttpReceiver) -> None:
    hook = WebhookNotifier("siem", 1, receiver.base, HOOK_SECRET, via())
    payload = sample_payload(NOW)
    del payload["revocation"]
    with pytest.raises(DeliveryError, match="missing revocation") as caught:
        hook.send(payload)
    assert not caught.value.retryable and receiver.requests == []


def test_wants_compares_min_severity() -> None:
    from keyscope.model import Severity

    hook = WebhookNotifier("siem", Severity.HIGH, "https://example.com/", HOOK_SECRET, via())
    assert hook.wants({**sample_payload(NOW), "severity": "critical"})
    assert hook.wants({**sample_payload(NOW), "severity": "high"})
    assert not hook.wants({**sample_payload(NOW), "severity": "medium"})


def test_slack_message_follows_block_kit_limits() -> None:
    payload = sample_payload(NOW)
    payload["locations"] = [
        {"source": "file", "location": f"<!channel> dir/{'x' * 300}/{i}.py:1", "commit": None,
         "author": None}
        for i in range(200)
    ]
    payload["owners"] = [{"name": "@acme/ops", "email": None, "via": ["x"]}]
    msg = slack_message(checked(payload))
    assert isinstance(msg["text"], str) and msg["text"]
    blocks = msg["blocks"]
    assert 0 < len(blocks) <= 50
    assert {b["type"] for b in blocks} <= {"header", "section", "context", "divider"}
    header = blocks[0]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert len(header["text"]["text"]) <= 150
    for b in blocks[1:]:
        if "text" in b:
            assert b["text"]["type"] == "mrkdwn" and len(b["text"]["text"]) <= 3000
        for f in b.get("fields", []):
            assert f["type"] == "mrkdwn" and len(f["text"]) <= 2000
        assert len(b.get("fields", [])) <= 10
    text = json.dumps(msg)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "@acme/ops" in text


def test_teams_card_is_an_adaptive_card_under_28_kb() -> None:
    payload = sample_payload(NOW)
    payload["locations"] = [
        {"source": "git", "location": f"src/{'y' * 200}/{i}.py:3", "commit": "a" * 40,
         "author": "Alice"}
        for i in range(2000)
    ]
    body = teams_body(checked(payload))
    assert len(body) <= MAX_BYTES
    msg = json.loads(body)
    assert msg["type"] == "message"
    (attachment,) = msg["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    kinds = {b["type"] for b in card["body"]}
    assert kinds <= {"TextBlock", "FactSet"}
    texts = [b["text"] for b in card["body"] if b["type"] == "TextBlock"]
    assert payload["sentence"] in texts
    assert any("more (see keyscope's report)" in t for t in texts)


# --- the config file -------------------------------------------------------------


def entries(*tables: dict[str, Any]) -> list[dict[str, Any]]:
    return list(tables)


@pytest.mark.parametrize(("entry", "message"), [
    ({"kind": "webhook", "url": "https://x.example/h", "secret": "s3cret"},
     "'secret' would keep a secret in the file; .* secret-env"),
    ({"kind": "email", "host": "h", "from": "a@b.example", "to": "c@d.example",
      "password": "pw"}, "password-env"),
    ({"kind": "slack", "url": "https://hooks.slack.com/services/T/B/x"}, "url-env"),
    ({"kind": "teams", "url": "https://x.logic.azure.com/w?sig=abc"}, "url-env"),
    ({"kind": "webhook", "url": "https://h.example/x?token=abc", "secret-env": "S"},
     "this URL holds a credential"),
    ({"kind": "webhook", "url": "https://user:pw@h.example/x", "secret-env": "S"},
     "this URL holds a credential"),
    ({"kind": "webhook", "url": "https://hooks.slack.com/services/x", "secret-env": "S"},
     "this URL holds a credential"),
    ({"kind": "webhook", "url": "http://siem.example/x", "secret-env": "S"},
     "plain http:// goes only to a loopback address"),
    ({"kind": "webhook", "url": "https://h.example/x"}, "secret-env is required"),
    ({"kind": "webhook", "url": "https://h.example/x", "secret-env": "S", "to-owners": True},
     "unknown key 'to-owners' for kind 'webhook'"),
    ({"kind": "webhook", "url-env": "U", "secret-env": "not a name"},
     "secret-env must name an environment variable"),
    ({"kind": "pager"}, "kind must be one of webhook, slack, teams, email"),
    ({"kind": "slack", "url-env": "U", "min-severity": "urgent"}, "min-severity must be one of"),
    ({"kind": "email", "host": "h", "from": "a@b.example"}, "give to"),
    ({"kind": "email", "host": "h", "from": "a@b.example", "to": "x", }, "e-mail address"),
    ({"kind": "email", "host": "h", "from": "a@b.example", "to": "c@d.example",
      "starttls": True, "tls": True}, "exclude each other"),
])
def test_config_errors(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        targets_from_list([entry], "keyscope.toml")


def test_names_default_to_kind_and_index_and_must_be_unique() -> None:
    got = targets_from_list(entries({"kind": "slack", "url-env": "A"},
                                    {"kind": "slack", "url-env": "B"},
                                    {"kind": "teams", "url-env": "C", "name": "ops"}), "k")
    assert [t.name for t in got] == ["slack-1", "slack-2", "ops"]
    with pytest.raises(ConfigError, match="a second destination named 'ops'"):
        targets_from_list(entries({"kind": "slack", "url-env": "A", "name": "ops"},
                                  {"kind": "teams", "url-env": "C", "name": "ops"}), "k")


def test_secrets_come_from_the_environment() -> None:
    (target,) = targets_from_list([{"kind": "slack", "url-env": "KS_TEST_SLACK"}], "k")
    with pytest.raises(ConfigError, match=r"KS_TEST_SLACK .* is not set"):
        build(target, LOOPBACK, {})
    with pytest.raises(ConfigError, match="plain http:// goes only to a loopback"):
        build(target, LOOPBACK, {"KS_TEST_SLACK": "http://hooks.example/x"})
    notifier = build(target, LOOPBACK, {"KS_TEST_SLACK": "https://hooks.slack.com/services/x"})
    assert notifier.name == "slack-1" and notifier.kind == "slack"


def test_pyproject_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.keyscope.notify]]\nkind = "teams"\nurl-env = "TEAMS_URL"\nmin-severity = "high"\n'
    )
    (target,) = load_targets(start=tmp_path)
    assert target.kind == "teams" and target.min_severity.label == "high"


# --- keyscope notify test --------------------------------------------------------


def write_config(path: Path, base: str) -> Path:
    config = path / "keyscope.toml"
    config.write_text(
        '[[notify]]\nkind = "webhook"\nname = "siem"\n'
        f'url = "{base}/hook"\nsecret-env = "KS_TEST_HOOK_SECRET"\n\n'
        '[[notify]]\nkind = "slack"\nurl-env = "KS_TEST_SLACK_URL"\n\n'
        '[[notify]]\nkind = "teams"\nurl-env = "KS_TEST_TEAMS_URL"\n'
    )
    return config


def test_notify_test_sends_a_sample_to_each_destination(
    receiver: HttpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(tmp_path, receiver.base)
    monkeypatch.setenv("KS_TEST_HOOK_SECRET", "abc")
    monkeypatch.setenv("KS_TEST_SLACK_URL", receiver.base + SLACK_PATH)
    monkeypatch.setenv("KS_TEST_TEAMS_URL", receiver.base + "/flow?sig=xyz")
    assert main(["notify", "test", "--config", str(config), "--allow-internal"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["siem (webhook): delivered", "slack-1 (slack): delivered",
                                "teams-1 (teams): delivered"]
    assert [r.path for r in receiver.requests] == ["/hook", SLACK_PATH, "/flow?sig=xyz"]
    assert all(b"test alert from keyscope" in r.body for r in receiver.requests)

    receiver.requests.clear()
    assert main(["notify", "test", "--config", str(config), "--only", "slack-1",
                 "--allow-internal=127.0.0.1"]) == 0
    assert [r.path for r in receiver.requests] == [SLACK_PATH]

    # without --allow-internal the guard refuses loopback; exit 1, each one said
    assert main(["notify", "test", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "siem (webhook): NOT delivered" in out and "not retryable" in out
    assert "slackurltokenXYZ" not in out


def test_notify_test_config_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")
    monkeypatch.delenv("KS_TEST_HOOK_SECRET", raising=False)
    assert main(["notify", "test", "--config", str(config)]) == 2
    assert "KS_TEST_HOOK_SECRET" in capsys.readouterr().err
    assert main(["notify", "test", "--config", str(config), "--only", "nope"]) == 2
    assert "no destination named nope" in capsys.readouterr().err
    empty = tmp_path / "empty.toml"
    empty.write_text("[policy]\n")
    assert main(["notify", "test", "--config", str(empty)]) == 2
    assert "no [[notify]] destination" in capsys.readouterr().err


def test_sample_payload_is_dated() -> None:
    p = sample_payload(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert p["first_seen"] == "2026-01-02T03:04:05Z" and p["scan_id"] == "test-20260102T030405Z"
