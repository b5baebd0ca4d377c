"""Where a finding inside a member is shown: SARIF gives the outer file no region it
does not have (the member's region sits on the nested artifact, ``parentIndex``), and
every text line that names a file names the member (``outer.zip!/a.env``): places,
"… and N more in", the git timeline. Archives are made by ``zip``, repositories by
``git``, notebooks by ``nbformat``, credentials signed by the Azure SDK; SARIF
documents are validated against the vendored 2.1.0 schema."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import nbformat
import pytest
from nbformat import v4

from keyscope.cli import main
from tests.sdk import incident_url, new_key

SARIF_SCHEMA = Path(__file__).resolve().parent / "schemas" / "sarif-schema-2.1.0.json"
NOW = ["--now", "2026-11-26T12:00:00Z", "-j", "1", "--fail-on", "never"]

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("zip", "git")), reason="needs the zip and git tools"
)


def _run(cwd: Path, *argv: str) -> None:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "Alice", "GIT_AUTHOR_EMAIL": "alice@contoso.example",
           "GIT_COMMITTER_NAME": "Alice", "GIT_COMMITTER_EMAIL": "alice@contoso.example",
           "GIT_AUTHOR_DATE": "2026-10-01T10:00:00Z", "GIT_COMMITTER_DATE": "2026-10-01T10:00:00Z"}
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, env=env)


def _sarif(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    main(["scan", "-q", *NOW, "--format", "sarif", *argv])
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, json.loads(SARIF_SCHEMA.read_text()))
    return doc


def _text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    main(["scan", *NOW, *argv])
    return capsys.readouterr().out


def test_a_notebook_finding_puts_the_cells_line_on_the_cell_not_on_the_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = incident_url("nbregion", new_key())
    cells = [v4.new_markdown_cell("intro"), v4.new_code_cell(f"import os\nu = '{url}'\n")]
    nbformat.write(v4.new_notebook(cells=cells), str(tmp_path / "analysis.ipynb"))
    monkeypatch.chdir(tmp_path)
    doc = _sarif(capsys, "analysis.ipynb")
    run = doc["runs"][0]  # type: ignore[index]
    [result] = run["results"]
    outer = result["locations"][0]["physicalLocation"]
    assert "region" not in outer  # line 2 of the cell is not line 2 of the .ipynb JSON
    assert outer["artifactLocation"]["uri"] == "analysis.ipynb"
    [related] = result["relatedLocations"]
    assert related["physicalLocation"]["region"]["startLine"] == 2
    cell = run["artifacts"][related["physicalLocation"]["artifactLocation"]["index"]]
    assert cell["location"]["uri"] == "cell%202"
    assert run["artifacts"][cell["parentIndex"]]["location"]["uri"] == "analysis.ipynb"


def test_a_finding_in_the_file_itself_keeps_its_region(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "app.env").write_text("# settings\nURL=" + incident_url("plainregion", new_key()))
    monkeypatch.chdir(tmp_path)
    [result] = _sarif(capsys, "app.env")["runs"][0]["results"]  # type: ignore[index]
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
    assert "relatedLocations" not in result


def test_a_model_finding_in_a_member_relates_its_member_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickle

    from tests.test_unpack_models import _Payload

    (tmp_path / "model.pkl").write_bytes(pickle.dumps(_Payload()))
    _run(tmp_path, "zip", "-q", "weights.zip", "model.pkl")
    monkeypatch.chdir(tmp_path)
    run = _sarif(capsys, "weights.zip")["runs"][0]  # type: ignore[index]
    [result] = [r for r in run["results"] if r["ruleId"] == "model-executes-code"]
    assert "region" not in result["locations"][0]["physicalLocation"]
    [related] = result["relatedLocations"]
    member = run["artifacts"][related["physicalLocation"]["artifactLocation"]["index"]]
    assert member["location"]["uri"] == "model.pkl"
    assert related["message"]["text"] == "inside weights.zip!/model.pkl"


def test_text_places_and_more_lines_name_the_member(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = "URL=" + incident_url("textmember", new_key()) + "\n"
    (tmp_path / "a.env").write_text(line * 5)
    _run(tmp_path, "zip", "-q", "bundle.zip", "a.env")
    out = _text(capsys, str(tmp_path / "bundle.zip"))
    assert f"{tmp_path}/bundle.zip!/a.env:1:1" in out
    assert f"… and 2 more in {tmp_path}/bundle.zip!/a.env (lines 1–5;" in out


def test_the_timeline_names_each_member(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two members of one archive, one commit: two events, each naming its member
    (they were one event on ``bundle.zip`` with both lines merged)."""
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    _run(repo, "git", "init", "-q")
    secret = "URL=" + incident_url("timelinemember", new_key()) + "\n"
    (repo / "src" / "a.env").write_text(secret)
    (repo / "src" / "b.env").write_text("# b\n" + secret)
    _run(repo / "src", "zip", "-q", "../bundle.zip", "a.env", "b.env")
    shutil.rmtree(repo / "src")
    _run(repo, "git", "add", "bundle.zip")
    _run(repo, "git", "commit", "-q", "-m", "release bundle")
    out = _text(capsys, str(repo))
    timeline = out[out.index("Timeline (git history)"):].splitlines()
    events = [row for row in timeline if "introduced" in row]
    assert len(events) == 2
    assert f"  {repo}/bundle.zip!/a.env:1  " in events[0]
    assert f"  {repo}/bundle.zip!/b.env:2  " in events[1]
    main(["scan", *NOW, "--format", "json", str(repo)])
    doc = json.loads(capsys.readouterr().out)
    [story] = doc["timeline"]
    assert [(e["path"], e["origin"], e["line"]) for e in story["events"]] == [
        (f"{repo}/bundle.zip", ["a.env"], 1), (f"{repo}/bundle.zip", ["b.env"], 2)
    ]
