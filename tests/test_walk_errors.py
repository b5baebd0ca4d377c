"""The file walk meets real OS errors and goes on: an unreadable directory, paths at
and over PATH_MAX, file names that are not UTF-8. Each becomes a skipped entry with its
reason (or is scanned), never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from keyscope.scan import ScanOptions, scan
from keyscope.sources.files import WalkOptions, walk
from keyscope.sources.interface import Skipped
from tests.sdk import NOW

ROOT = Path(__file__).resolve().parents[1]
# pickle protocol 4: os.system("true"), never loaded
EVIL = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R."
PATH_MAX = os.pathconf("/", "PC_PATH_MAX")


def _without_dac_override() -> list[str]:
    """A prefix that runs a command where chmod 000 really denies reads. Root
    bypasses file modes through CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: drop them
    from the bounding set (the process stays root, so the interpreter stays reachable)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: chmod 000 cannot deny a read")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.parametrize("ignore", [True, False], ids=["gitignore", "no-ignore"])
def test_unreadable_directory_is_skipped_with_its_reason(tmp_path: Path, ignore: bool) -> None:
    tree = tmp_path / "tree"
    (tree / "locked" / "inner").mkdir(parents=True)
    (tree / "locked" / "inner" / "w.pkl").write_bytes(EVIL)
    (tree / "open").mkdir()
    (tree / "open" / "model.pkl").write_bytes(EVIL)
    (tree / "locked").chmod(0)
    try:
        cmd = [*_without_dac_override(), sys.executable, "-m", "keyscope", "scan", "-q",
               "-j", "1", "--format", "json", "--fail-on", "never", str(tree)]
        if not ignore:
            cmd.append("--no-ignore")
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"),
               "XDG_CACHE_HOME": str(tmp_path / "cache")}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    finally:
        (tree / "locked").chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [m["path"] for m in doc["model_findings"]] == [str(tree / "open" / "model.pkl")]
    assert doc["skipped"] == [{"path": str(tree / "locked"), "reason": "permission denied"}]


def _deep_folder(base: Path, length: int) -> str:
    """Make nested directories (each name under NAME_MAX) until the absolute path is
    ``length`` characters long, through directory descriptors (mkdir by full path
    would itself fail past PATH_MAX). Returns the path."""
    base.mkdir()
    path = str(base)
    fd = os.open(base, os.O_RDONLY)
    try:
        while len(path) < length:
            name = "d" * min(200, length - len(path) - 1)
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
            path += "/" + name
        if len(path) < PATH_MAX - 20:  # room for a file the walk can still reach
            leaf = os.open("leaf.pkl", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
            os.write(leaf, EVIL)
            os.close(leaf)
    finally:
        os.close(fd)
    return path


@pytest.mark.parametrize("ignore", [True, False], ids=["gitignore", "no-ignore"])
def test_paths_near_and_over_path_max(tmp_path: Path, ignore: bool) -> None:
    # The folder itself fits, its ".gitignore" (and any long file name in it) does not.
    near = _deep_folder(tmp_path / "near", PATH_MAX - 6)
    os.mkdir(tmp_path / "near" / "ok")
    (tmp_path / "near" / "ok" / "m.pkl").write_bytes(EVIL)
    over = _deep_folder(tmp_path / "over", PATH_MAX + 300)
    fits = _deep_folder(tmp_path / "fits", PATH_MAX - 200)
    options = WalkOptions(respect_gitignore=ignore)
    entries = list(walk([str(tmp_path)], options))
    skipped = {e.path: e.reason for e in entries if isinstance(e, Skipped)}
    files = [e.path for e in entries if not isinstance(e, Skipped)]
    assert str(tmp_path / "near" / "ok" / "m.pkl") in files
    assert fits + "/leaf.pkl" in files
    too_long = [p for p, r in skipped.items() if r == "file name too long"]
    assert any(over.startswith(p) for p in too_long), skipped
    # Where its .gitignore no longer fits in PATH_MAX, a folder's ignore rules cannot be
    # read: it is not walked, and says so.
    assert any(near.startswith(p) for p in too_long) is ignore, skipped
    assert set(skipped.values()) == {"file name too long"}
    result = scan([tmp_path], ScanOptions(jobs=1, now=NOW, cache_dir=tmp_path / "c",
                                          respect_gitignore=ignore))
    assert sorted(m.path for m in result.model_findings) == sorted(
        [fits + "/leaf.pkl", str(tmp_path / "near" / "ok" / "m.pkl")])


def test_file_names_that_are_not_utf8_are_walked_and_read(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/w\xff\xfe.pkl"
    with open(raw, "wb") as f:
        f.write(EVIL)
    os.mkdir(os.fsencode(tmp_path) + b"/dir\xe9")
    with open(os.fsencode(tmp_path) + b"/dir\xe9/x.pkl", "wb") as f:
        f.write(EVIL)
    result = scan([tmp_path], ScanOptions(jobs=1, now=NOW, cache_dir=tmp_path / "c"))
    assert sorted(os.fsencode(m.path) for m in result.model_findings) == sorted(
        [raw, os.fsencode(tmp_path) + b"/dir\xe9/x.pkl"])
    assert result.skipped == []
