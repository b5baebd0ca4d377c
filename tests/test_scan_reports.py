"""Scan output formats: SARIF valid against the official schema, JSON against ours,
JSONL streamed, secrets redacted everywhere unless asked."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from keyscope.cli import main
from tests.sdk import incident_url, new_key

# The official OASIS schema, vendored (see tests/schemas/README.md).
SARIF_SCHEMA = Path(__file__).resolve().parent / "schemas" / "sarif-schema-2.1.0.json"


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, str, str]:
    key = new_key()
    url = incident_url("contosoresearch", key)
    (tmp_path / "README.md").write_text(f"# Weights\n\nDownload: [model]({url})\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "setup notes.md").write_text(f"x\ny\n`{url}`\n")
    cs = f"DefaultEndpointsProtocol=https;AccountName=contosodata;AccountKey={key}"
    (tmp_path / "app.env").write_text(f"STORAGE={cs}\n")
    return tmp_path, url, key


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["scan", "--now", "2026-11-26T00:00:00Z", "-j", "1", *args])
    return code, capsys.readouterr().out


def test_sarif_validates_against_the_official_schema(
    tree: tuple[Path, str, str], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, url, key = tree
    monkeypatch.chdir(root)
    code, out = _run(["--format", "sarif", "."], capsys)
    assert code == 1
    doc = json.loads(out)
    schema = json.loads(SARIF_SCHEMA.read_text())
    jsonschema.validate(doc, schema)
    run = doc["runs"][0]
    results = run["results"]
    # one result per location: the SAS in two files, the key once
    assert sorted((r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                   r["locations"][0]["physicalLocation"]["region"]["startLine"])
                  for r in results) == [
        ("azure-storage-connection-string", "app.env", 1),
        ("azure-storage-sas", "README.md", 3),
        ("azure-storage-sas", "docs/setup%20notes.md", 3),
    ]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert rules["azure-storage-sas"]["properties"]["security-severity"] == "9.5"
    assert "keyscope explain" in rules["azure-storage-sas"]["help"]["markdown"]
    for r in results:
        assert r["partialFingerprints"]["keyscope/secret/v1"].startswith("ks1:")
        assert r["level"] == "error"
        assert run["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"]
    assert key not in out and url.split("sig=")[1] not in out


def test_json_validates_against_its_schema_and_merges_locations(
    tree: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, url, key = tree
    code, out = _run(["--format", "json", str(root)], capsys)
    assert code == 1
    doc = json.loads(out)
    schema = json.loads(files("keyscope").joinpath("schemas/scan-v1.json").read_text())
    jsonschema.validate(doc, schema)
    sas = [f for f in doc["findings"] if f["rule_id"] == "azure-storage-sas"]
    assert len(sas) == 1 and len(sas[0]["locations"]) == 2
    assert sas[0]["severity"] == "critical"
    assert key not in out and url.split("sig=")[1] not in out


def test_jsonl_streams_one_line_per_location_then_a_summary(
    tree: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _, _ = tree
    _, out = _run(["--format", "jsonl", str(root)], capsys)
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["type"] for r in records] == ["finding"] * 3 + ["summary"]
    assert records[-1]["findings"] == 2


def test_show_secrets_reveals_only_when_asked(
    tree: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _, key = tree
    _, hidden = _run([str(root)], capsys)
    assert key not in hidden
    _, shown = _run(["--show-secrets", str(root)], capsys)
    assert key in shown


def test_text_groups_by_severity_and_summarises(
    tree: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _, _ = tree
    code, out = _run([str(root)], capsys)
    assert code == 1
    assert out.startswith("CRITICAL (2)\n")
    assert "Scanned 3 files" in out and "2 findings (2 critical)" in out


@pytest.mark.parametrize("command", ["scan", "models"])
def test_jsonl_carries_model_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    # GLOBAL os.system, a string argument, TUPLE1, REDUCE, STOP (written as opcodes)
    (tmp_path / "evil.pkl").write_bytes(b"cos\nsystem\nS'echo keyscope-test'\n\x85R.")
    capsys.readouterr()
    code = main([command, "--format", "jsonl", "-q", str(tmp_path)])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert [r["type"] for r in records] == ["model_finding", "summary"]
    assert records[0]["verdict"] == "executes-code" and records[0]["severity"] == "critical"
    assert records[-1]["model_findings"] == 1


def test_columns_count_characters_not_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SARIF declares columnKind unicodeCodePoints, and editors count characters: a
    line with multi-byte text before the credential gives the character column."""
    url = incident_url("contosoresearch", new_key())
    line = f"# café → modèle: {url}\n"
    (tmp_path / "notes.md").write_text(line, encoding="utf-8")
    capsys.readouterr()
    main(["scan", "--format", "sarif", "-q", str(tmp_path)])
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert run["columnKind"] == "unicodeCodePoints"
    region = run["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region["startColumn"] == line.index("https://") + 1
    assert region["endColumn"] == line.index(url) + len(url) + 1
