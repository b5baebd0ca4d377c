"""``--verify`` for AWS against real servers that check signatures: presigned URLs
(made by botocore) against @20minutes/s3rver, key pairs (created in moto's IAM)
through sts:GetCallerIdentity against moto_server in authentication mode. Each test
reads the server's own request log: only GET and HEAD requests reach it, never PUT.
keyscope's SigV4 signer is compared with botocore's on the same requests.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

import keyscope
from keyscope.analyze.aws.explainer import read_text
from keyscope.analyze.policy import DEFAULT_POLICY
from keyscope.cli import main
from keyscope.model import Explanation
from keyscope.verify import Target, plan_notice
from keyscope.verify.sigv4 import sigv4_headers
from keyscope.verify.transport import VerifyOptions
from tests.awsservers import MotoServer, S3rver, settle
from tests.test_aws import key_id, secret

BUCKET = "ml-artifacts"
OBJECT = "models/run 7/w.bin"
DATA = bytes(range(256)) * 4
V4 = Config(signature_version="s3v4", s3={"addressing_style": "path"})
V2 = Config(signature_version="s3", s3={"addressing_style": "path"})


# --- the signer, against botocore's ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "token", "headers", "payload"),
    [
        ("GET", "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
         None, {}, b""),
        ("GET", "http://127.0.0.1:5000/?Version=2011-06-15&Action=GetCallerIdentity",
         "IQoJb3JpZ2luX2VjE/token+with=chars", {}, b""),
        ("GET", "https://sts.eu-west-1.amazonaws.com/a%20b/~c?z=1&a=x%2Fy&a=b&e=",
         None, {"X-Custom": "  two   spaces "}, b""),
        ("POST", "https://sts.amazonaws.com/", None,
         {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
         b"Action=GetCallerIdentity&Version=2011-06-15"),
    ],
)
def test_sigv4_matches_botocore(
    method: str, url: str, token: str | None, headers: dict[str, str], payload: bytes
) -> None:
    now = datetime(2026, 12, 7, 8, 15, 58, tzinfo=UTC)
    kid, sec = key_id(), secret()
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=payload)
    request.context["timestamp"] = now.strftime("%Y%m%dT%H%M%SZ")
    auth = SigV4Auth(Credentials(kid, sec, token), "sts", "eu-west-1")
    auth._modify_request_before_signing(request)
    signature = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)),
                               request)
    ours = sigv4_headers(method, url, region="eu-west-1", service="sts", key_id=kid,
                         secret=sec, session_token=token, headers=headers, payload=payload,
                         now=now)
    assert ours["X-Amz-Date"] == request.headers["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == token
    assert ours["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={kid}/20261207/")
    assert ours["Authorization"].endswith(f"Signature={signature}")
    # A different secret gives a different signature: the comparison can fail.
    other = sigv4_headers(method, url, region="eu-west-1", service="sts", key_id=kid,
                          secret=secret(), session_token=token, headers=headers,
                          payload=payload, now=now)
    assert other["Authorization"] != ours["Authorization"]


# --- presigned URLs against s3rver ----------------------------------------------------------


class S3:
    """The s3rver of this module, its key pair and a botocore client for it."""

    def __init__(self) -> None:
        self.key_id, self.secret = key_id(), secret()
        self.server = S3rver(self.key_id, self.secret, [BUCKET]).start()
        self.client = self.signer(self.key_id, self.secret, V4)
        self.client.put_object(Bucket=BUCKET, Key=OBJECT, Body=DATA)
        self.client.put_object(Bucket=BUCKET, Key="empty.txt", Body=b"")

    def signer(self, kid: str, sec: str, config: Config) -> Any:
        return botocore.session.get_session().create_client(
            "s3", region_name="eu-central-1", endpoint_url=self.server.endpoint,
            aws_access_key_id=kid, aws_secret_access_key=sec, config=config)

    def presign(self, op: str = "get_object", *, key: str = OBJECT, bucket: str = BUCKET,
                expires: int = 600, sec: str | None = None, kid: str | None = None,
                config: Config = V4, x_id: str | None = None, **params: Any) -> str:
        client = self.signer(kid or self.key_id, sec or self.secret, config)
        if x_id:  # what the JS SDK v3 adds: the operation, signed like any parameter
            def add_x_id(request: Any, **_: Any) -> None:
                request.url += ("&" if "?" in request.url else "?") + f"x-id={x_id}"
            client.meta.events.register("before-sign.s3", add_x_id)
        url: str = client.generate_presigned_url(
            op, Params={"Bucket": bucket, "Key": key, **params}, ExpiresIn=expires)
        return url

    def state(self) -> list[tuple[str, str]]:
        """Every object with the SHA-256 of its content."""
        listed = self.client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        return sorted(
            (o["Key"], hashlib.sha256(
                self.client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
            ).hexdigest())
            for o in listed)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    server = S3()
    yield server
    server.server.stop()


def check(text: str, tmp_path: Path, s3: S3) -> tuple[Explanation, list[dict[str, Any]]]:
    """Verify ``text``; the explanation and the requests s3rver answered meanwhile."""
    before = len(s3.server.requests())
    allow = ((f"127.0.0.1:{s3.server.port}"),)
    opts = VerifyOptions(allow_internal=_hosts(allow), per_host_interval=0.0, timeout=5.0,
                         audit_log=tmp_path / "audit.jsonl")
    [e] = keyscope.explain(text, verify=opts)
    settle(s3.server.requests, before, _answered(e))
    return e, s3.server.requests()[before:]


def _hosts(items: tuple[str, ...]) -> Any:
    from keyscope.verify.guard import parse_internal_hosts

    return parse_internal_hosts(",".join(items))


def test_get_url_is_live_and_reads_one_byte_at_most(s3: S3, tmp_path: Path) -> None:
    url = s3.presign()
    e, sent = check(url, tmp_path, s3)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("live", True)
    [probe] = v.probes
    assert (probe.method, probe.http_status) == ("GET", 206)
    assert probe.facts["objectSize"] == str(len(DATA))
    assert [(r["method"], r["range"], r["status"]) for r in sent] == [("GET", "bytes=0-0", 206)]
    assert "REDACTED" in probe.url and urlsplit(url).query.split("X-Amz-Signature=")[1] \
        not in json.dumps([p.url for p in v.probes])


def test_head_url_is_probed_with_head_after_get_is_refused(s3: S3, tmp_path: Path) -> None:
    e, sent = check(s3.presign("head_object"), tmp_path, s3)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("live", True)
    assert [(p.method, p.status) for p in v.probes] == [
        ("GET", "method-or-signature-rejected"), ("HEAD", "live")]
    assert [(r["method"], r["status"]) for r in sent] == [("GET", 403), ("HEAD", 200)]


def test_head_url_naming_its_operation_gets_only_head(s3: S3, tmp_path: Path) -> None:
    e, sent = check(s3.presign("head_object", x_id="HeadObject"), tmp_path, s3)
    assert e.verification is not None and e.verification.status == "live"
    assert [(r["method"], r["status"]) for r in sent] == [("HEAD", 200)]


def test_put_url_is_never_requested_with_put(s3: S3, tmp_path: Path) -> None:
    before = s3.state()
    # Only host signed: the URL does not say it is for PUT; GET and HEAD are refused.
    e, sent = check(s3.presign("put_object", key="new/upload.bin"), tmp_path, s3)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("method-or-signature-rejected", None)
    assert [r["method"] for r in sent] == ["GET", "HEAD"]
    # Signed content-type, or x-id=PutObject: an upload, so nothing is sent at all.
    for url in (s3.presign("put_object", ContentType="text/plain"),
                s3.presign("put_object", x_id="PutObject")):
        e, sent = check(url, tmp_path, s3)
        assert e.verification is not None and e.verification.status == "not-verifiable"
        assert "never sends a write" in e.verification.summary and sent == []
    assert s3.state() == before
    assert all(r["method"] in ("GET", "HEAD") for r in s3.server.requests()
               if "X-Amz-Credential" in r["url"] or "AWSAccessKeyId" in r["url"])


def test_wrong_secret(s3: S3, tmp_path: Path) -> None:
    # The URL names its operation: a refused signature means a wrong or rotated key.
    e, sent = check(s3.presign(sec=secret(), x_id="GetObject"), tmp_path, s3)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("signature-rejected", False)
    assert v.probes[0].error_code == "SignatureDoesNotMatch"
    assert [(r["method"], r["status"]) for r in sent] == [("GET", 403)]
    # Without it, the refusal may also mean "signed for another method": not dead.
    e, _ = check(s3.presign(sec=secret()), tmp_path, s3)
    assert e.verification is not None and e.verification.live is None


def test_unknown_key_is_dead(s3: S3, tmp_path: Path) -> None:
    e, _ = check(s3.presign(kid=key_id()), tmp_path, s3)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("key-unknown", False)
    assert v.probes[0].error_code == "InvalidAccessKeyId"


def test_expired(s3: S3, tmp_path: Path) -> None:
    url = s3.presign(expires=1)
    time.sleep(2.1)
    e, sent = check(url, tmp_path, s3)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("expired", False)
    assert [(r["method"], r["status"]) for r in sent] == [("GET", 403)]


def test_missing_object_and_bucket(s3: S3, tmp_path: Path) -> None:
    e, _ = check(s3.presign(key="models/gone.bin"), tmp_path, s3)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("live", True)  # signature accepted
    assert v.probes[0].error_code == "NoSuchKey"
    e, _ = check(s3.presign(bucket="deleted-bucket"), tmp_path, s3)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("bucket-not-found", False)


def test_empty_object_and_sigv2(s3: S3, tmp_path: Path) -> None:
    e, sent = check(s3.presign(key="empty.txt"), tmp_path, s3)
    assert e.verification is not None and e.verification.status == "live"
    url = s3.presign(config=V2)
    assert "AWSAccessKeyId=" in url
    e, sent = check(url, tmp_path, s3)
    assert e.verification is not None and e.verification.status == "live"
    assert [(r["method"], r["range"]) for r in sent] == [("GET", "bytes=0-0")]


# --- key pairs: sts:GetCallerIdentity against moto ------------------------------------------


class Moto:
    """moto_server with user alice and her keys; authentication on for every request."""

    def __init__(self) -> None:
        self.server = MotoServer().start()
        iam = self.client("iam", "AKIAANYTHINGATALL123", "x" * 40)
        self.user_id = iam.create_user(UserName="alice")["User"]["UserId"]
        self.key = iam.create_access_key(UserName="alice")["AccessKey"]
        self.doomed = iam.create_access_key(UserName="alice")["AccessKey"]
        iam.create_role(RoleName="trainer", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:*",
                                                    "Principal": {"AWS": "*"}}]}))
        iam.put_user_policy(UserName="alice", PolicyName="all", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        self.server.authenticate_after(0)

    def client(self, service: str, kid: str, sec: str, token: str | None = None) -> Any:
        return botocore.session.get_session().create_client(
            service, region_name="us-east-1", endpoint_url=self.server.endpoint,
            aws_access_key_id=kid, aws_secret_access_key=sec, aws_session_token=token)

    def pair(self, key: dict[str, str], sec: str | None = None) -> str:
        return (f"AWS_ACCESS_KEY_ID={key['AccessKeyId']}\n"
                f"AWS_SECRET_ACCESS_KEY={sec or key['SecretAccessKey']}\n")


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    server = Moto()
    yield server
    server.server.stop()


def sts(text: str, tmp_path: Path, moto: Moto, **kw: Any) -> tuple[Explanation, list[Any]]:
    before = len(moto.server.requests())
    opts = VerifyOptions(
        allow_internal=kw.pop("allow", _hosts((f"127.0.0.1:{moto.server.port}",))),
        endpoints=(("aws-sts", moto.server.endpoint),), per_host_interval=0.0, timeout=5.0,
        audit_log=tmp_path / "audit.jsonl")
    [e] = keyscope.explain(text, verify=opts)
    settle(moto.server.requests, before, _answered(e))
    return e, moto.server.requests()[before:]


def _answered(e: Explanation) -> int:
    """How many of ``e``'s live-check probes a server answered."""
    return sum(1 for p in e.verification.probes if p.http_status) if e.verification else 0


def test_good_key_is_live_with_its_arn(moto: Moto, tmp_path: Path) -> None:
    e, sent = sts(moto.pair(moto.key), tmp_path, moto)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("live", True)
    [probe] = v.probes
    assert probe.probe == "sts:GetCallerIdentity" and probe.http_status == 200
    assert probe.facts == {"account": "123456789012",
                           "arn": "arn:aws:iam::123456789012:user/alice",
                           "userId": moto.user_id}
    assert "arn:aws:iam::123456789012:user/alice" in v.summary
    assert sent == [("POST", "/", 200)]
    assert moto.key["SecretAccessKey"] not in (tmp_path / "audit.jsonl").read_text()


def test_wrong_secret_is_dead(moto: Moto, tmp_path: Path) -> None:
    e, sent = sts(moto.pair(moto.key, secret()), tmp_path, moto)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("signature-rejected", False)
    assert v.probes[0].error_code == "SignatureDoesNotMatch"
    assert sent == [("POST", "/", 403)]


def test_deleted_key_is_dead(moto: Moto, tmp_path: Path) -> None:
    e, _ = sts(moto.pair(moto.doomed), tmp_path, moto)
    assert e.verification is not None and e.verification.status == "live"
    moto.server.authenticate_after(1)
    moto.client("iam", "AKIAANYTHINGATALL123", "x" * 40).delete_access_key(
        UserName="alice", AccessKeyId=moto.doomed["AccessKeyId"])
    e, _ = sts(moto.pair(moto.doomed), tmp_path, moto)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("key-unknown", False)
    assert v.probes[0].error_code == "InvalidClientTokenId"


def test_session_credentials_are_signed_with_their_token(moto: Moto, tmp_path: Path) -> None:
    creds = moto.client("sts", moto.key["AccessKeyId"], moto.key["SecretAccessKey"]).assume_role(
        RoleArn="arn:aws:iam::123456789012:role/trainer", RoleSessionName="leak")["Credentials"]
    text = (f"aws_access_key_id = {creds['AccessKeyId']}\n"
            f"aws_secret_access_key = {creds['SecretAccessKey']}\n"
            f"aws_session_token = {creds['SessionToken']}\n")
    e, _ = sts(text, tmp_path, moto)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("live", True)
    assert v.probes[0].facts["arn"].endswith(":assumed-role/trainer/leak")


def test_notice_says_no_permission_and_cloudtrail(moto: Moto) -> None:
    [(explanation, credential)] = read_text(moto.pair(moto.key), datetime.now(UTC),
                                            DEFAULT_POLICY)
    target = Target(credential, None, explanation.fingerprint)
    default = plan_notice([target], VerifyOptions())
    assert "POST https://sts.amazonaws.com/  (sts:GetCallerIdentity: " in default
    assert "needs no permission" in default and "CloudTrail" in default
    assert moto.key["SecretAccessKey"] not in default
    aimed = plan_notice([target], VerifyOptions(endpoints=(("aws-sts", moto.server.endpoint),)))
    assert f"POST {moto.server.endpoint}/  (sts:GetCallerIdentity" in aimed


def test_endpoint_needs_allow_internal(moto: Moto, tmp_path: Path) -> None:
    e, sent = sts(moto.pair(moto.key), tmp_path, moto, allow=False)
    v = e.verification
    assert v is not None and v.status == "refused-by-keyscope" and sent == []


def test_cli_verify_endpoint(
    moto: Moto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = moto.server.port
    args = ["explain", "--format", "json", "--verify", f"--allow-internal=127.0.0.1:{port}",
            "--verify-endpoint", f"aws-sts=http://127.0.0.1:{port}/",
            "--verify-interval", "0", "--audit-log", str(tmp_path / "a.jsonl"),
            moto.pair(moto.key)]
    assert main(args) == 0
    out = capsys.readouterr()
    [doc] = json.loads(out.out)["credentials"]
    assert doc["verification"]["status"] == "live"
    assert moto.key["SecretAccessKey"] not in out.out + out.err
    assert "CloudTrail" in out.err
    for bad in ("nope=http://127.0.0.1:1", "aws-sts=ftp://127.0.0.1/", "aws-sts=http://x/?q=1"):
        assert main(["explain", "--verify", "--verify-endpoint", bad, "AKIA"]) == 2
        assert "--verify-endpoint" in capsys.readouterr().err


def test_scan_verify_checks_a_presigned_url_found_in_a_file(
    s3: S3, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "repo"
    tree.mkdir()
    (tree / "config.py").write_text(f'MODEL_URL = "{s3.presign()}"\n')
    before = len(s3.server.requests())
    rc = main(["scan", "--format", "json", "--verify",
               f"--allow-internal=127.0.0.1:{s3.server.port}", "--verify-interval", "0",
               "--audit-log", str(tmp_path / "a.jsonl"), "-j", "2", str(tree)])
    out = capsys.readouterr()
    assert rc in (0, 1), out.err
    [finding] = json.loads(out.out)["findings"]
    assert finding["explanation"]["verification"]["status"] == "live"
    settle(s3.server.requests, before, 1)
    assert [(r["method"], r["range"]) for r in s3.server.requests()[before:]] == [
        ("GET", "bytes=0-0")]


def _plan(text: str) -> list[Any] | str:
    from keyscope.verify import plan

    [(explanation, credential)] = read_text(text, datetime.now(UTC), DEFAULT_POLICY)
    return plan(Target(credential, None, explanation.fingerprint))


def test_plans_refuse_what_cannot_be_reproduced_and_upgrade_to_https() -> None:
    session = botocore.session.get_session()
    client = session.create_client("s3", region_name="eu-central-1", config=V4,
                                   aws_access_key_id=key_id(), aws_secret_access_key=secret())
    # SSE-C: the URL signs headers (the customer key) whose values it does not carry.
    sse = client.generate_presigned_url("get_object", Params={
        "Bucket": BUCKET, "Key": OBJECT, "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": "k" * 32})
    assert "signs headers whose values it does not carry" in str(_plan(sse))
    plain = client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": OBJECT})
    http = "http://" + plain.split("://", 1)[1]
    requests = _plan(http)
    assert not isinstance(requests, str)
    assert [r.method for r in requests] == ["GET", "HEAD"]
    assert all(r.url.startswith("https://") and "REDACTED" in r.shown_url for r in requests)
    assert requests[1].fallback and dict(requests[0].headers) == {"Range": "bytes=0-0"}
    bare = plain.split("?", 1)[1]
    assert "host is not known" in str(_plan(bare))


def test_an_internal_host_in_a_scanned_url_is_refused(tmp_path: Path) -> None:
    client = botocore.session.get_session().create_client(
        "s3", region_name="eu-central-1", endpoint_url="http://10.1.2.3:9000", config=V4,
        aws_access_key_id=key_id(), aws_secret_access_key=secret())
    url = client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": OBJECT})
    [e] = keyscope.explain(url, verify=VerifyOptions(audit_log=tmp_path / "a.jsonl"))
    v = e.verification
    assert v is not None and v.status == "refused-by-keyscope" and v.live is None
