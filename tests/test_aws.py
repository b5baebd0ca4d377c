"""AWS: key pairs and S3 presigned URLs minted by botocore (the real signer), found on
both engines, explained offline (account, bucket, key, Region, signing date, exact
expiry, signer type, revocation), placeholders dropped, secrets masked everywhere."""

from __future__ import annotations

import base64
import functools
import json
import random
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import botocore.session
import jsonschema
import pytest
from botocore.config import Config
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.analyze.aws.explainer import pair_candidates, url_candidates
from keyscope.analyze.aws.keys import account_of
from keyscope.cli import main
from keyscope.explain import explain
from keyscope.model import Explanation, Finding
from keyscope.scan import ScanOptions, scan
from keyscope.verify.transport import VerifyOptions
from tests.test_redaction import assert_hidden, outputs

B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# A new-format key id is the account's 40 bits after the type prefix (with the 5th
# character's top bit set) and 39 bits nobody has decoded: these ids decode to ACCOUNT.
ACCOUNT = "123456789012"
ACCOUNT_PREFIX = "RZPUZDIK"  # base32 of (1 << 39 | 123456789012 >> 1), 40 bits
NOW = datetime.now(UTC).replace(microsecond=0)
RNG = random.Random(20)


def key_id(prefix: str = "AKIA") -> str:
    # The 13th character carries the account's lowest bit (0 here): A-P.
    tail = RNG.choice(B32[:16]) + "".join(RNG.choice(B32) for _ in range(7))
    return prefix + ACCOUNT_PREFIX + tail


def secret() -> str:
    return base64.b64encode(RNG.randbytes(30)).decode()


def session_token() -> str:
    return "IQoJb3JpZ2luX2VjE" + base64.b64encode(RNG.randbytes(420)).decode()


def presign(
    region: str,
    *,
    temporary: bool = False,
    config: Config | None = None,
    method: str = "get_object",
    expires: int = 3600,
    bucket: str = "ml-artifacts",
    key: str = "models/run 7/w.bin",
    **params: str,
) -> tuple[str, dict[str, str]]:
    """A presigned URL from botocore, and the credentials that signed it."""
    creds = {
        "aws_access_key_id": key_id("ASIA" if temporary else "AKIA"),
        "aws_secret_access_key": secret(),
        "aws_session_token": session_token() if temporary else None,
    }
    client = botocore.session.get_session().create_client(
        "s3", region_name=region, config=config, **creds  # type: ignore[arg-type]
    )
    url = client.generate_presigned_url(
        method, Params={"Bucket": bucket, "Key": key, **params}, ExpiresIn=expires
    )
    return url, {k: v for k, v in creds.items() if v}


V4 = Config(signature_version="s3v4")


def one(text: str) -> Explanation:
    found = explain(text, NOW)
    assert len(found) == 1, [e.redacted for e in found]
    return found[0]


def test_account_decoded_from_key_id() -> None:
    # the published vectors (Steele's post, LocalStack's tests)
    assert account_of("ASIAY34FZKBOKMUTVV7A") == "609629065308"
    assert account_of("AKIARZPUZDIKGB2VALC4") == "123456789012"
    assert account_of("ASIAQAAAAAAAGMKEM7X5") == "000000000000"
    assert account_of("AKIAIOSFODNN7EXAMPLE") is None  # old format: not recoverable
    assert all(account_of(key_id()) == ACCOUNT for _ in range(20))


@pytest.mark.parametrize(
    ("region", "config", "style", "host"),
    [
        ("eu-central-1", V4, "virtual-hosted", "ml-artifacts.s3.amazonaws.com"),
        ("ap-south-1", Config(signature_version="s3v4", s3={"addressing_style": "virtual"}),
         "virtual-hosted", "ml-artifacts.s3.ap-south-1.amazonaws.com"),
        ("us-west-2", Config(signature_version="s3v4", s3={"addressing_style": "path"}),
         "path", "s3.us-west-2.amazonaws.com"),
        ("cn-north-1", V4, "virtual-hosted", "ml-artifacts.s3.cn-north-1.amazonaws.com.cn"),
    ],
)
@pytest.mark.parametrize("temporary", [False, True])
def test_sigv4_url_explained(
    region: str, config: Config, style: str, host: str, temporary: bool
) -> None:
    url, creds = presign(region, temporary=temporary, config=config, expires=7200)
    assert urlsplit(url).hostname == host
    e = one(url)
    a, d = e.access, e.access.details
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    signed_at = datetime.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert (a.provider, a.kind, a.account) == ("aws", "presigned-url", ACCOUNT)
    assert (d["bucket"], d["key"], d["region"]) == ("ml-artifacts", "models/run 7/w.bin", region)
    assert d["addressing_style"] == style and d["signature_version"] == "SigV4"
    assert a.validity.start == signed_at
    assert a.validity.expiry == signed_at + timedelta(seconds=7200)
    assert a.permissions == "GET" and d["method_implied"] is True
    assert d["key_id"] == creds["aws_access_key_id"]
    assert d["session_token_present"] is temporary
    assert ("temporary" in d["key_type"]) is temporary  # type: ignore[operator]
    assert {r.code for r in e.reasons} >= {"long-lifetime", "live"}
    assert "IAM rights of its signer" in e.sentence and region in e.sentence
    commands = " ".join(s.command or "" for s in a.revocation.steps)
    assert ("update-access-key" in commands) is not temporary
    assert ("AWSRevokeOlderSessions" in commands) is temporary
    assert q["X-Amz-Signature"] not in json.dumps(e.redacted)


def test_sigv2_url_explained() -> None:
    # botocore's default for S3 in eu-west-1 is still Signature Version 2
    url, _ = presign("eu-west-1", expires=600)
    assert "AWSAccessKeyId=" in url
    e = one(url)
    expires = int(parse_qs(urlsplit(url).query)["Expires"][0])
    assert e.access.details["signature_version"] == "SigV2"
    assert e.access.validity.expiry == datetime.fromtimestamp(expires, UTC)
    assert e.access.validity.start is None and e.access.account == ACCOUNT
    assert "legacy-signature" in {r.code for r in e.reasons}


def test_upload_url_and_caps() -> None:
    put, _ = presign("eu-central-1", config=V4, method="put_object",
                     ContentType="application/octet-stream")
    e = one(put)
    assert e.access.permissions == "PUT" and "likely-write" in {r.code for r in e.reasons}
    assert e.severity.label == "high"
    over, _ = presign("eu-central-1", config=V4, expires=604801)  # botocore signs it anyway
    e = one(over)
    assert "refused-lifetime" in {r.code for r in e.reasons} and e.severity.label == "low"


def test_expired_url_is_low() -> None:
    url, _ = presign("eu-central-1", config=V4, expires=60)
    e = explain(url, NOW + timedelta(hours=1))[0]
    assert e.access.validity.expired and e.severity.label == "low"


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
    k, s = key_id(), secret()
    t_id, t_secret, token = key_id("ASIA"), secret(), session_token()
    url4, _ = presign("eu-central-1", config=V4, temporary=True)
    url2, _ = presign("eu-west-1")
    files_ = {
        ".aws/credentials": (
            f"[default]\naws_access_key_id = {k}\naws_secret_access_key = {s}\n",
            ("aws-access-key", "access-key"),
        ),
        "env.sh": (
            f"export AWS_ACCESS_KEY_ID={t_id}\nexport AWS_SECRET_ACCESS_KEY={t_secret}\n"
            f"export AWS_SESSION_TOKEN={token}\n",
            ("aws-access-key", "session-credentials"),
        ),
        "cache.json": (
            json.dumps({"Credentials": {"AccessKeyId": t_id, "SecretAccessKey": t_secret,
                                        "SessionToken": token,
                                        "Expiration": "2031-01-01T00:00:00Z"}}),
            ("aws-access-key", "session-credentials"),
        ),
        "notebook.py": (f'URL = "{url4}"\n', ("aws-s3-presigned-url", "presigned-url")),
        "README.md": (f"Download: <{url2}>\n", ("aws-s3-presigned-url", "presigned-url")),
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
    cache = next(f for f in findings if "cache.json" in f.locations[0].path)
    assert cache.explanation.access.validity.expiry == datetime(2031, 1, 1, tzinfo=UTC)


def test_placeholders_and_lone_ids_are_not_reported(tmp_path: Path) -> None:
    k = key_id()
    doc_url, _ = presign("eu-central-1", config=V4)
    doc_url = doc_url.replace(parse_qs(urlsplit(doc_url).query)["X-Amz-Credential"][0][:20],
                              "AKIAIOSFODNN7EXAMPLE")
    _write(tmp_path, "docs.md", (
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
        f"Deny requests signed by {k} (a key id alone is an identifier)\n"
        f"{doc_url}\n"
    ))
    _write(tmp_path, "template.ini", f"aws_access_key_id = {k}\n"
           "aws_secret_access_key = YOUR_SECRET_ACCESS_KEY_HERE_xxxxxxxxxxxxx\n")
    _write(tmp_path, "git.txt", f"{k}\ncommit 3f786850e387550fdab836ed7e6dc881de23001b\n")
    assert _scan(tmp_path) == []


def test_secrets_masked_in_every_format(tmp_path: Path) -> None:
    url, creds = presign("eu-central-1", config=V4, temporary=True)
    _write(tmp_path, "a.txt", f"url = {url}\n")
    env = (f"AWS_ACCESS_KEY_ID={key_id('ASIA')}\nAWS_SECRET_ACCESS_KEY={secret()}\n"
           f"AWS_SESSION_TOKEN={session_token()}\n")
    _write(tmp_path, "b.env", env)
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    env_values = [line.split("=", 1)[1] for line in env.splitlines()[1:]]
    outs = outputs(tmp_path)
    assert_hidden([signature, creds["aws_secret_access_key"], creds["aws_session_token"],
                   *env_values], outs)
    assert all(key_id_ in outs["json"] for key_id_ in (creds["aws_access_key_id"],))


def test_explain_json_validates_and_verify_is_honest(capsys: pytest.CaptureFixture[str]) -> None:
    schema = json.loads(files("keyscope").joinpath("schemas/explain-v1.json").read_text())
    k, s = key_id(), secret()
    url, _ = presign("eu-central-1", config=V4)
    for value in (url, f"aws_access_key_id={k}\naws_secret_access_key={s}"):
        assert main(["explain", "--format", "json", value]) == 0
        out = capsys.readouterr().out
        jsonschema.validate(json.loads(out), schema)
        assert s not in out
    # An upload URL is never requested (its signed content-type says PUT): nothing is sent.
    put, _ = presign("eu-central-1", config=V4, method="put_object", ContentType="text/plain")
    e = explain(put, NOW, verify=VerifyOptions())[0]
    assert e.verification is not None and e.verification.status == "not-verifiable"
    assert "never sends a write" in e.verification.summary


def test_sigv2_with_session_token() -> None:
    url, creds = presign("us-west-1", temporary=True)
    assert "AWSAccessKeyId=ASIA" in url and "x-amz-security-token=" in url
    e = one(url)
    assert e.access.details["session_token_present"] is True
    assert "session" in e.access.validity.summary
    assert creds["aws_session_token"][:40] not in e.redacted


@pytest.mark.parametrize(
    ("host", "path", "bucket", "key", "region", "style", "account"),
    [
        ("ml-artifacts.s3-eu-west-1.amazonaws.com", "/a/b.txt", "ml-artifacts", "a/b.txt",
         "eu-west-1", "virtual-hosted", None),
        ("s3-us-west-2.amazonaws.com", "/ml-artifacts/a.txt", "ml-artifacts", "a.txt",
         "us-west-2", "path", None),
        ("ml-artifacts.s3.dualstack.eu-north-1.amazonaws.com", "/a.txt", "ml-artifacts", "a.txt",
         "eu-north-1", "virtual-hosted", None),
        ("reports-123456789012.s3-accesspoint.us-east-2.amazonaws.com", "/q1.csv",
         "reports-123456789012", "q1.csv", "us-east-2", "access-point", "123456789012"),
        ("cdn.example.com", "/a.txt", None, "a.txt", None, "other-host", None),
    ],
)
def test_s3_hosts(host: str, path: str, bucket: str | None, key: str, region: str | None,
                  style: str, account: str | None) -> None:
    from keyscope.analyze.aws.presigned import s3_location

    loc = s3_location("https", host, path)
    assert (loc.bucket, loc.key, loc.region, loc.style, loc.account) == (
        bucket, key, region, style, account
    )


_URL_CHARS = st.sampled_from([
    *"AKIASRZPUZDIKEJ234567?&=%/:.[]-_XamzCredntilSgu0189",
    "X-Amz-Credential=", "AWSAccessKeyId=", "https://", "Expires=", "X-Amz-Expires=",
    "X-Amz-Date=", "/aws4_request", "[",
])


@functools.cache
def _signed_once() -> str:
    return presign("eu-central-1", config=V4)[0]


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
    assert pair_candidates(text[:20], lambda: text, text, NOW) is not None
