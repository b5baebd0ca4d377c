"""The README's examples are real output; the CLI's JSON matches its schema."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from keyscope.cli import main
from tests.sdk import incident_url, new_key

ROOT = Path(__file__).resolve().parent.parent
CONSOLE_BLOCK = re.compile(r"```console\n\$ (?P<cmd>[^\n]+)\n(?P<out>.*?)```", re.S)


def readme_examples() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [(m["cmd"], m["out"]) for m in CONSOLE_BLOCK.finditer(text)]


def test_readme_has_examples() -> None:
    assert len(readme_examples()) >= 3


TIMING = re.compile(r" in [0-9.]+ s with ")


@pytest.mark.parametrize(("cmd", "expected"), readme_examples())
def test_readme_example_is_real_output(cmd: str, expected: str,
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    argv = shlex.split(cmd)
    assert argv[0] == "keyscope"
    code = main(argv[1:])
    out = capsys.readouterr()
    # Only the measured duration may differ from the README.
    assert TIMING.sub(" in N s with ", out.out + out.err) == TIMING.sub(" in N s with ", expected)
    if out.err:
        assert code == 2
    else:
        assert code == (1 if argv[1] == "scan" else 0)


def test_json_output_validates_against_its_schema(capsys: pytest.CaptureFixture[str]) -> None:
    key = new_key()
    url = incident_url("contosoresearch", key)
    cs = f"DefaultEndpointsProtocol=https;AccountName=contosoresearch;AccountKey={key}"
    schema = json.loads(files("keyscope").joinpath("schemas/explain-v1.json").read_text())
    for value in (url, cs):
        assert main(["explain", "--format", "json", "--key", key, value]) == 0
        doc = json.loads(capsys.readouterr().out)
        jsonschema.validate(doc, schema)
        assert key not in json.dumps(doc)  # the secret is redacted
    sig = url.split("sig=")[1]
    assert main(["explain", "--format", "json", url]) == 0
    out = capsys.readouterr().out
    assert sig not in out and sig.replace("%2F", "/") not in out


def test_stdin_and_module_entry_point() -> None:
    url = incident_url("contosoresearch", new_key())
    proc = subprocess.run([sys.executable, "-m", "keyscope", "explain", "-", "--format", "json"],
                          input=url, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["credentials"][0]["severity"] == "critical"


def test_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "hello world"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("keyscope: error: no Azure Storage credential")
    assert main(["explain", "--now", "yesterday", incident_url("a1b2c", new_key())]) == 2
    assert "now:" in capsys.readouterr().err


def test_help_explains_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["explain", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("--account", "--key", "--now", "--format", "Nothing is sent over the network"):
        assert word in out


def test_color_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    url = incident_url("contosoresearch", new_key())
    main(["explain", "--color", "always", url])
    assert "\033[" in capsys.readouterr().out
    main(["explain", url])  # captured output is not a TTY
    assert "\033[" not in capsys.readouterr().out
