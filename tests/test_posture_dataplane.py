"""``keyscope posture --connection-string``: the data-plane checks against the real Azurite.

The account is set up with the Azure SDK (logging off, soft delete off, a public
container, a stored access policy valid for years, a CORS rule for any origin); the
report must name each with its exact ``az`` fix, the whole account must be unchanged
afterwards (snapshot), and every request sent must have been a GET (the audit log).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from azure.storage.blob import (
    AccessPolicy,
    BlobAnalyticsLogging,
    ContainerSasPermissions,
    CorsRule,
    RetentionPolicy,
)

from keyscope.analyze.azure.permissions import ACCOUNT, BLOB
from keyscope.cli import main
from tests.azurite import Azurite, snapshot_diff

PUBLIC = "posture-public"
POLICY = "posture-long"
NOW = "2026-12-07T12:00:00Z"


@pytest.fixture
def weak_account(azurite: Azurite) -> Iterator[Azurite]:
    """Logging off, soft delete off, a public container with a read-write-delete stored
    policy until 2099, CORS for any origin; all undone afterwards."""
    service = azurite.blob_service()
    before = service.get_service_properties()
    service.set_service_properties(
        analytics_logging=BlobAnalyticsLogging(read=False, write=False, delete=False),
        delete_retention_policy=RetentionPolicy(enabled=False),
        cors=[CorsRule(["*"], ["GET", "PUT"])],
    )
    container = service.create_container(PUBLIC, public_access="container")
    policy = AccessPolicy(permission=ContainerSasPermissions(read=True, write=True, delete=True,
                                                             list=True),
                          start=datetime(2024, 1, 1, tzinfo=UTC),
                          expiry=datetime(2099, 1, 1, tzinfo=UTC))
    container.set_container_access_policy({POLICY: policy}, public_access="container")
    try:
        yield azurite
    finally:
        container.delete_container()
        service.set_service_properties(
            analytics_logging=before["analytics_logging"],
            delete_retention_policy=before["delete_retention_policy"],
            cors=before["cors"],
        )


def posture(capsys: pytest.CaptureFixture[str], tmp_path: Path, cs: str,
            *extra: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the CLI in-process; (the JSON document, the audit log's lines)."""
    audit = tmp_path / "audit.jsonl"
    audit.unlink(missing_ok=True)
    capsys.readouterr()
    code = main(["posture", "--connection-string", cs, "--allow-internal", "--format", "json",
                 "--audit-log", str(audit), "--now", NOW, *extra])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    return json.loads(out), lines


def test_logging_soft_delete_policy_and_public_container_are_reported_with_fixes(
    weak_account: Azurite, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    acct = weak_account.account
    before = weak_account.snapshot()
    doc, audit = posture(capsys, tmp_path, weak_account.connection_string)
    after = weak_account.snapshot()
    assert before == after, snapshot_diff(before, after)

    schema = json.loads(files("keyscope").joinpath("schemas/posture-v1.json").read_text())
    jsonschema.validate(doc, schema)
    # never a write: every request the transport sent (audit log) and reported was a GET
    assert audit and {line["method"] for line in audit} == {"GET"}
    assert doc["requests"]["methods"] == ["GET"] and doc["requests"]["count"] >= 3
    assert weak_account.key not in json.dumps(doc) + json.dumps(audit)

    [account] = doc["accounts"]
    assert account["account"] == acct and account["sources"] == ["data plane"]
    checks = {c["code"]: c for c in account["checks"]}
    commands = {code: [f["command"] for f in c["fixes"]] for code, c in checks.items()}

    assert "Storage Analytics logging is off" in checks["logging-off"]["detail"]
    assert (f"az storage logging update --account-name {acct} --services b --log rwd "
            "--retention 90") in commands["logging-off"]
    assert checks["soft-delete-off"]["severity"] == "high"
    assert any("--enable-delete-retention true --delete-retention-days 14" in c
               for c in commands["soft-delete-off"])
    stored = [c for c in account["checks"] if c["code"] == "stored-policy-long"
              and POLICY in c["setting"]]
    assert len(stored) == 1 and "2099-01-01" in stored[0]["detail"]
    assert stored[0]["severity"] == "high"  # it can write and delete
    assert "read, write, delete and list" in stored[0]["detail"]  # explain's blob letters
    assert (f"az storage container policy update --account-name {acct} --container-name "
            f"{PUBLIC} --name {POLICY} --expiry 2026-12-14") in [
        f["command"] for f in stored[0]["fixes"]]
    # the seeded read-only policy valid until 2099 is reported too, at a lower severity
    seeded = [c for c in account["checks"] if c["code"] == "stored-policy-long"
              and "readpolicy" in c["setting"]]
    assert len(seeded) == 1 and seeded[0]["severity"] == "medium"
    public = [c for c in account["checks"] if c["code"] == "public-container"]
    assert len(public) == 1 and f"'{PUBLIC}'" in public[0]["detail"]
    assert (f"az storage container set-permission --name {PUBLIC} --public-access off "
            f"--account-name {acct}") in [f["command"] for f in public[0]["fixes"]]
    assert f"az storage cors clear --account-name {acct} --services b" in commands[
        "cors-any-origin"]
    # Shared Key was accepted: the account key, account and service SAS all work here
    assert account["settings"]["allow_shared_key_access"] is True
    assert "shared-key-allowed" in checks

    verdicts = {v["kind"]: v for v in account["verdict"]}
    assert {v["state"] for v in verdicts.values()} == {"open"}
    assert verdicts["account-sas"]["severity"] == "critical"
    # explain's own words: the account SAS table and the blob service SAS table
    assert f"write: {ACCOUNT['w'][1]}" in verdicts["account-sas"]["can"]
    assert f"delete: {BLOB['d'][1]}" in verdicts["service-sas"]["can"]
    assert "soft-delete-off" in verdicts["account-key"]["would_contain"]
    assert "stored-policy-long" in verdicts["service-sas"]["would_contain"]
    assert "its use is logged" not in verdicts["account-sas"]["limited_by"]


def test_the_same_account_with_logging_and_soft_delete_on_is_judged_by_its_settings(
    weak_account: Azurite, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = weak_account.blob_service()
    service.set_service_properties(
        analytics_logging=BlobAnalyticsLogging(read=True, write=True, delete=True,
                                               retention_policy=RetentionPolicy(True, 30)),
        delete_retention_policy=RetentionPolicy(enabled=True, days=7),
    )
    # the connection string from standard input (kept out of the process list)
    monkeypatch.setattr("sys.stdin", io.StringIO(weak_account.connection_string))
    doc, audit = posture(capsys, tmp_path, "-")
    assert {line["method"] for line in audit} == {"GET"}
    [account] = doc["accounts"]
    codes = {c["code"] for c in account["checks"]}
    assert "logging-off" not in codes and "soft-delete-off" not in codes
    assert "public-container" in codes  # still public
    verdicts = {v["kind"]: v for v in account["verdict"]}
    assert "its use is logged" in verdicts["account-sas"]["limited_by"]
    assert any("kept 7 days (soft delete), but this credential can switch soft delete off"
               in limit for limit in verdicts["account-key"]["limited_by"])
    assert any(limit.startswith("deleted blobs are kept 7 days (soft delete)")
               and "switch" not in limit for limit in verdicts["service-sas"]["limited_by"])


def test_text_report_names_each_fix(
    weak_account: Azurite, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    capsys.readouterr()
    code = main(["posture", "--connection-string", weak_account.connection_string,
                 "--allow-internal", "--audit-log", str(tmp_path / "a.jsonl"), "--now", NOW])
    out = capsys.readouterr().out
    assert code == 0
    assert f"storage account '{weak_account.account}'" in out
    assert "a leaked account SAS: open [critical]" in out
    assert "[high] logging-off (logging)" in out
    assert f"az storage logging update --account-name {weak_account.account}" in out
    assert "methods: GET; listKeys never called" in out
    assert weak_account.key not in out


def test_without_allow_internal_the_emulator_is_not_read(
    azurite: Azurite, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    capsys.readouterr()
    code = main(["posture", "--connection-string", azurite.connection_string, "--format",
                 "json", "--audit-log", str(tmp_path / "a.jsonl"), "--now", NOW])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    [account] = doc["accounts"]
    assert any("--allow-internal" in e for e in account["errors"])
    assert all(r["status"] is None for r in doc["requests"]["sent"])  # nothing answered
