"""``--verify`` for Google Cloud against a loopback server that checks what Google
checks (tests/gcsserver.py): signed URLs made by google-cloud-storage, verified with
the service account's public key only, and V4 URLs signed with an HMAC key, checked
with its secret; service-account keys through the anonymous
public-key lookup. The server's log shows that only GET and HEAD were sent, and the
key lookup without any credential.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import keyscope
from keyscope.cli import main
from keyscope.model import Explanation
from keyscope.verify.guard import parse_internal_hosts
from keyscope.verify.transport import VerifyOptions
from tests.gcsserver import GcsServer
from tests.test_gcp import EMAIL, hmac_pair, key_info, mint_key_info, signed_url

BUCKET = "ml-artifacts"
OBJECT = "models/run 7/w.bin"
DATA = bytes(range(256)) * 3


@pytest.fixture(scope="module")
def gcs() -> Iterator[GcsServer]:
    server = GcsServer().start()
    server.add_key(key_info())
    server.objects[BUCKET] = {OBJECT: DATA}
    yield server
    server.stop()


def url(gcs: GcsServer, version: str = "v4", **kw: Any) -> str:
    return signed_url(version, api_access_endpoint=gcs.endpoint, **kw)


def check(text: str, tmp_path: Path, gcs: GcsServer,
          **kw: Any) -> tuple[Explanation, list[dict[str, Any]]]:
    """Verify ``text``; the explanation and the requests the server got meanwhile."""
    before = len(gcs.requests())
    host = gcs.endpoint.split("//")[1]
    opts = VerifyOptions(allow_internal=parse_internal_hosts(host), per_host_interval=0.0,
                         timeout=5.0, audit_log=tmp_path / "audit.jsonl", **kw)
    [e] = keyscope.explain(text, verify=opts)
    return e, gcs.requests()[before:]


def test_v4_get_url_is_live_and_reads_one_byte(gcs: GcsServer, tmp_path: Path) -> None:
    e, sent = check(url(gcs), tmp_path, gcs)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("live", True)
    assert (v.probes[0].http_status, v.probes[0].facts["objectSize"]) == (206, str(len(DATA)))
    assert [(r["method"], r["range"]) for r in sent] == [("GET", "bytes=0-0")]
    assert "X-Goog-Signature=REDACTED" in v.probes[0].url


def test_v2_url_is_live(gcs: GcsServer, tmp_path: Path) -> None:
    e, sent = check(url(gcs, "v2"), tmp_path, gcs)
    assert e.verification is not None and e.verification.status == "live"
    assert [r["method"] for r in sent] == ["GET"]


def test_head_url_gets_head_after_get_is_refused(gcs: GcsServer, tmp_path: Path) -> None:
    e, sent = check(url(gcs, method="HEAD"), tmp_path, gcs)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("live", True)
    assert [(r["method"]) for r in sent] == ["GET", "HEAD"]
    assert [p.status for p in v.probes] == ["method-or-signature-rejected", "live"]


def test_upload_urls_are_never_sent_as_uploads(gcs: GcsServer, tmp_path: Path) -> None:
    e, sent = check(url(gcs, method="PUT"), tmp_path, gcs)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("method-or-signature-rejected", None)
    assert [r["method"] for r in sent] == ["GET", "HEAD"]
    for upload in (url(gcs, method="PUT", content_type="application/octet-stream"),
                   url(gcs, method="RESUMABLE")):
        e, sent = check(upload, tmp_path, gcs)
        assert e.verification is not None and e.verification.status == "not-verifiable"
        assert sent == []
    assert gcs.objects == {BUCKET: {OBJECT: DATA}}
    assert all(r["method"] in ("GET", "HEAD") for r in gcs.requests())


def test_url_signed_by_an_unpublished_key(gcs: GcsServer, tmp_path: Path) -> None:
    other = mint_key_info(EMAIL)  # the same account, a key Google does not know
    from google.cloud import storage
    from google.oauth2 import service_account

    blob = storage.Client.create_anonymous_client().bucket(BUCKET).blob(OBJECT)
    forged = blob.generate_signed_url(
        version="v4", expiration=timedelta(hours=1), api_access_endpoint=gcs.endpoint,
        credentials=service_account.Credentials.from_service_account_info(other))
    e, _ = check(forged, tmp_path, gcs)
    v = e.verification
    # GET and HEAD refused: a wrong key, or a URL for another method; not proven dead.
    assert v is not None and (v.status, v.live) == ("method-or-signature-rejected", None)
    assert v.probes[0].error_code == "SignatureDoesNotMatch"


def test_expired(gcs: GcsServer, tmp_path: Path) -> None:
    expiring = url(gcs, expires=1)
    time.sleep(2.1)
    e, sent = check(expiring, tmp_path, gcs)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("expired", False)
    assert v.probes[0].error_code == "ExpiredToken" and len(sent) == 1


def test_missing_object_and_bucket(gcs: GcsServer, tmp_path: Path) -> None:
    e, _ = check(url(gcs, name="models/gone.bin"), tmp_path, gcs)
    assert e.verification is not None and (e.verification.status, e.verification.live) == (
        "live", True)
    e, _ = check(url(gcs, bucket="deleted-bucket"), tmp_path, gcs)
    assert e.verification is not None and e.verification.status == "bucket-not-found"


# --- service-account keys: the anonymous public-key lookup ----------------------------------


def lookup(info: dict[str, str], tmp_path: Path, gcs: GcsServer) -> tuple[Explanation,
                                                                            list[dict[str, Any]]]:
    return check(json.dumps(info), tmp_path, gcs, endpoints=(("gcp-certs", gcs.endpoint),))


def test_published_key_is_live(gcs: GcsServer, tmp_path: Path) -> None:
    e, sent = lookup(key_info(), tmp_path, gcs)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("live", True)
    assert v.probes[0].facts == {"publishedKeys": "1"}
    assert sent == [{"method": "GET", "path": "/robot/v1/metadata/x509/" + quote(EMAIL, safe="@"),
                     "range": None, "auth": False}]


def test_deleted_key_and_deleted_account(gcs: GcsServer, tmp_path: Path) -> None:
    doomed = mint_key_info("batch@ml-research-4821.iam.gserviceaccount.com")
    keeper = mint_key_info("batch@ml-research-4821.iam.gserviceaccount.com")
    gcs.add_key(doomed)
    gcs.add_key(keeper)
    e, _ = lookup(doomed, tmp_path, gcs)
    assert e.verification is not None and e.verification.status == "live"
    gcs.delete_key(doomed["client_email"], doomed["private_key_id"])
    e, _ = lookup(doomed, tmp_path, gcs)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("key-unknown", False)
    assert "1 published certificate" in v.summary
    gone = mint_key_info("gone@ml-research-4821.iam.gserviceaccount.com")
    e, _ = lookup(gone, tmp_path, gcs)
    v = e.verification
    assert v is not None and (v.status, v.live, v.probes[0].http_status) == (
        "key-unknown", False, 404)


def test_a_forged_private_key_under_a_real_key_id(gcs: GcsServer, tmp_path: Path) -> None:
    forged = dict(mint_key_info(EMAIL), private_key_id=key_info()["private_key_id"])
    e, _ = lookup(forged, tmp_path, gcs)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("key-mismatch", False)


def test_cli_lookup_through_verify_endpoint(
    gcs: GcsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = gcs.endpoint.split("//")[1]
    args = ["explain", "--format", "json", "--verify", f"--allow-internal={host}",
            "--verify-endpoint", f"gcp-certs={gcs.endpoint}", "--verify-interval", "0",
            "--audit-log", str(tmp_path / "a.jsonl"), json.dumps(key_info())]
    assert main(args) == 0
    out = capsys.readouterr()
    [doc] = json.loads(out.out)["credentials"]
    assert doc["verification"]["status"] == "live"
    assert "anonymous" in out.err and "nothing reaches the key's project" in out.err
    body = "".join(key_info()["private_key"].splitlines()[1:-1])
    assert body[10:50] not in out.out + out.err + (tmp_path / "a.jsonl").read_text()


# --- V4 URLs signed with an HMAC key (GOOG4-HMAC-SHA256) -------------------------------------


def hmac_signed_url(endpoint: str, access_id: str, secret: str, *, bucket: str = BUCKET,
                    name: str = OBJECT, expires: int = 3600, signed_at: datetime | None = None,
                    method: str = "GET") -> str:
    """A V4 signed URL made with an HMAC key, written here from Google's documented
    algorithm (google-cloud-storage signs V4 only with an RSA key): the canonical
    request, the string to sign over its SHA-256, and the signing key chained from
    ``"GOOG4" + secret`` through the credential scope."""
    at = signed_at or datetime.now(UTC)
    stamp, day = at.strftime("%Y%m%dT%H%M%SZ"), at.strftime("%Y%m%d")
    scope = f"{day}/auto/storage/goog4_request"
    path = f"/{bucket}/{quote(name, safe='/~')}"
    params = {"X-Goog-Algorithm": "GOOG4-HMAC-SHA256",
              "X-Goog-Credential": f"{access_id}/{scope}", "X-Goog-Date": stamp,
              "X-Goog-Expires": str(expires), "X-Goog-SignedHeaders": "host"}
    query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}"
                     for k, v in sorted(params.items()))
    host = endpoint.split("//", 1)[1]
    canonical = "\n".join([method, path, query, f"host:{host}\n", "host", "UNSIGNED-PAYLOAD"])
    to_sign = "\n".join(["GOOG4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("GOOG4" + secret).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{endpoint}{path}?{query}&X-Goog-Signature={signature}"


def test_hmac_signed_url_is_live_and_checked_with_the_secret(
    gcs: GcsServer, tmp_path: Path
) -> None:
    access_id, secret = hmac_pair()
    gcs.add_hmac_key(access_id, secret)
    signed = hmac_signed_url(gcs.endpoint, access_id, secret)
    e, sent = check(signed, tmp_path, gcs)
    assert e.access.kind == "signed-url" and "HMAC key" in e.sentence
    v = e.verification
    assert v is not None and (v.status, v.live) == ("live", True)
    assert (v.probes[0].http_status, v.probes[0].facts["objectSize"]) == (206, str(len(DATA)))
    assert [(r["method"], r["range"]) for r in sent] == [("GET", "bytes=0-0")]
    signature = signed.rsplit("=", 1)[1]
    logged = (tmp_path / "audit.jsonl").read_text()
    assert signature not in logged + v.probes[0].url and secret not in logged


def test_hmac_signed_url_with_a_wrong_secret_or_unknown_key(
    gcs: GcsServer, tmp_path: Path
) -> None:
    access_id, secret = hmac_pair()
    gcs.add_hmac_key(access_id, secret)
    _, other = hmac_pair()
    e, _ = check(hmac_signed_url(gcs.endpoint, access_id, other), tmp_path, gcs)
    v = e.verification
    assert v is not None and v.live is None and v.status.endswith("signature-rejected")
    assert v.probes[0].error_code == "SignatureDoesNotMatch"
    # A signed URL reaching another object is refused too: the path is signed.
    good = hmac_signed_url(gcs.endpoint, access_id, secret)
    moved = good.replace("/models/", "/other/", 1)
    e, _ = check(moved, tmp_path, gcs)
    assert e.verification is not None and e.verification.probes[0].error_code == (
        "SignatureDoesNotMatch")
    unknown, key = hmac_pair()  # deleted, or never created
    e, _ = check(hmac_signed_url(gcs.endpoint, unknown, key), tmp_path, gcs)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("key-unknown", False)


def test_expired_hmac_signed_url(gcs: GcsServer, tmp_path: Path) -> None:
    access_id, secret = hmac_pair()
    gcs.add_hmac_key(access_id, secret)
    old = datetime.now(UTC) - timedelta(hours=2)
    e, _ = check(hmac_signed_url(gcs.endpoint, access_id, secret, signed_at=old), tmp_path, gcs)
    v = e.verification
    assert v is not None and (v.status, v.live) == ("expired", False)
