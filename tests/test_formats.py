"""The output-format contract: the registry drives the CLI, a format is one class plus
one registry line, and a scan tells a format what the contract says, in its order."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import pytest

from keyscope.cli import build_parser, main
from keyscope.model import Explanation, Finding, RawFinding, ScanResult
from keyscope.report import html, jsonout, sarif, text
from keyscope.report.interface import Format, FormatOptions, shown
from keyscope.report.registry import FORMATS, explain_formats, scan_formats
from keyscope.scan import ScanOptions, scan
from tests.sdk import NOW, incident_url, new_key

SCAN = ["--now", "2026-11-26T00:00:00Z", "-j", "1", "-q"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Two credentials: an account SAS in two files, a connection string in one."""
    key = new_key()
    url = incident_url("contosoresearch", key)
    root = tmp_path / "tree"
    root.mkdir()
    (root / "README.md").write_text(f"# Weights\n\nDownload: [model]({url})\n")
    (root / "notes.md").write_text(f"x\n`{url}`\n")
    cs = f"DefaultEndpointsProtocol=https;AccountName=contosodata;AccountKey={key}"
    (root / "app.env").write_text(f"STORAGE={cs}\n")
    return root


def _format_choices(parser: argparse.ArgumentParser) -> dict[str, tuple[str, ...] | None]:
    """Each subcommand's ``--format`` choices (None: it has no --format)."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: dict[str, tuple[str, ...] | None] = {}
    for name, sub in commands.choices.items():
        fmt = next((a for a in sub._actions if "--format" in a.option_strings), None)
        found[name] = tuple(fmt.choices) if fmt is not None and fmt.choices else None
    return found


def test_the_registry_gives_every_format_choice() -> None:
    assert scan_formats() == ("text", "json", "jsonl", "sarif", "html") == tuple(FORMATS)
    assert explain_formats() == ("text", "json")
    assert _format_choices(build_parser()) == {
        "explain": explain_formats(),
        "scan": scan_formats(),
        "models": scan_formats(),
        "baseline": None,
        "hook": scan_formats(),
        "crawl": scan_formats(),
        "inventory": None,  # its actions print database rows, not reports
        "usage": ("text", "json"),  # its own document (schemas/usage-v1.json), not a Format
        "notify": None,
        "posture": ("text", "json"),  # its own document (posture-v1.json), not a scan report
    }


class CsvFormat(Format):
    """The worked example of docs/architecture.md: a document format in a few lines."""

    def finish(self, result: ScanResult) -> None:
        self.out.write("fingerprint,severity,rule\n")
        for f in shown(result).findings:
            self.out.write(f"{f.fingerprint},{f.severity.label},{f.rule_id}\n")


def test_a_format_registered_at_run_time_is_offered_and_rendered(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(FORMATS, "csv", CsvFormat)
    assert "csv" in _format_choices(build_parser())["scan"]  # type: ignore[operator]

    assert main(["scan", *SCAN, "--format", "csv", str(tree)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "fingerprint,severity,rule"
    assert sorted(line.split(",", 1)[1] for line in lines[1:]) == [
        "critical,azure-storage-connection-string",
        "critical,azure-storage-sas",
    ]
    assert all(line.startswith("ks1:") for line in lines[1:])

    out = tree.parent / "report.csv"
    assert main(["hook", *SCAN, "--format", "csv", "-o", str(out), str(tree / "app.env")]) == 1
    assert out.read_text().count("\n") == 2
    assert main(["models", *SCAN, "--format", "csv", str(tree)]) == 0
    assert capsys.readouterr().out == "fingerprint,severity,rule\n"

    # It does not render explanations, so explain does not offer it.
    with pytest.raises(SystemExit) as exc:
        main(["explain", "--format", "csv", "sv=2020-08-04&sig=x"])
    assert exc.value.code == 2
    assert "invalid choice: 'csv'" in capsys.readouterr().err


class Sentences(CsvFormat):
    """A format that also renders explain: one sentence per credential."""

    explains = True

    def explain(self, explanations: list[Explanation], now: datetime) -> None:
        self.out.write("".join(f"{now:%Y} {e.sentence}\n" for e in explanations))


def test_a_format_that_explains_is_offered_by_explain(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(FORMATS, "sentences", Sentences)
    assert _format_choices(build_parser())["explain"] == ("text", "json", "sentences")
    url = incident_url("contosoresearch", new_key())
    assert main(["explain", "--now", "2026-11-26T00:00:00Z", "--format", "sentences", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2026 This account SAS for storage account 'contosoresearch'")
    assert out.count("\n") == 1


class Recorder(Format):
    """A streaming format that notes every call it gets."""

    streams = True
    calls: ClassVar[list[tuple[str, object]]] = []

    def finding(self, raw: RawFinding) -> None:
        self.calls.append(("finding", raw.explanation.fingerprint))

    def verified(self, findings: Sequence[Finding]) -> None:
        self.calls.append(("verified", [f.fingerprint for f in findings]))

    def finish(self, result: ScanResult) -> None:
        self.calls.append(("finish", result))

    def interrupted(self, reason: str) -> None:
        self.calls.append(("interrupted", reason))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> type[Recorder]:
    monkeypatch.setitem(FORMATS, "recorder", Recorder)
    monkeypatch.setattr(Recorder, "calls", [])
    return Recorder


def test_a_stream_sees_each_location_as_found_then_the_result_without_the_baseline(
    tree: Path, recorder: type[Recorder]
) -> None:
    baseline = tree.parent / "baseline.json"
    assert main(["baseline", "create", *SCAN, str(baseline), str(tree)]) == 0
    doc = json.loads(baseline.read_text())
    sas = next(e for e in doc["findings"] if e["rule_id"] == "azure-storage-sas")
    doc["findings"] = [sas]
    baseline.write_text(json.dumps(doc))

    assert main(["scan", *SCAN, "--format", "recorder", str(tree)]) == 1
    names = [name for name, _ in recorder.calls]
    assert names == ["finding", "finding", "finding", "finish"]  # 3 locations, 2 secrets

    recorder.calls.clear()
    assert main(["scan", *SCAN, "--format", "recorder", "--baseline", str(baseline), str(tree)])
    streamed = [fp for name, fp in recorder.calls if name == "finding"]
    assert streamed and sas["fingerprint"] not in streamed
    name, result = recorder.calls[-1]
    assert name == "finish" and isinstance(result, ScanResult)
    assert [f.fingerprint for f in result.findings] == streamed
    assert result.stats.rejected["accepted in the baseline (findings)"] == 1


def test_verify_tells_the_format_once_between_the_findings_and_the_result(
    tree: Path, recorder: type[Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyscope.verify

    checked: list[int] = []
    monkeypatch.setattr(
        keyscope.verify, "verify_findings", lambda findings, *a, **k: checked.append(len(findings))
    )
    audit = tree.parent / "audit.jsonl"
    args = ["--format", "recorder", "--verify", "--audit-log", str(audit), str(tree)]
    assert main(["scan", *SCAN, *args]) == 1
    assert checked == [2]
    names = [name for name, _ in recorder.calls]
    assert names == ["finding", "finding", "finding", "verified", "finish"]
    assert len(recorder.calls[3][1]) == 2  # type: ignore[arg-type]


def test_an_interrupted_scan_on_stdout_tells_the_format_instead_of_finishing(
    tree: Path, recorder: type[Recorder], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def stop(self: Recorder, raw: RawFinding) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Recorder, "finding", stop)
    assert main(["scan", *SCAN, "--format", "recorder", str(tree)]) == 130
    assert recorder.calls == [("interrupted", "interrupted")]
    assert "keyscope: interrupted" in capsys.readouterr().err

    # Into -o, the partial file is removed instead: nothing to close.
    recorder.calls.clear()
    out = tree.parent / "out.txt"
    assert main(["scan", *SCAN, "--format", "recorder", "-o", str(out), str(tree)]) == 130
    assert recorder.calls == [] and not out.exists()


def test_the_built_in_formats_write_what_their_modules_render(tree: Path) -> None:
    """The registry's classes are the renderers of text, json, jsonl, sarif and html, unchanged."""
    streamed: list[RawFinding] = []
    result = scan([str(tree)], ScanOptions(jobs=1, now=NOW), on_finding=streamed.append)
    options = FormatOptions(color=True, verbose=True, every=True, roots=(str(tree),))
    expected = {
        "text": text.render_scan(result, color=True, verbose=True, every=True),
        "json": jsonout.render_scan(result),
        "jsonl": "".join(jsonout.jsonl_finding(r) for r in streamed)
        + jsonout.jsonl_model_findings(result)
        + jsonout.jsonl_summary(result),
        "sarif": sarif.render_scan(result, [str(tree)]),
        "html": html.render_scan(result),
    }
    for name, cls in FORMATS.items():
        out = io.StringIO()
        fmt = cls(out, options)
        if fmt.streams:
            for raw in streamed:
                fmt.finding(raw)
        fmt.finish(result)
        assert out.getvalue() == expected[name], name


def test_explain_formats_write_what_their_modules_render() -> None:
    from keyscope.explain import explain

    explanations = explain(incident_url("contosoresearch", new_key()), NOW)
    for name, render in (("text", text.render_explain), ("json", jsonout.render_explain)):
        out = io.StringIO()
        FORMATS[name](out, FormatOptions(color=True)).explain(explanations, NOW)
        assert out.getvalue() == render(explanations, NOW, color=True), name
    with pytest.raises(NotImplementedError):
        FORMATS["sarif"](io.StringIO(), FormatOptions()).explain(explanations, NOW)
