"""The GitHub Action (action.yml): inputs reach its scripts only through env:, outputs
are declared, the job's Python is left alone, and the scan step's real bash script
neither runs a hostile path input nor hides a shallow checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sdk import new_key
from tests.test_git_history import ALICE, ROOT, Repo, sas_url

ACTION: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
STEPS: list[dict[str, Any]] = ACTION["runs"]["steps"]


def test_no_expression_is_pasted_into_a_script() -> None:
    scripts = [step["run"] for step in STEPS if "run" in step]
    assert len(scripts) >= 3
    for script in scripts:
        assert "${{ inputs." not in script
        assert "${{" not in script  # github.*, steps.* outputs: through env: as well


def test_outputs_are_declared() -> None:
    outputs = ACTION["outputs"]
    assert "steps.scan.outputs.exit-code" in outputs["exit-code"]["value"]
    assert "steps.scan.outputs.sarif-file" in outputs["sarif-file"]["value"]


def test_the_jobs_python_is_left_alone() -> None:
    assert not any(str(step.get("uses", "")).startswith("actions/setup-python") for step in STEPS)
    install = next(step for step in STEPS if step.get("name") == "Install keyscope")
    assert "runner.temp" in install["env"]["KEYSCOPE_VENV"]
    assert "python3 -m venv" in install["run"]


def _run_scan_step(tmp_path: Path, cwd: Path, **inputs: str) -> tuple[
        subprocess.CompletedProcess[str], dict[str, str]]:
    """The scan step's script, run by bash as the runner would, with keyscope (this
    checkout, through the test's interpreter) in place of the installed virtualenv."""
    step = next(s for s in STEPS if s.get("id") == "scan")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    launcher = venv / "bin" / "keyscope"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m keyscope "$@"\n')
    launcher.chmod(0o755)
    out = tmp_path / "github-output"
    out.write_text("")
    env = {
        **os.environ,
        "KEYSCOPE_VENV": str(venv),
        "KEYSCOPE_SARIF": str(tmp_path / "keyscope.sarif"),
        "GITHUB_OUTPUT": str(out),
        "INPUT_PATH": ".", "INPUT_FAIL_ON": "low", "INPUT_BASELINE": "",
        **inputs,
    }
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False, timeout=300)
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    return proc, outputs


def test_hostile_inputs_are_data_not_code(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    proc, outputs = _run_scan_step(
        tmp_path, work,
        INPUT_PATH='$(touch pwned1)"; touch pwned2; echo "`touch pwned3`',
        INPUT_BASELINE="$(touch pwned4)",
        INPUT_FAIL_ON="low; touch pwned5",
    )
    assert proc.returncode == 0, proc.stderr
    assert not list(work.glob("pwned*")) and not list(tmp_path.glob("pwned*"))
    assert outputs == {"exit-code": "2", "sarif-file": ""}
    assert "Traceback" not in proc.stderr


def test_option_looking_path_is_a_path(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    proc, outputs = _run_scan_step(tmp_path, work, INPUT_PATH="--show-secrets")
    assert outputs["exit-code"] == "2"
    assert "--show-secrets: no such file or directory" in proc.stderr


@pytest.mark.parametrize("shallow", [True, False])
def test_scan_step_reports_findings_and_warns_on_a_shallow_checkout(tmp_path: Path,
                                                                    shallow: bool) -> None:
    origin = Repo(tmp_path / "origin")
    origin.path.mkdir()
    origin.git("init", "-q", "-b", "main")
    url = sas_url("actionleak", new_key(), datetime(2030, 1, 1, tzinfo=UTC))
    origin.write("leak.md", f"{url}\n")
    origin.commit("leak", "leak", ALICE, "2024-01-01T00:00:00+00:00")
    (origin.path / "leak.md").unlink()
    origin.write("ok.md", "fine\n")
    origin.commit("clean", "clean", ALICE, "2024-01-02T00:00:00+00:00")
    checkout = tmp_path / "checkout"
    depth = ["--depth", "1"] if shallow else []
    subprocess.run(["git", "clone", "-q", *depth, f"file://{origin.path}", str(checkout)],
                   check=True)
    proc, outputs = _run_scan_step(tmp_path, checkout)
    assert ("::warning" in proc.stdout and "shallow" in proc.stdout) is shallow
    # the key lives only in history: a shallow checkout misses it, a full one does not
    assert outputs["exit-code"] == ("0" if shallow else "1"), proc.stderr
    assert outputs["sarif-file"] == str(tmp_path / "keyscope.sarif")
    sarif = json.loads(Path(outputs["sarif-file"]).read_text())
    assert bool(sarif["runs"][0]["results"]) is not shallow
