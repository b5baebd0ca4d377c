"""``--verify``: read-only live checks against the real Azurite emulator.

Every token is signed by the Azure SDK with the emulator account's key; every test
that sends a probe compares a snapshot of all of Azurite's state (containers, blobs
with content hashes, properties, metadata, policies, queues with their messages,
tables, service properties) before and after.
"""

from __future__ import annotations

import base64
import http.server
import itertools
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, unquote

import jsonschema
import pytest
from azure.storage.blob import (
    BlobSasPermissions,
    ContainerSasPermissions,
    generate_blob_sas,
    generate_container_sas,
)
from azure.storage.queue import QueueSasPermissions, generate_queue_sas

import keyscope
from keyscope.cli import main
from keyscope.model import Explanation
from keyscope.verify import Target, verify_all
from keyscope.verify.guard import InternalHost, parse_internal_hosts
from keyscope.verify.transport import Transport, VerifyOptions
from tests.azurite import Azurite, Seed, new_key, snapshot_diff
from tests.sdk import account_sas

SCHEMAS = Path(__file__).resolve().parents[1] / "src" / "keyscope" / "schemas"


def soon(hours: float = 2) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


@pytest.fixture
def unchanged(azurite: Azurite) -> Iterator[None]:
    """Asserts that the test left every byte and property of the emulator as it was."""
    before = azurite.snapshot()
    yield
    after = azurite.snapshot()
    assert before == after, snapshot_diff(before, after)


def options(tmp_path: Path, **kw: Any) -> VerifyOptions:
    base: dict[str, Any] = {
        "allow_internal": True,
        "per_host_interval": 0.0,
        "timeout": 5.0,
        "audit_log": tmp_path / "audit.jsonl",
    }
    return VerifyOptions(**(base | kw))


def exactly(text: str) -> tuple[InternalHost, ...]:
    """``--allow-internal=HOST:PORT`` for every endpoint in ``text``, and nothing more."""
    return parse_internal_hosts(",".join(re.findall(r"https?://([^/?;\s]+)", text)))


def allow_flag(az: Azurite) -> str:
    """The CLI flag that lets probes reach this emulator's blob endpoint, and only it."""
    return "--allow-internal=" + az.blob_url.split("/")[2]


def check(text: str, tmp_path: Path, **kw: Any) -> Explanation:
    kw.setdefault("allow_internal", exactly(text))
    [e] = keyscope.explain(text, account=kw.pop("account", None), verify=options(tmp_path, **kw))
    assert e.verification is not None
    return e


def audit(tmp_path: Path, event: str = "result") -> list[dict[str, Any]]:
    """The audit log's records of one kind: "result" (one per request) or "request"."""
    path = tmp_path / "audit.jsonl"
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in records if r["event"] == event]


def tamper(url: str) -> str:
    """Change one byte of the signature, keeping it valid Base64."""
    head, sig = url.rsplit("sig=", 1)
    raw = bytearray(base64.b64decode(unquote(sig)))
    raw[0] ^= 0x01
    return head + "sig=" + quote(base64.b64encode(bytes(raw)).decode(), safe="")


def blob_account_url(az: Azurite, path: str = "models", **kw: Any) -> str:
    kw.setdefault("services", "b")
    kw.setdefault("permission", "rl")
    kw.setdefault("expiry", soon())
    return f"{az.blob_url}/{path}?" + account_sas(az.account, kw.pop("key", az.key), **kw)


# --- statuses against the real emulator ---------------------------------------------------


def test_live_account_sas(azurite: Azurite, unchanged: None, tmp_path: Path) -> None:
    e = check(blob_account_url(azurite), tmp_path)
    v = e.verification
    assert v is not None
    assert (v.status, v.live) == ("live", True)
    [probe] = v.probes
    assert probe.probe == "Get Account Information"
    assert probe.http_status == 200
    assert probe.facts["sku"] and probe.facts["accountKind"]
    assert "sig=REDACTED" in probe.url


def test_live_account_sas_deep_reads_only_metadata(
    azurite: Azurite, unchanged: None, tmp_path: Path
) -> None:
    url = blob_account_url(azurite, "models/checkpoint.ckpt", permission="rlw")
    e = check(url, tmp_path, deep=True)
    v = e.verification
    assert v is not None and v.status == "live"
    probes = {p.probe: p for p in v.probes}
    assert set(probes) == {
        "Get Account Information",
        "List Containers",
        "Get Blob Service Properties",
        "Get Blob Properties",
    }
    assert all(p.status == "live" for p in v.probes)
    assert probes["Get Blob Properties"].method == "HEAD"
    assert "loggingRead" in probes["Get Blob Service Properties"].facts
    assert probes["List Containers"].facts["listedOne"] == "yes"
    assert "maxresults=1" in probes["List Containers"].url


def test_expired(azurite: Azurite, unchanged: None, tmp_path: Path) -> None:
    url = blob_account_url(azurite, expiry=datetime.now(UTC) - timedelta(minutes=5))
    v = check(url, tmp_path).verification
    assert v is not None
    assert (v.status, v.live) == ("expired", False)
    assert v.probes[0].http_status == 403
    assert v.probes[0].error_code == "AuthorizationFailure"  # Azurite's code for it


def test_not_yet_valid(azurite: Azurite, unchanged: None, tmp_path: Path) -> None:
    url = blob_account_url(azurite, start=soon(1), expiry=soon(3))
    v = check(url, tmp_path).verification
    assert v is not None and v.status == "not-yet-valid"


def test_altered_signature(azurite: Azurite, unchanged: None, tmp_path: Path) -> None:
    v = check(tamper(blob_account_url(azurite)), tmp_path).verification
    assert v is not None
    assert (v.status, v.live) == ("signature-rejected", False)


def test_wrong_key(azurite: Azurite, unchanged: None, tmp_path: Path) -> None:
    v = check(blob_account_url(azurite, key=new_key()), tmp_path).verification
    assert v is not None and v.status == "signature-rejected"


def test_second_key_is_live_too(azurite: Azurite, unchanged: None, tmp_path: Path) -> None:
    v = check(blob_account_url(azurite, key=azurite.key2), tmp_path).verification
    assert v is not None and v.status == "live"


def test_permission_mismatch(azurite: Azurite, unchanged: None, tmp_path: Path) -> None:
    # Get Account Information needs any of r c d l p u w; "add" alone is not enough.
    v = check(blob_account_url(azurite, permission="a"), tmp_path).verification
    assert v is not None
    assert (v.status, v.live) == ("permission-mismatch", True)
    assert v.probes[0].error_code == "AuthorizationPermissionMismatch"


def test_resource_type_mismatch(azurite: Azurite, unchanged: None, tmp_path: Path) -> None:
    # A queue-only account SAS for objects: probed with Get Queue Service Properties,
    # which needs the service resource type. The signature is still proven valid.
    sas = account_sas(azurite.account, azurite.key, services="q", resource_types="o",
                      permission="r", expiry=soon())
    v = check(f"{azurite.queue_url}/jobs?{sas}", tmp_path).verification
    assert v is not None
    assert (v.status, v.live) == ("resource-type-mismatch", True)
    assert v.probes[0].error_code == "AuthorizationResourceTypeMismatch"


def test_service_mismatch(azurite: Azurite, unchanged: None, tmp_path: Path) -> None:
    # A queue-only account SAS, leaked as a blob URL.
    v = check(blob_account_url(azurite, services="q"), tmp_path).verification
    assert v is not None
    assert (v.status, v.live) == ("service-mismatch", True)


def test_protocol_mismatch(azurite: Azurite, unchanged: None, tmp_path: Path) -> None:
    v = check(blob_account_url(azurite, protocol="https"), tmp_path).verification
    assert v is not None
    assert (v.status, v.live) == ("protocol-mismatch", True)


def test_container_and_blob_sas(
    azurite: Azurite, azurite_seed: Seed, unchanged: None, tmp_path: Path
) -> None:
    c_sas = generate_container_sas(azurite.account, "models", azurite.key,
                                   permission=ContainerSasPermissions(read=True, list=True),
                                   expiry=soon())
    v = check(f"{azurite.blob_url}/models?{c_sas}", tmp_path, deep=True).verification
    assert v is not None and v.status == "live"
    assert [p.probe for p in v.probes] == ["Get Account Information", "List Blobs"]
    b_sas = generate_blob_sas(azurite.account, "models", "checkpoint.ckpt",
                              account_key=azurite.key, permission=BlobSasPermissions(read=True),
                              expiry=soon())
    v = check(f"{azurite.blob_url}/models/checkpoint.ckpt?{b_sas}", tmp_path,
              deep=True).verification
    assert v is not None and v.status == "live"
    head = v.probes[-1]
    assert (head.probe, head.method, head.status) == ("Get Blob Properties", "HEAD", "live")
    # No request ever asked for content: Get Blob is never sent.
    for record in audit(tmp_path):
        assert record["method"] in ("GET", "HEAD")
        assert record["method"] == "HEAD" or "comp=" in record["url"] or "restype=" in record["url"]


def test_stored_policy_live_then_deleted(azurite: Azurite, tmp_path: Path) -> None:
    from azure.storage.blob import AccessPolicy

    service = azurite.blob_service()
    container = service.create_container("policytest")
    try:
        policy = AccessPolicy(permission=ContainerSasPermissions(read=True, list=True),
                              start=datetime(2020, 1, 1, tzinfo=UTC), expiry=soon(24))
        container.set_container_access_policy({"kspolicy": policy})
        sas = generate_container_sas(azurite.account, "policytest", azurite.key,
                                     policy_id="kspolicy")
        url = f"{azurite.blob_url}/policytest?{sas}"
        before = azurite.snapshot()
        assert check(url, tmp_path).verification.status == "live"  # type: ignore[union-attr]
        assert azurite.snapshot() == before
        container.set_container_access_policy({})
        before = azurite.snapshot()
        v = check(url, tmp_path).verification
        assert azurite.snapshot() == before
        assert v is not None
        assert (v.status, v.live) == ("policy-or-signature-rejected", False)
    finally:
        container.delete_container()


def test_user_delegation_sas(
    azurite: Azurite, unchanged: None, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    udk = Azurite.user_delegation_key(
        "11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000",
        now - timedelta(minutes=5), now + timedelta(hours=1),
    )
    sas = generate_blob_sas(azurite.account, "models", "checkpoint.ckpt",
                            user_delegation_key=udk, permission=BlobSasPermissions(read=True),
                            expiry=now + timedelta(hours=1))
    url = f"{azurite.blob_url}/models/checkpoint.ckpt?{sas}"
    assert check(url, tmp_path).verification.status == "live"  # type: ignore[union-attr]
    v = check(tamper(url), tmp_path).verification
    assert v is not None and v.status == "signature-rejected"


def test_queue_sas_never_dequeues(
    azurite: Azurite, azurite_seed: Seed, unchanged: None, tmp_path: Path
) -> None:
    sas = generate_queue_sas(azurite.account, azurite_seed.queue, azurite.key,
                             permission=QueueSasPermissions(read=True, process=True),
                             expiry=soon())
    v = check(f"{azurite.queue_url}/{azurite_seed.queue}?{sas}", tmp_path, deep=True).verification
    assert v is not None and v.status == "live"
    assert [p.probe for p in v.probes] == ["Get Queue Metadata"]
    assert "messages" not in v.probes[0].url


def test_table_sas_reads_no_entity(
    azurite: Azurite, azurite_seed: Seed, unchanged: None, tmp_path: Path
) -> None:
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.data.tables import TableSasPermissions, generate_table_sas

    sas = generate_table_sas(AzureNamedKeyCredential(azurite.account, azurite.key),
                             azurite_seed.table, permission=TableSasPermissions(read=True),
                             expiry=soon())
    v = check(f"{azurite.table_url}/{azurite_seed.table}?{sas}", tmp_path).verification
    assert v is not None and v.status == "live", v
    assert "keyscope-probe-" in v.probes[0].url  # a filter that matches no entity


def test_connection_string_uses_shared_key(
    azurite: Azurite, unchanged: None, tmp_path: Path
) -> None:
    e = check(azurite.connection_string, tmp_path, deep=True)
    v = e.verification
    assert v is not None and v.status == "live"
    assert {p.probe for p in v.probes} >= {"Get Account Information", "List Containers"}
    log = (tmp_path / "audit.jsonl").read_text()
    assert azurite.key not in log and azurite.key[:20] not in log
    bad = azurite.connection_string.replace(azurite.key, new_key())
    v = check(bad, tmp_path).verification
    assert v is not None and v.status == "signature-rejected"


def test_account_name_gone(tmp_path: Path) -> None:
    sas = account_sas("ghostacct", new_key(), services="b", permission="r", expiry=soon())
    # .invalid never resolves (RFC 6761): as a deleted account's host would not.
    v = check(f"https://ghostacct.blob.core.invalid/models/w.pt?{sas}", tmp_path).verification
    assert v is not None
    assert (v.status, v.live) == ("account-not-found", False)
    assert "register" in keyscope.verify.interface.STATUSES[v.status]


def test_not_verifiable_without_account(tmp_path: Path) -> None:
    sas = account_sas("acct", new_key(), services="b", permission="r", expiry=soon())
    [e] = keyscope.explain(sas, verify=options(tmp_path))
    assert e.verification is not None and e.verification.status == "not-verifiable"
    assert audit(tmp_path) == []


# --- severity follows the verdict ---------------------------------------------------------


def test_live_raises_and_dead_lowers_severity() -> None:
    from keyscope.analyze.policy import after_verification
    from keyscope.model import ProbeResult, Severity, Verification

    sas = generate_blob_sas("contoso", "models", "w.pt", account_key=new_key(),
                            permission=BlobSasPermissions(read=True), expiry=soon(0.5))
    [e] = keyscope.explain(f"https://contoso.blob.core.windows.net/models/w.pt?{sas}")
    probe = ProbeResult("Get Account Information", "GET", "u", "live", 200)
    live = after_verification(e, Verification("live", True, "Live.", (probe,), "t"))
    dead = after_verification(e, Verification("expired", False, "Not live.", (probe,), "t"))
    assert live.severity == Severity(min(Severity.CRITICAL, e.severity + 1))
    assert dead.severity == Severity(max(Severity.LOW, e.severity - 1))
    assert "verified-live" in {r.code for r in live.reasons}
    assert "verified-dead" in {r.code for r in dead.reasons}


# --- safety rails -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["10.1.2.3", "192.168.0.10", "172.16.5.4", "169.254.169.254", "127.0.0.1", "localhost",
     "[::1]", "100.64.0.1"],
)
def test_internal_destinations_refused_without_allow_internal(host: str, tmp_path: Path) -> None:
    sas = account_sas("acct", new_key(), services="b", permission="r", expiry=soon())
    v = check(f"https://{host}/acct/models?{sas}", tmp_path, allow_internal=False).verification
    assert v is not None and v.status == "refused-by-keyscope"
    assert "--allow-internal" in (v.probes[0].detail or "")
    [record] = audit(tmp_path)
    assert record["sent"] is False and record["outcome"] == "refused-by-keyscope"


def test_plain_http_only_to_loopback(tmp_path: Path) -> None:
    from keyscope.verify import plan
    from keyscope.verify.transport import NotSent, Request

    sas = account_sas("acct", new_key(), services="b", permission="r", expiry=soon())
    # A leaked http:// URL is probed over HTTPS; only a local emulator keeps HTTP.
    [found] = keyscope.analyze.azure.reader.read_credentials(
        f"http://acct.blob.core.windows.net/models?{sas}"
    ).sas
    requests = plan(Target(found, "acct", "fp"))
    assert not isinstance(requests, str)
    assert requests[0].url.startswith("https://acct.blob.core.windows.net/")
    # The transport itself refuses plain HTTP to anything but a loopback name, before
    # any DNS lookup.
    transport = Transport(options(tmp_path), resolver=lambda host, port: pytest.fail(host))
    url = "http://acct.blob.core.windows.net/?restype=account&comp=properties"
    with pytest.raises(NotSent) as refused:
        transport.send(Request("Get Account Information", "GET", url, url))
    assert refused.value.status == "refused-by-keyscope"
    assert "plain HTTP" in refused.value.detail
    assert audit(tmp_path)[0]["sent"] is False


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A local server that answers every request with a redirect, slowly."""

    hits: ClassVar[list[tuple[float, str]]] = []
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    delay = 0.0

    def do_GET(self) -> None:
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.peak = max(cls.peak, cls.in_flight)
            cls.hits.append((time.monotonic(), self.path))
        time.sleep(cls.delay)
        with cls.lock:  # before answering: the client may send its next request at once
            cls.in_flight -= 1
        self.send_response(302)
        self.send_header("Location", "https://attacker.example/steal?x=1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[int, type[_Recorder]]]:
    handler = type("Recorder", (_Recorder,), {"hits": [], "in_flight": 0, "peak": 0,
                                              "lock": threading.Lock(), "delay": 0.0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def test_redirects_are_not_followed(recorder: tuple[int, type[_Recorder]], tmp_path: Path) -> None:
    port, handler = recorder
    sas = account_sas("acct", new_key(), services="b", permission="r", expiry=soon())
    v = check(f"http://127.0.0.1:{port}/acct/models?{sas}", tmp_path).verification
    assert v is not None and v.status == "redirect-refused"
    assert "attacker.example" in (v.probes[0].detail or "")
    assert len(handler.hits) == 1


def test_rate_limit_and_concurrency_cap(
    recorder: tuple[int, type[_Recorder]], tmp_path: Path
) -> None:
    port, handler = recorder
    handler.delay = 0.2
    targets = []
    for _ in range(4):
        sas = account_sas("acct", new_key(), services="b", permission="r", expiry=soon())
        [found] = keyscope.analyze.azure.reader.read_credentials(
            f"http://127.0.0.1:{port}/acct/models?{sas}"
        ).sas
        targets.append(Target(found, "acct", "fp"))
    opts = options(tmp_path, per_host_interval=0.15, concurrency=4)
    seen: list[tuple[int, int]] = []
    verdicts = verify_all(targets, opts, on_done=lambda done, total: seen.append((done, total)))
    assert [v.status for v in verdicts] == ["redirect-refused"] * 4
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]  # progress, for the terminal line
    times = sorted(t for t, _ in handler.hits)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # one host: per_host_interval apart (measured at the server, so allow for scheduling)
    assert min(gaps) >= 0.1 and times[-1] - times[0] >= 0.4, gaps
    # Two hosts for the same server (127.0.0.1 and localhost): interval is per host,
    # and the global cap of 1 keeps them one at a time.
    handler.hits.clear()
    handler.peak = 0
    transport = Transport(options(tmp_path, per_host_interval=0.0, concurrency=1))
    both = []
    for host in ("127.0.0.1", "localhost"):
        sas = account_sas("acct", new_key(), services="b", permission="r", expiry=soon())
        [found] = keyscope.analyze.azure.reader.read_credentials(
            f"http://{host}:{port}/acct/models?{sas}"
        ).sas
        both += [Target(found, "acct", "fp")] * 2
    verify_all(both, options(tmp_path, concurrency=4), transport=transport)
    assert handler.peak == 1 and len(handler.hits) == 4
    # A file full of URLs for one host does not become a flood: a cap per host and run.
    handler.hits.clear()
    capped = verify_all(targets, options(tmp_path, max_per_host=2))
    assert [v.status for v in capped].count("refused-by-keyscope") == 2
    assert len(handler.hits) == 2


def test_timeout_is_unreachable(tmp_path: Path) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts, never answers
    try:
        port = listener.getsockname()[1]
        sas = account_sas("acct", new_key(), services="b", permission="r", expiry=soon())
        started = time.monotonic()
        v = check(f"http://127.0.0.1:{port}/acct/models?{sas}", tmp_path, timeout=0.5).verification
        assert time.monotonic() - started < 5
        assert v is not None and v.status == "unreachable"
    finally:
        listener.close()


def test_audit_log_records_every_request_redacted(
    azurite: Azurite, unchanged: None, tmp_path: Path
) -> None:
    url = blob_account_url(azurite, permission="rl")
    sig = url.rsplit("sig=", 1)[1]
    e = check(url, tmp_path, deep=True)
    records = audit(tmp_path)
    assert e.verification is not None
    assert len(records) == len(e.verification.probes) >= 2
    for r in records:
        assert set(r) >= {"time", "credential", "probe", "method", "url", "sent", "httpStatus"}
        assert r["credential"] == e.fingerprint
        assert r["sent"] is True and r["httpStatus"] == 200
        assert "sig=REDACTED" in r["url"] and sig not in r["url"]
        datetime.fromisoformat(r["time"].replace("Z", "+00:00"))


# --- no network without --verify ----------------------------------------------------------

_WATCH = r"""
import sys
events = []
def hook(event, args):
    if event.startswith("socket."):
        events.append(event)
sys.addaudithook(hook)
from keyscope.cli import main
rc = main(sys.argv[1:])
print("EVENTS=" + ",".join(sorted(set(events))), file=sys.stderr)
sys.exit(rc)
"""


def _run_watched(args: list[str], stdin: str | None = None) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-c", _WATCH, *args], input=stdin,
                          capture_output=True, text=True, timeout=120)
    events = proc.stderr.rsplit("EVENTS=", 1)[1].strip()
    return proc.returncode, events


def test_no_socket_without_verify(azurite: Azurite, tmp_path: Path) -> None:
    url = blob_account_url(azurite)
    (tmp_path / "leak.txt").write_text(f"WEIGHTS_URL = '{url}'\n")
    rc, events = _run_watched(["explain", url])
    assert rc == 0 and events == ""
    rc, events = _run_watched(["scan", "-q", "-j", "1", "--fail-on", "never", str(tmp_path)])
    assert rc == 0 and events == ""
    # The watcher does see sockets when a check is asked for.
    rc, events = _run_watched(["explain", "--verify", allow_flag(azurite),
                               "--audit-log", str(tmp_path / "a.jsonl"), url])
    assert rc == 0 and "socket.connect" in events


# --- results in every output format -------------------------------------------------------


def test_scan_verify_outputs(
    azurite: Azurite, unchanged: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "src"
    repo.mkdir()
    live = blob_account_url(azurite, permission="rl")
    dead = tamper(blob_account_url(azurite, permission="r"))
    (repo / "config.py").write_text(f"LIVE = '{live}'\nDEAD = '{dead}'\n")
    common = ["scan", "-q", "-j", "1", "--verify", allow_flag(azurite), "--verify-interval", "0",
              "--audit-log", str(tmp_path / "audit.jsonl"), "--fail-on", "never", str(repo)]

    assert main([*common, "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert "read-only request" in err and "sig=REDACTED" in err
    doc = json.loads(out)
    jsonschema.validate(doc, json.loads((SCHEMAS / "scan-v1.json").read_text()))
    statuses = {f["explanation"]["verification"]["status"] for f in doc["findings"]}
    assert statuses == {"live", "signature-rejected"}
    explain_schema = json.loads((SCHEMAS / "explain-v1.json").read_text())
    for f in doc["findings"]:
        jsonschema.validate({"$schema": explain_schema["$id"], "schema_version": 1,
                             "tool": {"name": "keyscope", "version": "x"},
                             "now": "2026-01-01T00:00:00Z", "credentials": [f["explanation"]]},
                            explain_schema)

    assert main([*common, "--format", "sarif"]) == 0
    sarif = json.loads(capsys.readouterr()[0])
    props = [r["properties"]["verification"] for r in sarif["runs"][0]["results"]]
    assert {p["status"] for p in props} == {"live", "signature-rejected"}
    assert any("Live check" in r["message"]["text"] for r in sarif["runs"][0]["results"])

    assert main([*common, "--format", "jsonl"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr()[0].splitlines()]
    assert {x["verification"]["status"] for x in lines if x["type"] == "verification"} == {
        "live", "signature-rejected"}

    assert main([*common, "--format", "text"]) == 0
    text = capsys.readouterr()[0]
    assert "Live check" in text and "signature-rejected" in text
    assert "checked live: 1 live, 1 not live" in text
    assert live.rsplit("sig=", 1)[1] not in text


def test_cli_verify_equals_deep_and_bad_level(
    azurite: Azurite, unchanged: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = blob_account_url(azurite)
    rc = main(["explain", "--verify=deep", allow_flag(azurite), "--verify-interval", "0",
               "--audit-log", str(tmp_path / "a.jsonl"), "--format", "json", url])
    assert rc == 0
    doc = json.loads(capsys.readouterr()[0])
    probes = doc["credentials"][0]["verification"]["probes"]
    assert [p["probe"] for p in probes][:2] == ["Get Account Information", "List Containers"]
    with pytest.raises(SystemExit):
        main(["explain", "--verify=write", url])


def test_trickled_answer_is_cut_off(tmp_path: Path) -> None:
    class Trickle(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(400):  # bounded: at most ~20 s even if nobody hangs up
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sas = account_sas("acct", new_key(), services="b", permission="r", expiry=soon())
        url = f"http://127.0.0.1:{server.server_address[1]}/acct/models?{sas}"
        started = time.monotonic()
        v = check(url, tmp_path, timeout=0.3).verification
        assert time.monotonic() - started < 3
        assert v is not None and v.status == "unreachable"
    finally:
        server.shutdown()
        server.server_close()


def test_notice_lists_requests_and_sums_up_long_lists(tmp_path: Path) -> None:
    from keyscope.verify import MAX_NOTICE_LINES, plan_notice

    targets = []
    for i in range(MAX_NOTICE_LINES + 5):
        sas = account_sas("acct", new_key(), services="b", permission="r", expiry=soon())
        [found] = keyscope.analyze.azure.reader.read_credentials(
            f"https://acct{i}.blob.core.windows.net/models?{sas}"
        ).sas
        targets.append(Target(found, None, "fp"))
    text = plan_notice(targets, options(tmp_path))
    assert f"up to {MAX_NOTICE_LINES + 5} read-only request(s)" in text
    assert text.count("GET https://") == MAX_NOTICE_LINES
    assert "… and 5 more (each is in the audit log)" in text
    assert "sig=REDACTED" in text and "logs record each one with your IP address" in text
    assert audit(tmp_path) == []  # saying what will be sent sends nothing


def test_a_guessed_account_never_makes_a_credential_dead(tmp_path: Path) -> None:
    """A bare SAS query or key gets its account from --account or nearby text. If the
    service refuses it there, the guess may be wrong: the verdict stays unknown and the
    severity is not lowered."""
    from keyscope.verify import _verdict
    from keyscope.verify.transport import NotSent

    def gone(host: str, port: int) -> list[str]:
        raise NotSent("account-not-found", f"{host} does not resolve (NXDOMAIN)")

    sas = account_sas("ghostacct", new_key(), services="b", permission="r", expiry=soon())
    [e] = keyscope.explain(sas, account="ghostacct")
    [found] = keyscope.analyze.azure.reader.read_credentials(sas).sas
    v = keyscope.verify.verify_one(
        Target(found, "ghostacct", e.fingerprint), Transport(options(tmp_path), resolver=gone)
    )
    assert (v.status, v.live) == ("account-not-found", None)
    assert "may belong to another account" in v.summary
    rejected = keyscope.model.ProbeResult(
        "Get Account Information", "GET", "u", "signature-rejected", 403, "AuthenticationFailed"
    )
    assert _verdict((rejected,), "t").live is False
    assert _verdict((rejected,), "t", inferred_account="acct").live is None


def test_a_non_http_answer_is_unreachable_and_leaks_nothing(tmp_path: Path) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"SSH-2.0-not-http\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    try:
        sas = account_sas("acct", new_key(), services="b", permission="r", expiry=soon())
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/acct/models?{sas}"
        e = check(url, tmp_path)
        v = e.verification
        assert v is not None and v.status == "unreachable"
        sig = url.rsplit("sig=", 1)[1]
        shown = json.dumps(keyscope.report.jsonout.to_data(e))
        shown += (tmp_path / "audit.jsonl").read_text()
        assert sig not in shown and unquote(sig) not in shown
    finally:
        listener.close()
