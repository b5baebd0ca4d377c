"""The acceptance points of the explain issue, one test each."""

from __future__ import annotations

from datetime import UTC, datetime

import keyscope
from keyscope.analyze.azure.keys import DEV_KEY
from keyscope.model import Severity
from tests.sdk import NOW, account_sas, incident_url, new_key

# The account SAS of the worked example, signed with the public Azurite emulator key.
WORKED_EXAMPLE = (
    "sv=2020-08-04&ss=bfqt&srt=sco&sp=rwdlacup&se=2051-10-06T07%3A09%3A59Z"
    "&st=2021-10-05T23%3A09%3A59Z&spr=https%2Chttp"
    "&sig=ZmGIs1%2F8ZywzxV%2BjSwMNNrW0fYIty2IgvsfwB0DS%2Flg%3D"
)


def test_incident_token_is_critical_and_its_sentence_says_why() -> None:
    key = new_key()
    (e,) = keyscope.explain(incident_url("contosoresearch", key), NOW)
    assert e.severity is Severity.CRITICAL
    assert e.access.kind == "account-sas"
    assert e.access.account == "contosoresearch"
    assert e.access.services == ("blob", "file", "queue", "table")
    assert (
        "grants read, write, delete and list over all blob, file, queue and table data of the "
        "account until 2051-10-06 and can only be revoked by rotating the key that signed it"
    ) in e.sentence
    assert {"overwrite", "delete", "account-control", "anti-forensics"} <= set(
        e.access.destructive
    )
    codes = {r.code for r in e.reasons}
    assert {"write", "delete", "wide-read", "account-sas", "long-lifetime",
            "http-allowed"} <= codes
    assert not e.access.revocation.individually_revocable


def test_worked_example_log_hash_is_reproduced_exactly() -> None:
    (e,) = keyscope.explain(WORKED_EXAMPLE, NOW)
    assert e.log_fingerprints["AuthenticationHash"] == (
        "SasSignature(3D1942439EB0050E3CD63B898CEA56B45745B2CA6BAC57F7F92E333780E602BD)"
    )


def test_dev_key_log_hash_is_reproduced_exactly() -> None:
    (e,) = keyscope.explain(DEV_KEY, NOW, account="devstoreaccount1")
    assert e.log_fingerprints["AuthenticationHash"].startswith(
        "key1(CB4DE97F405A7E4686710DB86F345AC95ACB27C33192E82CAAFA9C197F2019E5)"
    )
    assert e.severity is Severity.INFO


def test_worked_example_is_signed_with_the_public_key_for_devstoreaccount1() -> None:
    (e,) = keyscope.explain(WORKED_EXAMPLE, NOW, account="devstoreaccount1", keys=(DEV_KEY,))
    assert e.signature.status == "signed-with-key"
    assert e.severity is Severity.INFO  # anyone can sign with a published key


def test_co_leaked_key_right_and_wrong() -> None:
    key = new_key()
    url = incident_url("contosoresearch", key)
    (right,) = keyscope.explain(url, NOW, keys=(key,))
    assert right.signature.status == "signed-with-key"
    assert "signed with this key" in right.signature.detail
    (wrong,) = keyscope.explain(url, NOW, keys=(new_key(),))
    assert wrong.signature.status == "not-signed-with-key"
    assert wrong.signature.detail.startswith("not signed with this key")


def test_co_leaked_key_in_the_same_input() -> None:
    key = new_key()
    sas = account_sas("contosoresearch", key, expiry=datetime(2030, 1, 1, tzinfo=UTC))
    text = f"AZURE_KEY={key}\nhttps://contosoresearch.blob.core.windows.net/?{sas}"
    result = keyscope.explain(text, NOW)
    kinds = sorted(e.access.kind for e in result)
    assert kinds == ["account-key", "account-sas"]
    sas_e = next(e for e in result if e.access.kind == "account-sas")
    assert sas_e.signature.status == "signed-with-key"
    key_e = next(e for e in result if e.access.kind == "account-key")
    assert key_e.severity is Severity.CRITICAL


def test_connection_string_with_key_and_sas_checks_the_sas() -> None:
    key = new_key()
    sas = account_sas("contosoresearch", key, services="b", resource_types="o",
                      permission="r", expiry=datetime(2026, 11, 26, 12, 30, tzinfo=UTC))
    cs = (f"DefaultEndpointsProtocol=https;AccountName=contosoresearch;AccountKey={key};"
          f"SharedAccessSignature={sas};EndpointSuffix=core.windows.net")
    result = keyscope.explain(cs, NOW)
    sas_e = next(e for e in result if e.access.kind == "account-sas")
    assert sas_e.access.account == "contosoresearch"
    assert sas_e.signature.status == "signed-with-key"


def test_expired_token_is_low_and_says_how_long_ago() -> None:
    key = new_key()
    sas = account_sas("contosoresearch", key, expiry=datetime(2026, 11, 16, 12, 0, tzinfo=UTC))
    (e,) = keyscope.explain(sas, NOW)
    assert e.severity is Severity.LOW
    assert e.access.validity.expired
    assert "expired 10 days ago" in e.sentence


def test_user_delegation_effective_expiry_is_the_key_expiry() -> None:
    from azure.storage.blob import UserDelegationKey, generate_blob_sas

    udk = UserDelegationKey()
    udk.signed_oid, udk.signed_tid = "11111111-2222-3333-4444-555555555555", "t-1"
    udk.signed_start, udk.signed_expiry = "2026-11-26T00:00:00Z", "2026-11-27T00:00:00Z"
    udk.signed_service, udk.signed_version, udk.value = "b", "2025-07-05", new_key()
    sas = generate_blob_sas("acct1", "c", "b.bin", user_delegation_key=udk, permission="r",
                            expiry=datetime(2027, 1, 1, tzinfo=UTC))
    (e,) = keyscope.explain(f"https://acct1.blob.core.windows.net/c/b.bin?{sas}", NOW)
    assert e.access.validity.effective_expiry == datetime(2026, 11, 27, tzinfo=UTC)
    assert "2026-11-27" in e.sentence
    assert "delegation key" in e.access.validity.summary


def test_p_means_different_things_by_type() -> None:
    key = new_key()
    acct = account_sas("a1b2c3", key, services="q", resource_types="o", permission="p",
                       expiry=datetime(2027, 1, 1, tzinfo=UTC))
    (e,) = keyscope.explain(acct, NOW)
    assert e.access.capabilities[0].name == "process"
    from azure.storage.blob import generate_container_sas

    svc = generate_container_sas("a1b2c3", "c", account_key=key, permission="p",
                                 expiry=datetime(2027, 1, 1, tzinfo=UTC))
    (e,) = keyscope.explain(f"https://a1b2c3.dfs.core.windows.net/c?{svc}", NOW)
    assert e.access.capabilities[0].name == "permissions"
    assert "set-acl" in e.access.destructive
