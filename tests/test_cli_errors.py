"""Every subcommand, given bad arguments, fails with exit 2 and at most a usage line and
one error line: never a Python traceback. Config keys are honoured or rejected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sdk import incident_url, new_key

DEEP = 50_000


def keyscope(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "keyscope", *args], cwd=cwd,
                          capture_output=True, text=True, check=False, timeout=120)


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with one clean file and a set of broken inputs."""
    d = tmp_path_factory.mktemp("bad")
    (d / "ok.txt").write_text("nothing here\n")
    (d / "deep.toml").write_text("[policy]\nx = " + "[" * DEEP + "]" * DEEP + "\n")
    (d / "exclude.toml").write_text('exclude = ["vendor/**"]\n')
    (d / "typo.toml").write_text('[policy]\nmax-lifetme = "1h"\n')
    (d / "notoml.toml").write_text("[policy\n")
    (d / "deep.json").write_text("[" * DEEP + "]" * DEEP)
    (d / "notjson.json").write_text("{")
    return d


SCANS = ["scan", "models", "hook"]
# (arguments after the subcommand, a word the error must contain)
ONE_LINE_ERRORS: list[tuple[list[str], str]] = [
    (["/nonexistent/path"], "no such file"),
    (["-o", "/nonexistent/dir/out.txt", "ok.txt"], "cannot write"),
    (["-o", "ok.txt", "ok.txt"], "would overwrite an input"),
    (["-o", ".", "ok.txt"], "is a directory"),
    (["--config", "/nonexistent/k.toml", "ok.txt"], "cannot read"),
    (["--config", "deep.toml", "ok.txt"], "nested too deeply"),
    (["--config", "exclude.toml", "ok.txt"], "unknown setting 'exclude'"),
    (["--config", "typo.toml", "ok.txt"], "max-lifetme"),
    (["--config", "notoml.toml", "ok.txt"], "not valid TOML"),
    (["--max-file-size", "lots", "ok.txt"], "max-file-size"),
]
USAGE_ERRORS: list[list[str]] = [
    ["--bogus-flag", "ok.txt"],
    ["-j", "100000", "ok.txt"],
    ["-j", "-1", "ok.txt"],
    ["--format", "xml", "ok.txt"],
    ["--fail-on", "severe", "ok.txt"],
]


def _one_line_error(proc: subprocess.CompletedProcess[str], word: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("keyscope: error: ") and word in proc.stderr, proc.stderr


@pytest.mark.parametrize("command", SCANS)
@pytest.mark.parametrize(("args", "word"), ONE_LINE_ERRORS)
def test_scan_commands_fail_in_one_line(bad: Path, command: str, args: list[str],
                                        word: str) -> None:
    _one_line_error(keyscope(command, *args, cwd=bad), word)


@pytest.mark.parametrize("command", [*SCANS, "baseline create b.json", "explain"])
@pytest.mark.parametrize("args", USAGE_ERRORS)
def test_usage_errors_exit_2_without_traceback(bad: Path, command: str, args: list[str]) -> None:
    proc = keyscope(*command.split(), *args, cwd=bad)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("keyscope")


@pytest.mark.parametrize(("args", "word"), [
    (["/nonexistent/b.json", "ok.txt"], "cannot write"),
    (["b.json", "/nonexistent/path"], "no such file"),
    (["ok.txt", "ok.txt"], "would overwrite an input"),
    (["b.json", "--config", "deep.toml", "ok.txt"], "nested too deeply"),
    (["b.json", "--config", "exclude.toml", "ok.txt"], "unknown setting"),
])
def test_baseline_create_fails_in_one_line(bad: Path, args: list[str], word: str) -> None:
    _one_line_error(keyscope("baseline", "create", *args, cwd=bad), word)
    assert (bad / "ok.txt").read_text() == "nothing here\n"
    assert not (bad / "b.json").exists()


@pytest.mark.parametrize(("baseline", "word"), [
    ("deep.json", "nested too deeply"),
    ("notjson.json", "not a keyscope baseline"),
    ("/nonexistent/b.json", "cannot read"),
])
@pytest.mark.parametrize("command", ["scan", "hook"])
def test_bad_baseline_fails_in_one_line(bad: Path, command: str, baseline: str,
                                        word: str) -> None:
    _one_line_error(keyscope(command, "--baseline", baseline, "ok.txt", cwd=bad), word)


@pytest.mark.parametrize("args", [
    ["--config", "deep.toml", "x"],
    ["--config", "exclude.toml", "x"],
    ["--verify-timeout", "0", "--verify", "x"],
    ["hello world"],
])
def test_explain_fails_in_one_line(bad: Path, args: list[str]) -> None:
    _one_line_error(keyscope("explain", *args, cwd=bad), "")


@pytest.mark.parametrize("flag", [["-o", "x.txt"], ["--format", "json"], ["--fail-on", "high"],
                                  ["--show-secrets"], ["--verbose"], ["--color", "never"]])
def test_baseline_create_rejects_report_options_it_would_ignore(bad: Path,
                                                                flag: list[str]) -> None:
    proc = keyscope("baseline", "create", "b.json", *flag, "ok.txt", cwd=bad)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "unrecognized arguments" in proc.stderr
    assert not (bad / "b.json").exists()


@pytest.mark.parametrize("flag", [["--show-secrets"], ["--engine", "re"], ["--rules", "."]])
def test_models_rejects_credential_options(bad: Path, flag: list[str]) -> None:
    proc = keyscope("models", *flag, "ok.txt", cwd=bad)
    assert proc.returncode == 2 and "unrecognized arguments" in proc.stderr, proc.stderr


def test_pyproject_setting_outside_policy_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()  # the config search stops at a repository's top level
    (tmp_path / "pyproject.toml").write_text('[tool.keyscope]\nexclude = ["vendor/**"]\n')
    (tmp_path / "ok.txt").write_text("fine\n")
    _one_line_error(keyscope("scan", "--no-git", "ok.txt", cwd=tmp_path),
                    "unknown setting 'exclude' in [tool.keyscope]")


def test_input_is_not_truncated_by_o(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me\n")
    (tmp_path / "more.txt").write_text("more\n")
    _one_line_error(keyscope("scan", "-o", f"{tmp_path}/notes.txt", "more.txt", "./notes.txt",
                             cwd=tmp_path), "would overwrite an input")
    # -o naming the --baseline file is refused too
    _one_line_error(keyscope("scan", "--baseline", "notes.txt", "-o", "./notes.txt",
                             "--no-git", "x", cwd=tmp_path), "")
    assert (tmp_path / "notes.txt").read_text() == "keep me\n"


@pytest.fixture(scope="module")
def leaky(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("leaky")
    (d / "many.txt").write_text((incident_url("pipeacct", new_key()) + "\n") * 400)
    return d


def test_closed_pipe_ends_quietly(leaky: Path) -> None:
    """`keyscope scan --format jsonl . | head -1`."""
    proc = subprocess.Popen([sys.executable, "-m", "keyscope", "scan", "-j", "1", "--format",
                             "jsonl", "many.txt"], cwd=leaky, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    assert json.loads(first)["type"] == "finding"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""


def test_non_utf8_file_name_with_o(tmp_path: Path) -> None:
    name = b"weights-\xff.md"
    d = tmp_path / "tree"
    d.mkdir()
    leak = Path(os.fsdecode(bytes(d) + b"/" + name))
    leak.write_text(incident_url("bytesacct", new_key()) + "\n")
    for fmt in ("json", "sarif", "text"):
        proc = keyscope("scan", "-q", "-j", "1", "--format", fmt, "-o", f"out.{fmt}", "tree",
                        cwd=tmp_path)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr == ""
        report = (tmp_path / f"out.{fmt}").read_text(encoding="utf-8")
        if fmt == "sarif":
            assert "weights-%FF.md" in report
        elif fmt == "json":
            assert json.loads(report)["findings"][0]["locations"][0]["path"].endswith(
                "weights-\udcff.md")
        else:
            assert "bytesacct" in report


def test_failed_scan_leaves_the_previous_report(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "out.json").write_text("the previous report\n")
    _one_line_error(keyscope("scan", "--git", "-o", "out.json", "plain", cwd=tmp_path),
                    "not a git repository")
    assert (tmp_path / "out.json").read_text() == "the previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "plain"]


def test_o_to_a_device_or_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("fine\n")
    proc = keyscope("scan", "-q", "--format", "json", "-o", "/dev/stdout", "ok.txt",
                    cwd=tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout)["findings"] == []
    (tmp_path / "link.json").symlink_to("real.json")
    proc = keyscope("scan", "-q", "--format", "json", "-o", "link.json", "ok.txt", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "link.json").is_symlink()
    assert json.loads((tmp_path / "real.json").read_text())["findings"] == []
