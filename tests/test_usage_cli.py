"""keyscope usage end to end: a leak committed with real git and found by `scan`, the
JSON report (hashes and unsigned parameters, never the secret) fed to `usage`; the
inventory path on SQLite and PostgreSQL (a use after the leak raises an alert); the
opt-in fetch of `$logs` and `insights-logs-*` from Azurite."""

from __future__ import annotations

import io
import json
import subprocess
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from tests.azurite import Azurite
from tests.inventory_support import assert_no_secret, keyscope, rows
from tests.storage_logs import classic_line, resource_line, sas_hash, signature_of
from tests.test_usage import LEAK, World, world  # noqa: F401 - the module fixture

COMMIT_DATE = "2026-03-01T12:00:00+00:00"


def _repo_with_leak(root: Path, url: str) -> Path:
    repo = root / "repo"
    repo.mkdir()
    env = {"GIT_AUTHOR_NAME": "Alice", "GIT_AUTHOR_EMAIL": "alice@example.org",
           "GIT_COMMITTER_NAME": "Alice", "GIT_COMMITTER_EMAIL": "alice@example.org",
           "GIT_AUTHOR_DATE": COMMIT_DATE, "GIT_COMMITTER_DATE": COMMIT_DATE,
           "HOME": str(root), "PATH": "/usr/bin:/bin"}

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                       env=env)

    git("init", "-q", "-b", "main")
    (repo / "settings.py").write_text(f'MODEL_URL = "{url}"\n')
    git("add", "-A")
    git("commit", "-q", "-m", "add model url")
    return repo


def _logs(scenario: World, root: Path) -> Path:
    logs = root / "logs"
    (logs / "insights-logs-storageread").mkdir(parents=True)
    (logs / "$logs").mkdir()
    (logs / "insights-logs-storageread" / "PT1H.json").write_text(
        "".join(resource_line(r) + "\n" for r in scenario.requests))
    (logs / "$logs" / "000000.log").write_text(_classic(scenario))
    return logs


def _classic(scenario: World) -> str:
    """The SAS requests as $logs lines, but C's: it shares A's parameters, and only the
    hash (absent from $logs) could tell them apart."""
    return "".join(classic_line(r) + "\n" for r, made in zip(scenario.requests,
                                                             scenario.made_by, strict=True)
                   if r.auth_type == "SAS" and "C" not in made)


def test_scan_report_feeds_usage(world: World, tmp_path: Path,  # noqa: F811
                                 capsys: pytest.CaptureFixture[str]) -> None:
    url = world.urls["A"]
    repo = _repo_with_leak(tmp_path, url)
    report = tmp_path / "report.json"
    code, _ = keyscope(capsys, "scan", "-q", "-j", "1", "--fail-on", "never", "--format",
                       "json", "-o", str(report), str(repo))
    assert code == 0
    text = report.read_text()
    assert signature_of(url) not in text and signature_of(url)[:12] not in text
    logs = json.loads(text)["findings"][0]["explanation"]["log_fingerprints"]
    assert logs["AuthenticationHash"] == f"SasSignature({sas_hash(url)})"
    assert logs["unsigned_parameters"] == url.split("?", 1)[1].split("&sig=")[0]
    assert logs["resource_path"] == "/models/ckpt.bin"

    code, out = keyscope(capsys, "usage", "--from-scan", str(report), "--logs",
                         str(_logs(world, tmp_path)), "--format", "json", "-j", "1")
    assert code == 1  # used after the leak
    doc = json.loads(out)
    schema = json.loads(files("keyscope").joinpath("schemas/usage-v1.json").read_text())
    jsonschema.validate(doc, schema)
    [a] = doc["credentials"]
    assert a["leaked_at"] == "2026-03-01T12:00:00Z"
    # 9 requests in each of the two logs: exact in the resource log, strong in $logs
    assert a["match"] == {"exact": 9, "strong": 9, "weak": 0}
    assert a["after_leak"]["count"] == 2 * 5
    assert a["log_forms"] == {"classic": 9, "resource": 9}

    code, out = keyscope(capsys, "usage", "--from-scan", str(report), "--logs",
                         str(tmp_path / "logs"), "-j", "2")
    assert code == 1
    assert "USED: 18 request(s)" in out and "!! after the leak (2026-03-01T12:00:00Z)" in out
    assert "!! writes: PutBlob ×2" in out and "!! deletes: DeleteBlob ×2" in out
    assert signature_of(url)[:12] not in out


def test_credential_from_stdin(world: World, tmp_path: Path,  # noqa: F811
                               capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    logs = _logs(world, tmp_path)
    # B's requests were made on 2026-02-27 from 08:00 to 10:00
    for leaked_at, after, expected in (("2027-01-01T00:00:00Z", 0, 0),
                                       ("2026-02-27T09:00:00Z", 4, 1)):
        monkeypatch.setattr("sys.stdin", io.StringIO(world.urls["B"] + "\n"))
        code, out = keyscope(capsys, "usage", "--credential", "-", "--leaked-at", leaked_at,
                             "--logs", str(logs), "--format", "json", "-j", "1")
        [b] = json.loads(out)["credentials"]
        assert b["requests"] == 6 and b["match"] == {"exact": 3, "strong": 3, "weak": 0}
        assert b["after_leak"]["count"] == after and code == expected
    code, _ = keyscope(capsys, "usage", "--logs", str(logs))
    assert code == 2  # nothing to look for


def test_inventory_records_usage_and_alerts_once(
    world: World, tmp_path: Path, db_url: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = world.urls["A"]
    repo = _repo_with_leak(tmp_path, url)
    code, _ = keyscope(capsys, "scan", "-q", "-j", "1", "--fail-on", "never", "--format",
                       "json", f"--db={db_url}", str(repo))
    assert code == 0
    [key] = rows(db_url, "SELECT * FROM usage_keys")
    assert key["sas_hash"] == sas_hash(url) and key["leaked_at"] == "2026-03-01T12:00:00Z"
    logs = _logs(world, tmp_path)
    for _ in range(2):
        code, out = keyscope(capsys, "usage", "--db", db_url, "--logs", str(logs), "-j", "1")
        assert code == 1, out
    checks = rows(db_url, "SELECT * FROM usage_checks ORDER BY id")
    assert len(checks) == 2
    assert (checks[0]["requests"], checks[0]["after_leak"], checks[0]["writes"],
            checks[0]["deletes"]) == (18, 10, 2, 2)
    alerts = rows(db_url, "SELECT * FROM alerts WHERE \"trigger\" = 'used-after-leak'")
    assert len(alerts) == 1  # once per first use after the leak, however many runs
    payload = json.loads(alerts[0]["payload"])
    schema = json.loads(files("keyscope").joinpath("schemas/alert-v1.json").read_text())
    jsonschema.validate(payload, schema)
    assert payload["usage"]["after_leak"] == 10
    assert payload["usage"]["first_after_leak"] == LEAK.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_no_secret(db_url, signature_of(url))
    dump = json.dumps(rows(db_url, "SELECT * FROM usage_keys")
                      + rows(db_url, "SELECT * FROM usage_checks"), default=str)
    assert signature_of(url)[:12] not in dump


def test_fetch_logs_from_azurite(world: World, azurite: Azurite, tmp_path: Path,  # noqa: F811
                                 capsys: pytest.CaptureFixture[str]) -> None:
    service = azurite.blob_service()
    made: list[str] = []
    try:
        for name, blob, body in (
            ("$logs", "blob/2026/03/01/1200/000000.log",
             _classic(world)),
            ("insights-logs-storageread",
             "resourceId=/subscriptions/0/y=2026/m=03/d=01/h=12/m=00/PT1H.json",
             "".join(resource_line(r) + "\n" for r in world.requests)),
        ):
            container = service.get_container_client(name)
            if not container.exists():
                container.create_container()
                made.append(name)
            container.upload_blob(blob, body.encode(), overwrite=True)
        audit = tmp_path / "audit.jsonl"
        code, out = keyscope(capsys, "usage", "--fetch-logs", azurite.connection_string,
                             "--allow-internal", "--audit-log", str(audit), "--credential",
                             world.urls["A"], "--format", "json", "-j", "1")
        doc = json.loads(out)
        [a] = doc["credentials"]
        assert a["match"] == {"exact": 9, "strong": 9, "weak": 0}, doc["logs"]
        assert code == 1  # accepted, and no leak date: used at all
        sent = [json.loads(line) for line in audit.read_text().splitlines()]
        assert {e["probe"] for e in sent} == {"List Blobs", "Get Blob"}
        assert {e["method"] for e in sent} == {"GET"}
        assert azurite.key[:12] not in audit.read_text()
        # without --allow-internal the loopback emulator is refused
        code, out = keyscope(capsys, "usage", "--fetch-logs", azurite.connection_string,
                             "--audit-log", str(audit), "--credential", world.urls["A"],
                             "--format", "json", "-j", "1")
        doc = json.loads(out)
        assert doc["credentials"][0]["requests"] == 0
        assert any("not listed" in s["reason"] for s in doc["logs"]["skipped"])
    finally:
        for name in made:
            service.delete_container(name)
        for name in ("$logs", "insights-logs-storageread"):
            if name not in made:
                container = service.get_container_client(name)
                for b in container.list_blobs():
                    container.delete_blob(b.name)
