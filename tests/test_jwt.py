"""JWTs signed in the test (RS256 and ES256 with ``cryptography``, HS256 with ``hmac``):
found on both engines, decoded offline (alg, issuer, audience, subject, scopes, expiry),
"signature not checked", expired ones low, samples and look-alikes dropped, masked in
every output format."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from datetime import timedelta
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.analyze.jwt.explainer import jwt_candidates
from keyscope.cli import main
from keyscope.explain import explain
from keyscope.model import Explanation
from keyscope.redact import mask
from keyscope.scan import ScanOptions, scan
from tests.sdk import NOW
from tests.test_redaction import assert_hidden, outputs

ISSUER = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign(claims: dict[str, object], alg: str = "RS256", kid: str = "k1") -> str:
    """A compact JWS signed with a fresh key (RFC 7515/7518)."""
    header = _b64(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(claims).encode())
    data = f"{header}.{body}".encode()
    if alg == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        r, s = decode_dss_signature(ec.generate_private_key(ec.SECP256R1()).sign(
            data, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "HS256":
        signature = hmac.new(os.urandom(32), data, hashlib.sha256).digest()
    else:
        signature = b""
    return f"{header}.{body}.{_b64(signature)}"


def claims(**extra: object) -> dict[str, object]:
    now = int(NOW.timestamp())
    return {"iss": ISSUER, "sub": "ml-pipeline", "aud": "api://contoso-models",
            "scp": "models.read models.write", "iat": now - 600, "exp": now + 3000, **extra}


def one(text: str) -> Explanation:
    found = explain(text, NOW)
    assert len(found) == 1, [e.sentence for e in found]
    return found[0]


@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS256"])
def test_jwt_decoded_offline(alg: str) -> None:
    token = sign(claims(), alg)
    e = one(f"Authorization: Bearer {token}")
    d = e.access.details
    assert (e.access.provider, e.access.kind, d["alg"], d["kid"]) == ("jwt", "jwt", alg, "k1")
    assert (d["issuer"], e.access.account, d["audience"], d["scopes"]) == (
        ISSUER, "ml-pipeline", "api://contoso-models", "models.read models.write")
    v = e.access.validity
    assert v.expiry == NOW + timedelta(seconds=3000) and v.lifetime_seconds == 3600
    assert e.severity.label == "high" and not v.expired
    assert "signature not checked" in e.sentence and e.signature.status == "not-checked"
    assert token.split(".")[1][:20] not in e.redacted


def test_expired_jwt_is_low_and_no_exp_is_said() -> None:
    now = int(NOW.timestamp())
    e = one(sign(claims(iat=now - 7200, exp=now - 3600)))
    assert e.access.validity.expired and e.severity.label == "low"
    assert "expired" in {r.code for r in e.reasons}
    forever = one(sign({"iss": "https://auth.contoso.example", "sub": "svc-trainer",
                        "aud": ["models", "datasets"]}))
    assert forever.access.validity.expiry is None and forever.severity.label == "high"
    assert "no-expiry" in {r.code for r in forever.reasons}
    assert forever.access.details["audience"] == "models, datasets"
    unsigned = one(sign(claims(), alg="none"))
    assert unsigned.severity.label == "low" and "unsigned-jwt" in {r.code for r in unsigned.reasons}


SAMPLE = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIi"
          "wiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")


def test_samples_and_look_alikes_are_not_reported(tmp_path: Path) -> None:
    example = sign({"k": "value"}, "HS256")  # no registered claim: a docs example payload
    head = sign(claims()).rsplit(".", 1)[0] + "."  # HS256 header and claims, no signature
    (tmp_path / "README.md").write_text(
        f"jwt.io's sample: {SAMPLE}\nencoded: {example}\nunsigned: {head}\n"
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJ...signature\n"
        "data = 'eyJub3QiOiAiYSBqd3QifQ.eyJhIjogMX0.c2ln'\n")
    assert scan([tmp_path], ScanOptions(jobs=1, now=NOW, git=False)).findings == []


@pytest.mark.parametrize(("engine", "jobs"), [("re", 1), ("hyperscan", 2)])
def test_scan_finds_jwts(tmp_path: Path, engine: str, jobs: int) -> None:
    live, old = sign(claims()), sign(claims(exp=int(NOW.timestamp()) - 60))
    (tmp_path / "session.json").write_text(json.dumps({"id_token": live, "old": old}))
    (tmp_path / "curl.sh").write_text(f"curl -H 'Authorization: Bearer {live}' https://x\n")
    options = ScanOptions(jobs=jobs, now=NOW, engine=engine, cache_dir=tmp_path / ".c",
                          git=False)
    found = scan([tmp_path], options).findings
    assert sorted((f.severity.label, len(f.locations)) for f in found) == [("high", 2),
                                                                           ("low", 1)]


def test_jwts_masked_in_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = sign(claims())
    (tmp_path / "a.env").write_text(f"TOKEN={token}\n")
    assert_hidden([token.split(".", 1)[1]], outputs(tmp_path))
    assert token.split(".", 1)[1][:30] not in mask(f"x {token} y")
    schema = json.loads(files("keyscope").joinpath("schemas/explain-v1.json").read_text())
    assert main(["explain", "--format", "json", token]) == 0
    out = capsys.readouterr().out
    jsonschema.validate(json.loads(out), schema)
    assert token.split(".")[2] not in out


@settings(max_examples=300, deadline=None, database=None)
@given(st.dictionaries(st.sampled_from(["iss", "sub", "aud", "exp", "iat", "nbf", "scp", "alg"]),
                       st.one_of(st.integers(-2**70, 2**70), st.text(max_size=8), st.none(),
                                 st.lists(st.integers(), max_size=2), st.floats())),
       st.binary(max_size=30))
def test_hostile_claims_never_raise(values: dict[str, object], junk: bytes) -> None:
    """Any claims (huge or negative times, lists, nulls, NaN) and any junk segment: the
    parser answers Candidate or Rejected."""
    token = sign(values, "HS256")
    assert jwt_candidates(token, NOW) is not None
    junky = f"eyJ{_b64(junk)}.eyJ{_b64(junk[::-1])}.{_b64(junk)}"
    assert jwt_candidates(junky, NOW) is not None
