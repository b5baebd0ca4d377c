"""The benchmark scripts share one copy of their helpers (benchmarks/common.py), and
benchmarks/outputs.py runs every command in a fixed way and compares byte for byte."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import common  # noqa: E402
import outputs  # noqa: E402

SCRIPTS = ("run.py", "history.py", "models.py", "outputs.py", "speed.py")
SHARED = {
    "log",
    "first_line",
    "pip_install",
    "cpu_counters",
    "machine_busy",
    "machine_load",
    "wait_quiet",
    "wait_load_average",
    "until_undisturbed",
    "process_label",
    "median",
    "TreeRss",
    "TreeRssSampler",
    "become_subreaper",
    "reap_orphans",
}


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_define_no_copy_of_a_shared_helper(script: str) -> None:
    tree = ast.parse((BENCHMARKS / script).read_text(encoding="utf-8"))
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in SHARED
    }
    imported = {
        alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "common"
        for alias in node.names
    }
    assert not defined, f"{script} defines its own {sorted(defined)}: use benchmarks/common.py"
    assert imported, f"{script} does not import benchmarks/common.py"


def test_fmt_keeps_each_scripts_table_style() -> None:
    # history.py's tables: "–" for missing, thousands separators
    assert common.fmt(None) == "–"
    assert common.fmt(1234567) == "1,234,567"
    assert common.fmt(12345.678) == "12,345.7"
    assert common.fmt(2.5, 0) == "2"
    # run.py's tables: "n/a", plain numbers, two decimals by default
    assert [run_fmt(v) for v in (None, 1234567, 12345.678, "x")] == [
        "n/a",
        "1234567",
        "12345.68",
        "x",
    ]


def run_fmt(value: object) -> str:
    return common.fmt(value, 2, missing="n/a", grouped=False)


def test_median_ignores_missing_values() -> None:
    assert common.median([3, None, 1, 2]) == 2
    assert common.median([None]) is None


def test_until_undisturbed_redoes_disturbed_runs_only_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(common, "wait_quiet", lambda limit, log: waits.append(limit))
    loads = iter([1.5, 0.9, 0.1, 5.0])
    said: list[str] = []
    result, redone = common.until_undisturbed(
        lambda: next(loads),
        lambda load: load,
        quiet_wait=30,
        retries=3,
        label="run 1/3",
        log=said.append,
    )
    assert (result, redone) == (0.1, 2)
    assert waits == [30, 30, 30]
    assert said[0] == "run 1/3: other processes used 1.5 cores; repeating the run"
    # at most `retries` repeats; a result without a load figure is kept
    assert common.until_undisturbed(
        lambda: 2.0, lambda x: x, quiet_wait=1, retries=1, label="", log=said.append
    ) == (2.0, 1)
    assert common.until_undisturbed(
        lambda: 2.0, lambda x: None, quiet_wait=1, retries=3, label="", log=said.append
    ) == (2.0, 0)
    # without quiet_wait: one run, no waiting
    waits.clear()
    assert common.until_undisturbed(
        lambda: 9.0, lambda x: x, quiet_wait=0, retries=3, label="", log=said.append
    ) == (9.0, 0)
    assert waits == []


def test_every_output_case_is_reproducible() -> None:
    every = outputs.cases(Path("../policy.toml"), b"")
    names = [c.name for c in every]
    assert len(names) == len(set(names))
    for case in every:
        command = case.argv[0]
        assert "--now" in case.argv, case.name
        if command in ("scan", "models") and not case.name.startswith("scan-walk-jobs-"):
            assert case.argv[case.argv.index("-j") + 1] == "1", case.name
        if command != "baseline":
            assert case.argv[case.argv.index("--color") + 1] == "never", case.name
    for corpus in ("scan-accuracy", "models-models", "scan-incident", "scan-history", "scan-walk"):
        assert {f"{corpus}.{fmt}" for fmt in outputs.FORMATS} <= set(names)


def test_only_the_elapsed_time_is_normalised(tmp_path: Path) -> None:
    text = (
        b"Scanned 19 files (18.9 KB) in 0.12 s with hyperscan: 29 findings.\n"
        b'"stats": {"files": 19, "seconds": 0.123}, "lifetime_seconds": 3600\n'
        b"valid for 2 s in 0.5 s\n"
    )
    assert outputs.normalise(text, tmp_path) == (
        b"Scanned 19 files (18.9 KB) in <elapsed> s with hyperscan: 29 findings.\n"
        b'"stats": {"files": 19, "seconds": <elapsed>}, "lifetime_seconds": 3600\n'
        b"valid for 2 s in 0.5 s\n"
    )


def test_compare_passes_on_equal_outputs_and_fails_with_a_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / outputs.CORPUS).mkdir(parents=True)
        (root / "scan.json").write_text('{"severity": "critical"}\n')
    (a / outputs.CORPUS / "only-here.txt").write_text("corpora are compared by digest\n")
    assert outputs.compare(a, b) == 0
    (b / "scan.json").write_text('{"severity": "high"}\n')
    (b / "extra.text").write_text("new\n")
    assert outputs.compare(a, b) == 1
    shown = capsys.readouterr().out
    assert '-{"severity": "critical"}' in shown and '+{"severity": "high"}' in shown
    assert "only in" in shown and "extra.text" in shown


@pytest.mark.parametrize("use_time", [False, pytest.param(True, id="usr-bin-time")])
def test_measure_runs_once_and_reports_status_output_and_usage(
    tmp_path: Path, use_time: bool
) -> None:
    if use_time and not common.TIME_BIN.exists():
        pytest.skip("no /usr/bin/time")
    out, err = tmp_path / "run.stdout", tmp_path / "run.stderr"
    u = common.measure(
        ["sh", "-c", "echo out; echo err >&2; sleep 0.2; exit 3"],
        cwd=tmp_path, stdout=out, stderr=err, timeout=30, use_time=use_time, interval=0.05,
    )  # fmt: skip
    assert (u.returncode, u.timed_out) == (3, False)
    assert (out.read_text(), err.read_text()) == ("out\n", "err\n")
    assert 0.2 <= u.wall < 10
    assert (u.timed is not None) == use_time
    assert u.tree_rss_kb > 0 and u.rss_by_process


def test_measure_kills_the_whole_session_at_the_timeout(tmp_path: Path) -> None:
    u = common.measure(
        ["sh", "-c", "sleep 30 & sleep 30"],
        cwd=tmp_path, stdout=tmp_path / "o", stderr=tmp_path / "e", timeout=0.3, sample=False,
    )  # fmt: skip
    assert u.timed_out and u.returncode != 0
    assert u.wall < 10
