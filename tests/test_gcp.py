"""Google Cloud: service-account keys (a locally generated RSA key in the JSON format
google-auth loads), Cloud Storage signed URLs made from it by google-cloud-storage
(V4 and V2, signed offline), HMAC keys and API keys, found on both engines,
explained offline (project, client email, key id, bucket, object, signing time, exact
expiry, revocation), placeholders dropped, secrets masked everywhere."""

from __future__ import annotations

import base64
import functools
import json
import random
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.oauth2 import service_account
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.analyze.gcp.credentials import service_account as account_of
from keyscope.analyze.gcp.explainer import url_candidates
from keyscope.cli import main
from keyscope.explain import explain
from keyscope.model import Explanation, Finding
from keyscope.redact import mask
from keyscope.scan import ScanOptions, scan
from keyscope.verify.transport import VerifyOptions
from tests.test_redaction import assert_hidden, outputs

PROJECT = "ml-research-4821"
EMAIL = f"trainer@{PROJECT}.iam.gserviceaccount.com"
NOW = datetime.now(UTC).replace(microsecond=0)
RNG = random.Random(20)
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def mint_key_info(email: str = EMAIL) -> dict[str, str]:
    """A service-account key file's fields, with a fresh RSA-2048 key google-auth loads."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {
        "type": "service_account", "project_id": email.split("@")[1].split(".")[0],
        "private_key_id": RNG.randbytes(20).hex(), "private_key": pem, "client_email": email,
        "client_id": str(RNG.randrange(10**20, 10**21)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    service_account.Credentials.from_service_account_info(info)  # loads: the real format
    return info


key_info = functools.cache(mint_key_info)


def pem_body(info: dict[str, str]) -> str:
    return "".join(info["private_key"].splitlines()[1:-1])


def signed_url(version: str = "v4", *, method: str = "GET", expires: Any = 3600,
               bucket: str = "ml-artifacts", name: str = "models/run 7/w.bin",
               **kwargs: Any) -> str:
    """A signed URL from google-cloud-storage, signed locally with the key of ``key_info``."""
    creds = service_account.Credentials.from_service_account_info(key_info())
    client = storage.Client(project=PROJECT, credentials=AnonymousCredentials())
    blob = client.bucket(bucket).blob(name)
    if isinstance(expires, int):
        expires = timedelta(seconds=expires)
    url: str = blob.generate_signed_url(version=version, expiration=expires, method=method,
                                        credentials=creds, **kwargs)
    return url


def hmac_pair() -> tuple[str, str]:
    return ("GOOG1" + "".join(RNG.choice(B32) for _ in range(56)),
            base64.b64encode(RNG.randbytes(30)).decode())


def api_key() -> str:
    return "AIza" + "".join(RNG.choice(URLSAFE) for _ in range(35))


def one(text: str, now: datetime = NOW) -> Explanation:
    found = explain(text, now)
    assert len(found) == 1, [e.sentence for e in found]
    return found[0]


def test_client_email_names_the_project() -> None:
    assert (account_of(EMAIL).project, account_of(EMAIL).kind) == (PROJECT, "user-managed")
    compute = account_of("123456789012-compute@developer.gserviceaccount.com")
    assert (compute.project, compute.project_is_number, compute.kind) == (
        "123456789012", True, "compute-default")
    assert account_of(f"{PROJECT}@appspot.gserviceaccount.com").project == PROJECT
    agent = account_of("service-123456789012@gcp-sa-aiplatform.iam.gserviceaccount.com")
    assert (agent.project, agent.kind) == ("123456789012", "service-agent")


def test_service_account_key_explained() -> None:
    info = key_info()
    e = one(json.dumps(info, indent=2))
    d = e.access.details
    assert (e.access.provider, e.access.kind, e.access.account) == (
        "gcp", "service-account-key", PROJECT)
    assert (d["key_id"], d["client_email"]) == (info["private_key_id"], EMAIL)
    assert e.severity.label == "critical"
    assert {r.code for r in e.reasons} == {"service-account-key", "live"}
    cmds = [s.command for s in e.access.revocation.steps]
    assert f"gcloud iam service-accounts keys disable {info['private_key_id']} " \
        f"--iam-account={EMAIL}" in cmds
    assert "keys disable" in e.sentence and PROJECT in e.sentence
    assert pem_body(info)[8:40] not in e.redacted


def test_v4_url_explained() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    url = signed_url(expires=7200)
    e = one(url)
    d = e.access.details
    assert (e.access.kind, e.access.account, d["key_id"]) == ("signed-url", PROJECT, EMAIL)
    assert (d["bucket"], d["object"], d["addressing_style"]) == (
        "ml-artifacts", "models/run 7/w.bin", "path")
    signed_at = datetime.strptime(parse_qs(urlsplit(url).query)["X-Goog-Date"][0],
                                  "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before - timedelta(seconds=2) <= signed_at
    v = e.access.validity
    assert v.expiry == signed_at + timedelta(hours=2) and v.lifetime_seconds == 7200
    assert v.start == signed_at - timedelta(minutes=15)
    assert e.access.permissions == "GET"
    assert {r.code for r in e.reasons} == {"long-lifetime", "live"}
    assert any("signer's rights" in n for n in e.notes)
    assert "rights its signer" in e.sentence


def test_v2_url_explained() -> None:
    expiry = datetime(2031, 1, 1, tzinfo=UTC)
    e = one(signed_url("v2", expires=expiry))
    assert e.access.details["signature_version"] == "V2"
    assert e.access.validity.expiry == expiry
    assert "legacy-signature" in {r.code for r in e.reasons}


def test_upload_url_virtual_hosted() -> None:
    url = signed_url(method="PUT", content_type="application/octet-stream",
                     virtual_hosted_style=True)
    assert urlsplit(url).hostname == "ml-artifacts.storage.googleapis.com"
    e = one(url)
    assert (e.access.details["bucket"], e.access.details["addressing_style"]) == (
        "ml-artifacts", "virtual-hosted")
    assert e.access.permissions == "PUT" and e.severity.label == "high"
    assert "likely-write" in {r.code for r in e.reasons}


def test_resumable_upload_is_post() -> None:
    url = signed_url(method="RESUMABLE")
    assert one(url).access.permissions == "POST"


def test_expired_url_is_low() -> None:
    e = one(signed_url(expires=60), NOW + timedelta(hours=1))
    assert e.access.validity.expired and e.severity.label == "low"


def test_hmac_key_and_api_key_explained() -> None:
    access_id, secret = hmac_pair()
    e = one(f"access_id = {access_id}\nsecret = {secret}\n")
    assert (e.access.kind, e.severity.label) == ("hmac-key", "critical")
    cmds = [s.command for s in e.access.revocation.steps]
    assert f"gcloud storage hmac update {access_id} --deactivate" in cmds
    assert secret[4:] not in e.redacted
    key = api_key()
    e = one(f"GOOGLE_API_KEY={key}")
    assert (e.access.kind, e.severity.label) == ("api-key", "medium")
    assert key[8:] not in e.redacted and key[8:] not in e.sentence


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _scan(root: Path, engine: str = "re", jobs: int = 1) -> list[Finding]:
    options = ScanOptions(jobs=jobs, now=NOW, engine=engine, cache_dir=root / ".cache", git=False)
    return scan([root], options).findings


def _planted(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Files holding each shape: name -> (rule, kind)."""
    info = key_info()
    access_id, secret = hmac_pair()
    secret_yaml = ("apiVersion: v1\nkind: Secret\ndata:\n  key.json: "
                   + base64.b64encode(json.dumps(info).encode()).decode() + "\n")
    files_ = {
        "keys/trainer.json": (json.dumps(info, indent=2), (
            "gcp-service-account-key", "service-account-key")),
        "k8s/secret.yaml": (secret_yaml, ("gcp-service-account-key", "service-account-key")),
        "fetch.py": (f'URL = "{signed_url()}"\n', ("gcp-storage-signed-url", "signed-url")),
        "README.md": (f"Download: <{signed_url('v2')}>\n", ("gcp-storage-signed-url",
                                                            "signed-url")),
        "boto.cfg": (f"[Credentials]\ngs_access_key_id = {access_id}\n"
                     f"gs_secret_access_key = {secret}\n", ("gcp-hmac-key", "hmac-key")),
        "web/.env": (f"MAPS_KEY={api_key()}\n", ("gcp-api-key", "api-key")),
    }
    for name, (body, _) in files_.items():
        _write(tmp_path, name, body)
    return {name: kind for name, (_, kind) in files_.items()}


@pytest.mark.parametrize(("engine", "jobs"), [("re", 1), ("hyperscan", 1), ("hyperscan", 2)])
def test_scan_finds_every_shape(tmp_path: Path, engine: str, jobs: int) -> None:
    planted = _planted(tmp_path)
    findings = _scan(tmp_path, engine, jobs)
    seen = {
        (Path(loc.path).relative_to(tmp_path).as_posix(), f.rule_id, f.explanation.access.kind)
        for f in findings
        for loc in f.locations
    }
    assert seen == {(name, *kind) for name, kind in planted.items()}


def test_placeholders_and_lone_ids_are_not_reported(tmp_path: Path) -> None:
    info = dict(key_info())
    access_id, _ = hmac_pair()
    url = signed_url()
    sig = parse_qs(urlsplit(url).query)["X-Goog-Signature"][0]
    _write(tmp_path, "template.json", json.dumps(
        {**info, "private_key": "-----BEGIN PRIVATE KEY-----\n<your key here>\n"
         "-----END PRIVATE KEY-----\n"}, indent=2))
    _write(tmp_path, "docs.md", (
        "access_id = GOOGTS7C7FUP3AIRVJTE2BCDKINBTES3HC2GY5CBFJDCQ2SYHV6A6XXVTJFSA\n"
        "secret = bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ\n"
        f"Deny requests signed by {access_id} (an access id alone is an identifier)\n"
        "GOOGLE_API_KEY=AIzaSyXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\n"
        f"{url.replace(sig, '0' * len(sig))}\n"
        f"{url.replace(sig, '<signature>')}\n"
    ))
    _write(tmp_path, "user.json", json.dumps({"type": "authorized_user",
                                              "private_key_id": info["private_key_id"]}))
    assert _scan(tmp_path) == []


def test_secrets_masked_in_every_format(tmp_path: Path) -> None:
    info = key_info()
    url = signed_url()
    access_id, secret = hmac_pair()
    key = api_key()
    _write(tmp_path, "key.json", json.dumps(info, indent=2))
    _write(tmp_path, "a.txt", f"url = {url}\n")
    _write(tmp_path, "b.env", f"GCS_ACCESS_ID={access_id}\nGCS_SECRET={secret}\nAPI={key}\n")
    signature = parse_qs(urlsplit(url).query)["X-Goog-Signature"][0]
    outs = outputs(tmp_path)
    assert_hidden([signature, secret, key[4:], *info["private_key"].splitlines()[1:-1]], outs)
    assert EMAIL in outs["json"] and info["private_key_id"] in outs["json"]


def test_explain_json_validates_and_verify_is_honest(capsys: pytest.CaptureFixture[str]) -> None:
    schema = json.loads(files("keyscope").joinpath("schemas/explain-v1.json").read_text())
    info = key_info()
    access_id, secret = hmac_pair()
    for value in (json.dumps(info), signed_url(), signed_url("v2"),
                  f"id={access_id}\nsecret={secret}", api_key()):
        assert main(["explain", "--format", "json", value]) == 0
        out = capsys.readouterr().out
        jsonschema.validate(json.loads(out), schema)
        assert pem_body(info)[20:60] not in out and secret not in out
    # HMAC and API keys have no check that stays off the owner's project: nothing is sent.
    for value, why in ((f"id={access_id}\nsecret={secret}", "HMAC key"), (api_key(), "API key")):
        e = explain(value, NOW, verify=VerifyOptions())[0]
        assert e.verification is not None and e.verification.status == "not-verifiable"
        assert f"no request for an {why}" in e.verification.summary


_URL_CHARS = st.sampled_from([
    *"GOOG1ABCDEFXYZ234567?&=%/:.[]-_@abcdef0189",
    "X-Goog-Credential=", "GoogleAccessId=", "https://", "Expires=", "X-Goog-Expires=",
    "X-Goog-Date=", "/goog4_request", "[", "storage.googleapis.com",
])


@functools.cache
def _signed_once() -> str:
    return signed_url()


def test_malformed_host_is_rejected() -> None:
    url = _signed_once().replace("https://", "https://[", 1)
    assert [type(c).__name__ for c in url_candidates(url, NOW)] == ["Rejected"]


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(_URL_CHARS, max_size=40).map("".join), st.integers(0, 2))
def test_hostile_values_never_raise(value: str, where: int) -> None:
    """Whatever a rule captures, the parsers answer Candidate or Rejected, never raise."""
    url = _signed_once()
    text = (value, url[: len(url) // 2] + value, url + value)[where]
    assert url_candidates(text, NOW) is not None


def test_free_text_shapes_are_masked_without_knowing_the_secret() -> None:
    """Google Cloud shapes in text no finding covers (a snippet's neighbours, a
    placeholder-adjacent line) are masked by shape alone."""
    info = key_info()
    access_id, secret = hmac_pair()
    key = api_key()
    url = signed_url()
    signature = parse_qs(urlsplit(url).query)["X-Goog-Signature"][0]
    text = "\n".join([json.dumps(info), info["private_key"], url,
                      f'{{"accessId": "{access_id}", "secret": "{secret}"}}', f"key={key}"])
    masked = mask(text)
    for line in info["private_key"].splitlines()[1:-1]:
        assert line[4:] not in masked
    for value in (signature, secret, key):
        assert value[4:] not in masked, value
    assert access_id in masked and EMAIL in masked and info["private_key_id"] in masked


def test_hmac_signed_v4_url() -> None:
    """google-cloud-storage signs V4 only with RSA keys offline: the HMAC form is built
    here with the parameters the XML API documents (the signature is random hex)."""
    access_id, _ = hmac_pair()
    url = ("https://ml-artifacts.storage.googleapis.com/data/train.csv?"
           "X-Goog-Algorithm=GOOG4-HMAC-SHA256&X-Goog-Credential="
           f"{access_id}%2F20261207%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date=20261207T081558Z"
           f"&X-Goog-Expires=600&X-Goog-SignedHeaders=host&X-Goog-Signature={RNG.randbytes(32).hex()}")
    e = one(url, datetime(2026, 12, 7, 8, 20, tzinfo=UTC))
    d = e.access.details
    assert (d["key_type"], d["key_id"], e.access.account) == ("hmac", access_id, None)
    assert e.access.validity.expiry == datetime(2026, 12, 7, 8, 25, 58, tzinfo=UTC)
    cmds = [s.command for s in e.access.revocation.steps]
    assert f"gcloud storage hmac update {access_id} --deactivate" in cmds
    assert "--deactivate" in e.sentence
