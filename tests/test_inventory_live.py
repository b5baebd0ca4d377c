"""Live checks in the inventory, against the real Azurite emulator: each check is
kept as history, a credential verified live alerts, and one marked revoked that a
later scan finds live again is reopened (and alerts again)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.azurite import Azurite
from tests.inventory_support import keyscope, rows, scan
from tests.sdk import account_sas


def test_revoked_but_live_again_is_reopened(
    db_url: str, azurite: Azurite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sas = account_sas(azurite.account, azurite.key, services="b", permission="rl",
                      expiry=datetime.now(UTC) + timedelta(hours=2))
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "train.py").write_text(f"DATA = '{azurite.blob_url}/models?{sas}'\n")
    verify = ("--verify", "--allow-internal=" + azurite.blob_url.split("/")[2],
              "--verify-interval", "0", "--audit-log", str(tmp_path / "audit.jsonl"),
              "--no-git")

    scan(capsys, db_url, *verify, str(tree))
    [cred] = rows(db_url, "SELECT * FROM credentials")
    fp = cred["fingerprint"]
    assert (cred["live"], cred["status"], cred["times_live"]) == (1, "open", 1)
    # it expires in two hours: "expiring" too
    assert [r["trigger"] for r in rows(db_url, 'SELECT "trigger" AS trigger FROM alerts')] == [
        "live", "expiring"]
    scan(capsys, db_url, *verify, str(tree))  # still live: no new alert
    assert len(rows(db_url, "SELECT * FROM alerts")) == 2
    assert len(rows(db_url, "SELECT * FROM verifications")) == 2

    code, _ = keyscope(capsys, "inventory", "triage", fp, "--db", db_url, "--status",
                       "revoked", "--note", "key rotated", "--by", "sec")
    assert code == 0
    scan(capsys, db_url, "--no-git", str(tree))  # no live check: stays revoked
    assert rows(db_url, "SELECT status FROM credentials")[0]["status"] == "revoked"

    scan(capsys, db_url, *verify, str(tree))
    [cred] = rows(db_url, "SELECT * FROM credentials")
    assert (cred["status"], cred["times_live"]) == ("open", 2)
    code, out = keyscope(capsys, "inventory", "show", fp, "--db", db_url, "--format", "json")
    story = json.loads(out)
    assert [(t["actor"], t["status"]) for t in story["triage"]] == [
        ("sec", "revoked"), ("keyscope", "open")]
    assert "live again" in story["triage"][1]["note"]
    assert [v["live"] for v in story["verifications"]] == [True, True, True]
    assert [a["trigger"] for a in story["alerts"]] == ["live", "expiring", "live"]
    assert len(_list_live(capsys, db_url)) == 1
    assert sas.rsplit("sig=", 1)[1] not in json.dumps(story)


def _list_live(capsys: pytest.CaptureFixture[str], url: str) -> list[object]:
    code, out = keyscope(capsys, "inventory", "list", "--db", url, "--live", "--format", "json")
    assert code == 0
    found: list[object] = json.loads(out)
    return found
