"""``keyscope inventory``: list (every filter, text/JSON/CSV), show, triage, export
(validated against its schema) and outbox, over credentials recorded by real scans."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import timedelta
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from keyscope.cli import main
from tests.inventory_support import keyscope, leak, rows, scan
from tests.sdk import NOW, account_sas, new_key

AT = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@pytest.fixture
def inventory(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, Path]:
    """Three credentials from one scan: an Azure account key (critical), an Azure SAS
    expiring in ten days, an AWS key pair."""
    tree = tmp_path / "tree"
    leak(tree / "app" / "settings.py", "acmeprod")
    sas = account_sas("acmesas", new_key(), services="b", permission="r",
                      expiry=NOW + timedelta(days=10), start=NOW - timedelta(hours=1))
    (tree / "notebook.py").write_text(
        f"URL = 'https://acmesas.blob.core.windows.net/models/w.bin?{sas}'\n")
    rng = random.Random(7)
    key_id = "AKIARZPUZDIK" + rng.choice(B32[:16]) + "".join(rng.choice(B32) for _ in range(7))
    secret = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789+/")
                     for _ in range(40))
    (tree / "aws.ini").write_text(
        f"aws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n")
    scan(capsys, db_url, "--no-git", "--now", AT, str(tree))
    return db_url, tree


def _list(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> list[dict[str, object]]:
    code, out = keyscope(capsys, "inventory", "list", "--db", url, "--now", AT,
                         "--format", "json", *args)
    assert code == 0
    found: list[dict[str, object]] = json.loads(out)
    return found


def test_list_filters_and_formats(
    inventory: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, tree = inventory
    every = _list(capsys, url)
    assert len(every) == 3
    assert {c["provider"] for c in every} == {"azure-storage", "aws"}
    severities = [c["severity"] for c in every]
    assert severities[0] == "critical"  # worst first
    assert [c["account"] for c in _list(capsys, url, "--provider", "aws")] == ["123456789012"]
    assert [c["kind"] for c in _list(capsys, url, "--account", "acmeprod")] == ["account-key"]
    assert {c["severity"] for c in _list(capsys, url, "--severity", "critical")} == {"critical"}
    [soon] = _list(capsys, url, "--expiring-within", "30d")
    assert soon["account"] == "acmesas" and soon["expires"] == (
        NOW + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _list(capsys, url, "--expiring-within", "5d") == []
    assert len(_list(capsys, url, "--source", str(tree))) == 3
    assert _list(capsys, url, "--source", str(tree.parent)) == []
    assert _list(capsys, url, "--live") == []
    assert len(_list(capsys, url, "--present")) == 3
    assert len(_list(capsys, url, "--status", "open")) == 3
    assert _list(capsys, url, "--status", "revoked") == []

    code, out = keyscope(capsys, "inventory", "list", "--db", url, "--format", "csv")
    table = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(table) == 3
    assert {r["fingerprint"] for r in table} == {c["fingerprint"] for c in every}
    assert table[0]["severity"] == "critical" and table[0]["present"] == "1"

    code, out = keyscope(capsys, "inventory", "list", "--db", url)
    assert code == 0 and out.endswith("3 credential(s)\n")
    assert all(str(c["fingerprint"]) in out for c in every)

    code, _ = keyscope(capsys, "inventory", "list", "--db", url, "--expiring-within", "soon")
    assert code == 2


def test_triage_show_and_history(
    inventory: tuple[str, Path], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = inventory
    [aws] = _list(capsys, url, "--provider", "aws")
    fp = str(aws["fingerprint"])
    monkeypatch.setenv("USER", "dana")
    code, out = keyscope(capsys, "inventory", "triage", fp[:14], "--db", url,
                         "--status", "acknowledged", "--note", "ticket SEC-12", "--now", AT)
    assert code == 0 and out == f"{fp}: acknowledged (by dana)\n"
    code, _ = keyscope(capsys, "inventory", "triage", fp, "--db", url, "--status",
                       "false-positive", "--note", "test fixture", "--by", "erin")
    assert code == 0
    assert [c["fingerprint"] for c in _list(capsys, url, "--status", "false-positive")] == [fp]

    code, out = keyscope(capsys, "inventory", "show", fp, "--db", url, "--format", "json")
    story = json.loads(out)
    assert [(t["actor"], t["previous"], t["status"], t["note"]) for t in story["triage"]] == [
        ("dana", "open", "acknowledged", "ticket SEC-12"),
        ("erin", "acknowledged", "false-positive", "test fixture")]
    assert story["triage"][0]["at"] == AT
    [occ] = story["occurrences"]
    assert (occ["place"], occ["line"], occ["present"]) == ("aws.ini", 1, True)
    assert [a["trigger"] for a in story["alerts"]] == ["new"]
    assert story["revocation"] and story["status"] == "false-positive"

    code, out = keyscope(capsys, "inventory", "show", fp, "--db", url)
    assert code == 0 and "[present]" in out and "aws.ini:1" in out
    assert "dana: open -> acknowledged: ticket SEC-12" in out

    for bad in ("ks1:ffffffffffffffff", "nonsense"):
        code, _ = keyscope(capsys, "inventory", "show", bad, "--db", url)
        assert code == 2
    code, _ = keyscope(capsys, "inventory", "triage", "ks1:", "--db", url, "--status", "open")
    assert code == 2  # a prefix too short to name one credential


def test_export_matches_its_schema(
    inventory: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = inventory
    [key] = _list(capsys, url, "--account", "acmeprod")
    keyscope(capsys, "inventory", "triage", str(key["fingerprint"]), "--db", url,
             "--status", "revoked", "--note", "rotated", "--by", "sec")
    out_file = tmp_path / "inventory.json"
    code, _ = keyscope(capsys, "inventory", "export", "--db", url, "-o", str(out_file))
    assert code == 0
    doc = json.loads(out_file.read_text())
    schema = json.loads(files("keyscope").joinpath("schemas/inventory-v1.json").read_text())
    jsonschema.validate(doc, schema)
    assert len(doc["credentials"]) == 3 and len(doc["scans"]) == 1
    assert doc["scans"][0]["complete"] is True
    revoked = [c for c in doc["credentials"] if c["status"] == "revoked"]
    assert [c["triage"][0]["note"] for c in revoked] == ["rotated"]
    broken = {**doc, "credentials": [{**doc["credentials"][0], "status": "closed"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_outbox_lists_alerts_no_target_has_taken(
    inventory: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = inventory
    code, out = keyscope(capsys, "inventory", "outbox", "--db", url)
    assert code == 0 and out.count("(no target yet): pending") == 4  # 3 new + 1 expiring
    code, out = keyscope(capsys, "inventory", "outbox", "--db", url, "--format", "json")
    triggers = sorted(r["trigger"] for r in json.loads(out))
    assert triggers == ["expiring", "new", "new", "new"]
    assert len(rows(url, "SELECT * FROM alerts")) == 4


def test_alert_thresholds_come_from_the_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``[alerts] expiring-days``: a SAS expiring in ten days alerts as ``expiring``
    under the default 30 days, and not when the config says 5; a wrong setting is a
    clear error before anything is recorded."""
    sas = account_sas("acmesas", new_key(), services="b", permission="r",
                      expiry=NOW + timedelta(days=10), start=NOW - timedelta(hours=1))
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "notebook.py").write_text(
        f"URL = 'https://acmesas.blob.core.windows.net/models/w.bin?{sas}'\n")

    def triggers(name: str, config: str | None) -> list[str]:
        url = f"sqlite:///{tmp_path / name}"
        extra = []
        if config is not None:
            cfg = tmp_path / f"{name}.toml"
            cfg.write_text(config)
            extra = ["--config", str(cfg)]
        scan(capsys, url, "--no-git", "--now", AT, *extra, str(tree))
        return sorted(r["trigger"] for r in rows(url, "SELECT trigger FROM alerts"))

    assert triggers("default.db", None) == ["expiring", "new"]
    assert triggers("five.db", "[alerts]\nexpiring-days = 5\n") == ["new"]
    assert triggers("twelve.db", "[alerts]\nexpiring-days = 12\n") == ["expiring", "new"]
    bad = tmp_path / "bad.toml"
    for text in ("[alerts]\nexpiring-dayz = 5\n", "[alerts]\nexpiring-days = -1\n",
                 "[alerts]\nexpiring-days = '5'\n"):
        bad.write_text(text)
        capsys.readouterr()
        code = main(["scan", "-q", "--no-git", f"--db=sqlite:///{tmp_path}/b.db",
                     "--config", str(bad), str(tree)])
        assert code == 2 and "alerts.expiring-day" in capsys.readouterr().err
    assert not (tmp_path / "b.db").exists()
