"""Jupyter notebooks as containers (``unpack/notebooks.py``): findings name the cell,
the output, the attachment or the metadata, with lines of the cell as Jupyter shows
it; notebooks are written with the real ``nbformat`` library. What does not parse,
nests too deep or is too big is scanned as plain text, as before: never a lost finding."""

from __future__ import annotations

import base64
import json
import subprocess
from importlib.resources import files
from pathlib import Path

import jsonschema
import nbformat
import pytest
from nbformat import v3, v4

from keyscope.cli import main
from keyscope.model import ScanResult
from keyscope.scan import ScanOptions, scan
from keyscope.unpack import notebooks, registry
from keyscope.unpack.notebooks import NotebookExpander, notebook_members
from tests.sdk import NOW, incident_url, new_key

ESC = "\x1b"
SARIF_SCHEMA = Path(__file__).resolve().parent / "schemas" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def url() -> str:
    return incident_url("nbacct", new_key())


def _scan(path: Path) -> ScanResult:
    return scan([path], ScanOptions(jobs=1, now=NOW))


def _where(result: ScanResult) -> list[tuple[tuple[str, ...], int, int]]:
    """Every location of the one finding: (origin, line, column), in order."""
    [finding] = result.findings
    return [(loc.origin, loc.line, loc.column) for loc in finding.locations]


def _png(text: str) -> bytes:
    """PNG-like bytes with ``text`` in a tEXt chunk (scanned as binary)."""
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\x40tEXtComment\x00" + text.encode() + b"\x00IEND"


def _write(tmp_path: Path, nb: nbformat.NotebookNode, name: str = "analysis.ipynb") -> Path:
    path = tmp_path / name
    nbformat.write(nb, str(path))
    return path


def test_the_notebook_expander_is_registered() -> None:
    assert any(isinstance(e, NotebookExpander) for e in registry.expanders())


def test_code_and_markdown_cells_report_their_cell_and_line(tmp_path: Path, url: str) -> None:
    nb = v4.new_notebook()
    nb.cells.append(v4.new_markdown_cell(f"# Data\n\nDownload from {url} first."))
    nb.cells.append(v4.new_code_cell(f"import os\n\nsas = '{url}'\nprint(sas)"))
    nbformat.validate(nb)
    path = _write(tmp_path, nb)
    assert _where(_scan(path)) == [(("cell 1",), 3, 15), (("cell 2",), 3, 8)]


def test_outputs_stream_error_and_images(tmp_path: Path, url: str) -> None:
    code = v4.new_code_cell("print(sas)\nraise ValueError(sas)")
    code.outputs = [
        v4.new_output("stream", name="stdout", text=f"loading\nusing {url}\n"),
        v4.new_output("error", ename="ValueError", evalue=url, traceback=[
            f"{ESC}[0;31m----------------{ESC}[0m",
            f"{ESC}[0;31mValueError{ESC}[0m                Traceback (most recent call last)",
            f"Cell {ESC}[0;32mIn[1], line 2{ESC}[0m\n      1 print(sas)\n"
            f"----> 2 raise ValueError(sas)",
            f"{ESC}[0;31mValueError{ESC}[0m: {url}",
        ]),
        v4.new_output("display_data", data={
            "text/plain": "<Figure size 640x480 with 1 Axes>",
            "image/png": base64.b64encode(_png(url)).decode(),
        }),
        v4.new_output("execute_result", execution_count=1, data={"text/plain": f"'{url}'"}),
    ]
    nb = v4.new_notebook(cells=[v4.new_markdown_cell("# Run"), code])
    nbformat.validate(nb)
    path = _write(tmp_path, nb)
    assert _where(_scan(path)) == [
        (("cell 2 output 1",), 2, 7),  # stream text, line 2
        (("cell 2 output 2",), 6, 13),  # the traceback's last line, colour codes gone
        (("cell 2 output 3 image/png",), 3, 17),  # the decoded image's bytes
        (("cell 2 output 4",), 1, 2),
    ]


def test_attachments_are_decoded_and_named(tmp_path: Path, url: str) -> None:
    cell = v4.new_markdown_cell("![diagram](attachment:key.png)")
    cell.attachments = {"key.png": {"image/png": base64.b64encode(_png(url)).decode()}}
    nb = v4.new_notebook(cells=[v4.new_markdown_cell("a"), v4.new_code_cell("b"), cell])
    nbformat.validate(nb)
    path = _write(tmp_path, nb)
    # without the expander the same secret is found Base64-encoded in the raw JSON
    assert _where(_scan(path)) == [(("cell 3 attachment key.png",), 3, 17)]


def test_notebook_and_cell_metadata(tmp_path: Path, url: str) -> None:
    nb = v4.new_notebook(cells=[v4.new_code_cell("x = 1", metadata={"tags": ["p"]})])
    nb.metadata["papermill"] = {"parameters": {"data_url": url}}
    nb.cells[0].metadata["source_url"] = url
    path = _write(tmp_path, nb)
    [(first, _, _), (second, _, _)] = _where(_scan(path))
    assert {first, second} == {("cell 1 metadata",), ("metadata",)}


def test_nbformat_3_worksheets(tmp_path: Path, url: str) -> None:
    nb = v3.new_notebook(worksheets=[v3.new_worksheet(cells=[
        v3.new_text_cell("markdown", source="intro"),
        v3.new_code_cell(input=f"a = 1\nsas = '{url}'", outputs=[
            v3.new_output("pyout", output_text="1"),
            v3.new_output("stream", output_text=f"x\n{url}", stream="stdout"),
            v3.new_output("pyerr", ename="E", evalue="v", traceback=["t", f"E: {url}"]),
            v3.new_output("display_data", output_png=base64.b64encode(_png(url)).decode()),
        ]),
    ])])
    path = tmp_path / "old.ipynb"
    path.write_text(v3.writes_json(nb))
    assert _where(_scan(path)) == [
        (("cell 2",), 2, 8),
        (("cell 2 output 2",), 2, 1),
        (("cell 2 output 3",), 2, 4),
        (("cell 2 output 4 image/png",), 3, 17),
    ]


def test_json_escapes_are_decoded_before_the_scan(tmp_path: Path, url: str) -> None:
    # json.loads undoes every escape a writer chose: \u0026, \/, \u0073 ...
    escaped = url.replace("&", "\\u0026").replace("/", "\\/").replace("sig=", "\\u0073ig=")
    raw = ('{"cells": [{"cell_type": "code", "execution_count": null, "metadata": {},'
           ' "outputs": [], "source": ["x = 1\\n", "u = \\"' + escaped + '\\"\\n"]}],'
           ' "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    path = tmp_path / "escaped.ipynb"
    path.write_text(raw)
    assert _where(_scan(path)) == [(("cell 1",), 2, 6)]


def test_content_decides_not_the_name(tmp_path: Path, url: str) -> None:
    nb = v4.new_notebook(cells=[v4.new_code_cell(f"u = '{url}'")])
    named_json = _write(tmp_path, nb, "notebook.json")
    assert _where(_scan(named_json)) == [(("cell 1",), 1, 6)]
    not_a_notebook = tmp_path / "config.ipynb"
    not_a_notebook.write_text(json.dumps({"nbformat": "4", "url": url}, indent=1))
    assert _where(_scan(not_a_notebook)) == [((), 3, 10)]


def test_a_broken_notebook_is_scanned_as_text(tmp_path: Path, url: str) -> None:
    nb = v4.new_notebook(cells=[v4.new_code_cell(f"u = '{url}'\nprint(u)")])
    text = nbformat.writes(nb)
    path = tmp_path / "truncated.ipynb"
    path.write_text(text[: text.index("print(u)")])
    [(origin, line, _)] = _where(_scan(path))
    assert origin == () and line == text[: text.index(url)].count("\n") + 1


def test_deep_and_big_notebooks_are_scanned_as_text(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for depth in (200, 100_000):  # rendered back as JSON; too deep for json.loads
        path = tmp_path / f"deep{depth}.ipynb"
        path.write_text('{"nbformat": 4, "cells": [' + "[" * depth + "]" * depth
                        + f'],\n"url": "{url}"}}')
        shallow = depth == 200
        assert (notebook_members(path.read_bytes()) is None) is not shallow
        assert _where(_scan(path)) == [(("metadata",), 2, 10) if shallow else ((), 2, 9)]
    nb = v4.new_notebook(cells=[v4.new_code_cell(f"u = '{url}'")])
    path = _write(tmp_path, nb)
    monkeypatch.setattr(notebooks, "MAX_NOTEBOOK_BYTES", path.stat().st_size - 1)
    [(origin, _, _)] = _where(_scan(path))
    assert origin == ()


def test_every_format_keeps_the_cell(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = v4.new_notebook(cells=[v4.new_markdown_cell("x"), v4.new_code_cell(f"u = '{url}'")])
    path = _write(tmp_path, nb)
    now = ["--now", "2026-11-26T12:00:00Z", "-j", "1"]
    assert main(["scan", *now, str(path)]) == 1
    assert f"{path}!/cell 2:1:6" in capsys.readouterr().out  # a member, like an archive's
    assert main(["scan", *now, "--format", "json", str(path)]) == 1
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, json.loads(files("keyscope").joinpath("schemas/scan-v1.json")
                                        .read_text()))
    [finding] = doc["findings"]
    assert [loc["origin"] for loc in finding["locations"]] == [["cell 2"]]
    assert main(["scan", *now, "--format", "jsonl", str(path)]) == 1
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["location"]["origin"] == ["cell 2"]
    assert main(["scan", *now, "--format", "sarif", str(path)]) == 1
    sarif = json.loads(capsys.readouterr().out)
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    [result] = sarif["runs"][0]["results"]
    assert "(found inside: cell 2)" in result["message"]["text"]
    # the cell's line is no line of the .ipynb file: the region is on the cell's artifact
    assert "region" not in result["locations"][0]["physicalLocation"]
    assert result["relatedLocations"][0]["physicalLocation"]["region"]["startLine"] == 1


def test_members_of_a_notebook(url: str) -> None:
    nb = v4.new_notebook(cells=[v4.new_code_cell("a\nb")])
    nb.cells[0].outputs = [v4.new_output("stream", name="stdout", text=["x\n", "y\n"])]
    members = notebook_members(nbformat.writes(nb).encode())
    assert members == [("cell 1", b"a\nb"), ("cell 1 output 1", b"x\ny\n")]
    assert notebook_members(b'{"nbformat": 4}') is None  # no cells
    assert notebook_members(b"[1, 2]") is None


def test_notebooks_in_git_history_keep_cell_and_provenance(tmp_path: Path, url: str) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=A", "-c", "user.email=a@example.com",
                        "-c", "commit.gpgsign=false", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    git("init", "-q")
    _write(tmp_path, v4.new_notebook(cells=[v4.new_code_cell(f"x = 1\nu = '{url}'")]))
    git("add", "analysis.ipynb")
    git("commit", "-qm", "leak")
    git("rm", "-q", "analysis.ipynb")
    git("commit", "-qm", "remove")
    [finding] = _scan(tmp_path).findings
    [loc] = finding.locations
    assert (loc.origin, loc.line, loc.column) == (("cell 1",), 2, 6)
    assert loc.git is not None and loc.git.commit is not None
