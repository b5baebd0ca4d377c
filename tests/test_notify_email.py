"""Alerts by e-mail, to a real SMTP server on loopback (aiosmtpd) that requires
STARTTLS (a certificate made here with ``cryptography``) and AUTH: the message reaches
the configured address and the owners', carries the sentence, locations and revocation
steps and never the secret; a refused login, a server without STARTTLS, one that is
down, and the network guard each end in the right DeliveryError."""

from __future__ import annotations

import email
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest

from keyscope.errors import ConfigError
from keyscope.notify.config import build, targets_from_list
from keyscope.notify.email import EmailNotifier
from keyscope.notify.interface import DeliveryError, NotifyOptions
from keyscope.notify.payload import sample_payload
from tests.notify_receivers import SmtpReceiver, free_port, leaked_alert, smtp_receiver
from tests.sdk import NOW

LOOPBACK = NotifyOptions(allow_internal=True, timeout=5.0, interval=0.0)
USER, PASSWORD = "keyscope", "smtp-password-for-tests"


@pytest.fixture(scope="module")
def leaked(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[bytes]]:
    return leaked_alert(tmp_path_factory.mktemp("leak"))


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpReceiver]:
    yield from smtp_receiver(tmp_path, USER, PASSWORD)


def notifier(port: int, ca: Path | None, *, options: NotifyOptions = LOOPBACK,
             password: str = PASSWORD, **extra: Any) -> EmailNotifier:
    entry = {
        "kind": "email", "name": "mail", "host": "127.0.0.1", "port": port,
        "username": USER, "password-env": "KS_TEST_SMTP_PASSWORD",
        "from": "keyscope@contoso.example", "to": ["security@contoso.example"], **extra,
    }
    if ca is not None:
        entry["ca-file"] = str(ca)
    (target,) = targets_from_list([entry], "keyscope.toml")
    built = build(target, options, {"KS_TEST_SMTP_PASSWORD": password})
    assert isinstance(built, EmailNotifier)
    return built


def owners_payload() -> dict[str, Any]:
    payload = sample_payload(NOW)
    payload["owners"] = [
        {"name": "Alice Author", "email": "alice@contoso.example", "via": ["author of 1"]},
        {"name": "@acme/ops", "email": None, "via": [".github/CODEOWNERS:2 /deploy/"]},
        {"name": "Mallory", "email": "mallory@elsewhere.example", "via": ["committer of 1"]},
    ]
    return payload


def test_mail_goes_over_starttls_with_auth_to_security_and_owners(smtp: SmtpReceiver) -> None:
    mail = notifier(smtp.port, smtp.cert, **{"to-owners": True,
                                             "owner-domains": ["contoso.example"]})
    mail.send(owners_payload())
    assert smtp.logins == [USER]
    ((sender, rcpts, content),) = smtp.messages
    assert sender == "keyscope@contoso.example"
    # the owner outside owner-domains is not written to
    assert rcpts == ["security@contoso.example", "alice@contoso.example"]
    msg = email.message_from_bytes(content, policy=policy.default)
    assert msg["Subject"].startswith("keyscope: HIGH, new credential: account-sas of keyscopetest")
    body = msg.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "This is a test alert from keyscope" in text
    assert "example/settings.py:1" in text and "Revoke it:" in text
    assert "Alice Author <alice@contoso.example>" in text and "@acme/ops" in text


def test_mail_of_a_real_finding_holds_no_secret(
    smtp: SmtpReceiver, leaked: tuple[dict[str, Any], list[bytes]]
) -> None:
    payload, forms = leaked
    notifier(smtp.port, smtp.cert).send(payload)
    ((_, _, content),) = smtp.messages
    assert payload["sentence"].split(",")[0].encode() in content.replace(b"\r\n ", b" ")
    for form in forms:
        assert form not in content


def test_a_refused_login_is_not_retryable(smtp: SmtpReceiver) -> None:
    with pytest.raises(DeliveryError, match="refused the login") as caught:
        notifier(smtp.port, smtp.cert, password="wrong").send(sample_payload(NOW))
    assert not caught.value.retryable
    assert "wrong" not in caught.value.reason and smtp.messages == []


def test_an_untrusted_certificate_is_refused(smtp: SmtpReceiver) -> None:
    with pytest.raises(DeliveryError, match=r"TLS with 127\.0\.0\.1 failed") as caught:
        notifier(smtp.port, None).send(sample_payload(NOW))  # no ca-file: not trusted
    assert not caught.value.retryable and smtp.messages == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_no_starttls_no_mail(tmp_path: Path) -> None:
    for plain in smtp_receiver(tmp_path, USER, PASSWORD, starttls=False):
        with pytest.raises(DeliveryError, match="does not offer STARTTLS") as caught:
            notifier(plain.port, plain.cert).send(sample_payload(NOW))
        assert not caught.value.retryable and plain.messages == [] and plain.logins == []


def test_a_server_that_is_down_is_retryable() -> None:
    with pytest.raises(DeliveryError) as caught:
        notifier(free_port(), None).send(sample_payload(NOW))
    assert caught.value.retryable


def test_the_guard_refuses_loopback_without_allow_internal(smtp: SmtpReceiver) -> None:
    closed = NotifyOptions(allow_internal=False, timeout=5.0)
    with pytest.raises(DeliveryError, match="--allow-internal") as caught:
        notifier(smtp.port, smtp.cert, options=closed).send(sample_payload(NOW))
    assert not caught.value.retryable and smtp.messages == []


def test_email_config_checks() -> None:
    with pytest.raises(ConfigError, match="username and password-env go together"):
        targets_from_list([{"kind": "email", "host": "h", "from": "a@b.example",
                            "to": "c@d.example", "username": "u"}], "k")
    with pytest.raises(ConfigError, match="port must be a number"):
        targets_from_list([{"kind": "email", "host": "h", "from": "a@b.example",
                            "to": "c@d.example", "port": 0}], "k")
    (t,) = targets_from_list([{"kind": "email", "host": "h", "from": "a@b.example",
                               "to-owners": True, "tls": True}], "k")
    mail = build(t, LOOPBACK, {})
    assert isinstance(mail, EmailNotifier) and mail.port == 465 and mail.security == "tls"
    with pytest.raises(DeliveryError, match="no recipient"):
        mail.send(sample_payload(NOW))
