"""The pre-commit hook, run by the real pre-commit (`try-repo`, which installs keyscope
from a copy of this repository): --all-files and the pre-push range are scanned, not
only the staged change."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.sdk import new_key
from tests.test_git_history import ALICE, ROOT, Repo, sas_url

DATE = "2024-01-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def hook(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, dict[str, str]]:
    """pre-commit, a committed copy of this repository, and a shared pre-commit cache
    (keyscope is installed into pre-commit's environment once per module)."""
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    assert pre_commit, "pre-commit is a test dependency (pip install -e '.[test]')"
    base = tmp_path_factory.mktemp("hook")
    repo = base / "hook"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(
        ".venv", "benchmarks", ".git", "__pycache__", "*.egg-info", ".*_cache", "build",
        "node_modules"))
    h = Repo(repo)
    h.git("init", "-q", "-b", "main")
    h.commit("hook", "hook", ALICE, DATE)
    env = {**os.environ, "PRE_COMMIT_HOME": str(base / "cache")}
    for name in ("PRE_COMMIT_FROM_REF", "PRE_COMMIT_TO_REF"):
        env.pop(name, None)
    return pre_commit, repo, env


def _work(tmp_path: Path) -> Repo:
    work = Repo(tmp_path / "work")
    work.path.mkdir()
    work.git("init", "-q", "-b", "main")
    work.write("ok.txt", "fine\n")
    work.commit("clean", "clean", ALICE, DATE)
    return work


def _try(hook: tuple[str, Path, dict[str, str]], work: Repo,
         *args: str) -> subprocess.CompletedProcess[str]:
    pre_commit, repo, env = hook
    return subprocess.run([pre_commit, "try-repo", str(repo), "keyscope", *args],
                          cwd=work.path, env=env, capture_output=True, text=True, check=False)


def test_all_files_scans_what_is_committed(hook: tuple[str, Path, dict[str, str]],
                                           tmp_path: Path) -> None:
    work = _work(tmp_path)
    url = sas_url("hookallfiles", new_key(), datetime(2030, 1, 1, tzinfo=UTC))
    work.write("docs/leak.md", f"{url}\n")
    work.commit("leak", "leak", ALICE, DATE)
    # nothing is staged: an ordinary commit-time run has nothing to check
    quiet = _try(hook, work)
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    full = _try(hook, work, "--all-files")
    assert full.returncode == 1, full.stdout + full.stderr
    assert "hookallfiles" in full.stdout
    assert url.split("sig=")[1] not in full.stdout  # redacted


def test_pre_push_scans_the_pushed_commits(hook: tuple[str, Path, dict[str, str]],
                                           tmp_path: Path) -> None:
    """A key committed and deleted again before the push is on the remote after it."""
    work = _work(tmp_path)
    base = work.commits["clean"]
    url = sas_url("hookpushed", new_key(), datetime(2030, 1, 1, tzinfo=UTC))
    work.write("leak.md", f"{url}\n")
    added = work.commit("added", "add weights link", ALICE, DATE)
    (work.path / "leak.md").unlink()
    removed = work.commit("removed", "oops, remove it", ALICE, DATE)
    push = _try(hook, work, "--hook-stage", "pre-push", "--from-ref", base, "--to-ref", removed)
    assert push.returncode == 1, push.stdout + push.stderr
    assert "hookpushed" in push.stdout
    # only the range is scanned: pushing just the deletion finds nothing
    later = _try(hook, work, "--hook-stage", "pre-push", "--from-ref", added, "--to-ref", removed)
    assert later.returncode == 0, later.stdout + later.stderr
