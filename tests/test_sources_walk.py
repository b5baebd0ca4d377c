"""The walk cut into directory units gives what the serial walk gives: the same files
and skipped entries, in the same order, on a tree with nested ``.gitignore`` files
(negation, directory patterns), ``.git/info/exclude``, ``--exclude``, symbolic links
(into and out of the tree, broken, a loop), a file over the size limit and a Hugging
Face cache; and a scan with two workers reports what a scan with one does. The walk
makes no ``Path`` per entry."""

from __future__ import annotations

import os
import pickle
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pathspec
import pytest

from keyscope.model import ScanResult
from keyscope.scan import ScanOptions, scan
from keyscope.sources import files
from keyscope.sources.files import DirJob, FileEntry, IgnoreFile, WalkOptions, plan, walk
from keyscope.sources.interface import Skipped
from tests.sdk import NOW, account_sas, blob_url, new_key

# pickle protocol 4: os.system("true"), never loaded
EVIL = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R."
MAX = 4096


def _sas(account: str) -> str:
    sas = account_sas(account, new_key(), services="b", permission="rl",
                      expiry=datetime(2031, 1, 1, tzinfo=UTC))
    return blob_url(account, "c", "b.bin", sas)


def _tree(base: Path) -> Path:
    """A repository's subfolder with every walk rule in play (scanned with git=False)."""
    repo = base / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".git" / "info" / "exclude").write_text("excluded-by-info.txt\n")
    root = repo / "tree"
    for d in ("a/b/c", "a/keepdir", "build/out", "node_modules/x", "docs", "z", "many"):
        (root / d).mkdir(parents=True)
    (root / ".gitignore").write_text("build/\n*.log\n!keep.log\nnode_modules/\n/docs/*.md\n")
    (root / "a" / ".gitignore").write_text("*.tmp\n!important.tmp\nkeepdir/\n!keepdir/\n")
    (root / "a" / "b" / ".gitignore").write_text("c/secret-ignored.txt\n")
    texts = {
        "top.txt": f'url = "{_sas("walkacct1")}"\n',
        "x.log": "ignored\n", "keep.log": f"{_sas('walkacct2')}\n",
        "a/one.tmp": "ignored\n", "a/important.tmp": f"{_sas('walkacct3')}\n",
        "a/keepdir/k.txt": "kept\n", "a/b/c/secret-ignored.txt": f"{_sas('walkacct9')}\n",
        "a/b/c/found.txt": f"{_sas('walkacct4')}\n", "build/out/x.txt": "ignored\n",
        "node_modules/x/i.js": "ignored\n", "docs/readme.md": "ignored\n",
        "docs/ok.txt": "kept\n", "excluded-by-info.txt": "ignored\n",
        "z/skip-me.txt": f"{_sas('walkacct5')}\n", "z/kept.txt": "kept\n",
    }
    for name, text in texts.items():
        (root / name).write_text(text)
    for i in range(40):  # enough entries for several units
        (root / "many" / f"f{i:02d}.txt").write_text(f"line {i}\n")
    (root / "big.pkl").write_bytes(EVIL + b"\0" * MAX)  # over the limit: a model only
    (root / "a" / "b" / "evil.pkl").write_bytes(EVIL)
    (root / "inside-link.txt").symlink_to("top.txt")
    (root / "dir-link").symlink_to("a")
    (root / "loop").symlink_to(".")
    (root / "broken").symlink_to("does-not-exist")
    outside = base / "outside.txt"
    outside.write_text("out of the tree\n")
    (root / "out-link.txt").symlink_to(outside)
    hub = root / "hub" / "models--org--name"
    for sub in ("blobs", "snapshots/r1", "snapshots/r2"):
        (hub / sub).mkdir(parents=True)
    (hub / "blobs" / "e1").write_bytes(EVIL)
    (hub / "blobs" / "orphan").write_bytes(EVIL + b"\n")
    for rev in ("r1", "r2"):
        (hub / "snapshots" / rev / "model.pkl").symlink_to("../../blobs/e1")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tree(tmp_path_factory.mktemp("walk"))


OPTIONS = [
    WalkOptions(max_file_size=MAX, excludes=("z/skip-me.txt",)),
    WalkOptions(max_file_size=MAX, follow_symlinks=True),
    WalkOptions(max_file_size=MAX, respect_gitignore=False, excludes=("many",)),
]


def _as_worker(pieces: list[list[FileEntry | Skipped | DirJob]], options: WalkOptions
               ) -> list[FileEntry | Skipped]:
    """What workers decide from the pieces: each piece goes through pickle (as to a
    worker process) and is classified with ignore rules compiled there."""
    compiled: dict[int, pathspec.GitIgnoreSpec] = {}

    def spec_of(ignore: IgnoreFile) -> pathspec.GitIgnoreSpec:
        if ignore.key not in compiled:
            compiled[ignore.key] = pathspec.GitIgnoreSpec.from_lines(ignore.lines)
        return compiled[ignore.key]

    out: list[FileEntry | Skipped] = []
    for piece in pieces:
        for item in pickle.loads(pickle.dumps(piece)):
            out.extend(item.classify(options, spec_of) if isinstance(item, DirJob) else [item])
    return out


@pytest.mark.parametrize("options", OPTIONS, ids=["gitignore", "follow", "no-ignore"])
@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_directory_units_decide_what_the_serial_walk_decides(
    tree: Path, options: WalkOptions, relative: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if relative:
        monkeypatch.chdir(tree.parent)
    root = "tree" if relative else str(tree)
    serial = list(walk([root], options))
    assert any(isinstance(e, FileEntry) for e in serial)
    for size in (1, 7, 256):
        pieces = list(plan([root], options, size))
        assert any(isinstance(i, DirJob) for p in pieces for i in p)  # workers decide files
        assert _as_worker(pieces, options) == serial


def test_the_walk_keeps_every_rule(tree: Path) -> None:
    entries = list(walk([str(tree)], OPTIONS[0]))
    found = {os.path.relpath(e.path, tree) for e in entries if isinstance(e, FileEntry)}
    skipped = {os.path.relpath(e.path, tree): e.reason for e in entries
               if isinstance(e, Skipped)}
    for name in ("top.txt", "keep.log", "a/important.tmp", "a/keepdir/k.txt",
                 "a/b/c/found.txt", "docs/ok.txt", "z/kept.txt", "many/f39.txt",
                 "hub/models--org--name/snapshots/r1/model.pkl",
                 "hub/models--org--name/blobs/orphan"):
        assert name in found, name
    for name in ("x.log", "a/one.tmp", "a/b/c/secret-ignored.txt", "build/out/x.txt",
                 "node_modules/x/i.js", "docs/readme.md", "excluded-by-info.txt",
                 "z/skip-me.txt", "inside-link.txt", "hub/models--org--name/blobs/e1"):
        assert name not in found, name
    assert skipped["broken"] == "broken symbolic link"
    assert skipped["out-link.txt"].startswith("symbolic link out of the scanned tree")
    assert skipped["big.pkl"].startswith("larger than --max-file-size")
    assert skipped["hub/models--org--name/snapshots/r2/model.pkl"].startswith(
        "same Hugging Face cache blob as")


def _scan(root: Path, jobs: int, **kw: object) -> ScanResult:
    options = ScanOptions(jobs=jobs, now=NOW, git=False, max_file_size=MAX,
                          cache_dir=root.parent / "cache", **kw)  # type: ignore[arg-type]
    return scan([root, root / "a" / "b" / "evil.pkl"], options)


@pytest.mark.parametrize("kw", [{}, {"follow_symlinks": True}, {"respect_gitignore": False},
                                {"excludes": ("a",)}], ids=["default", "follow", "no-ignore",
                                                            "exclude"])
def test_two_workers_report_what_one_reports(tree: Path, kw: dict[str, object]) -> None:
    one, two = _scan(tree, 1, **kw), _scan(tree, 2, **kw)
    assert one.findings, "the tree holds credentials"
    assert {(s.path, s.reason) for s in two.skipped} == {(s.path, s.reason) for s in one.skipped}
    assert [(s.path, s.reason) for s in two.skipped] == [(s.path, s.reason) for s in one.skipped]
    assert [(f.fingerprint, f.locations) for f in two.findings] == [
        (f.fingerprint, f.locations) for f in one.findings]
    assert two.model_findings == one.model_findings
    assert any(m.path.endswith("big.pkl") for m in one.model_findings)  # oversize: models only
    assert (two.stats.files, two.stats.bytes) == (one.stats.files, one.stats.bytes)


def test_the_walk_makes_no_path_per_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    root = tmp_path / "t"
    for d in range(5):
        (root / f"d{d}").mkdir(parents=True)
        (root / f"d{d}" / ".gitignore").write_text("*.skip\n")
        for i in range(60):
            (root / f"d{d}" / f"f{i}.txt").write_text("x\n")
    made: list[object] = []
    real = files.Path

    def counting(*args: object) -> Path:
        made.append(args)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(files, "Path", counting)
    relative_to = real.relative_to
    calls: list[object] = []

    def counting_relative_to(self: Path, *args: object, **kw: object) -> Path:
        calls.append(args)
        return relative_to(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(real, "relative_to", counting_relative_to)
    serial = [e for e in walk([str(root)], WalkOptions()) if isinstance(e, FileEntry)]
    split = list(plan([str(root)], WalkOptions(), 64))
    assert len(serial) == 305  # .gitignore files are read too
    assert sum(len(i.entries) for p in split for i in p if isinstance(i, DirJob)) == 305
    assert len(made) <= 4 and len(calls) <= 2, (len(made), len(calls))  # per root, not entry


def test_jobs_scan_of_a_hugging_face_cache_reads_each_blob_once(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    repo = hub / "models--a--b"
    (repo / "blobs").mkdir(parents=True)
    sas = account_sas("hfjobs", new_key(), services="b", permission="rl",
                      expiry=NOW + timedelta(days=3))
    (repo / "blobs" / "cfg").write_text(f"https://hfjobs.blob.core.windows.net/w?{sas}\n")
    for rev in ("r1", "r2", "r3"):
        (repo / "snapshots" / rev).mkdir(parents=True)
        (repo / "snapshots" / rev / "config.json").symlink_to("../../blobs/cfg")
    for i in range(300):  # enough beside it for several units
        (tmp_path / f"n{i}.txt").write_text("x\n")
    results = [scan([tmp_path], ScanOptions(jobs=j, now=NOW, cache_dir=tmp_path / "c"))
               for j in (1, 2)]
    for result in results:
        assert [len(f.locations) for f in result.findings] == [1]
        assert len([s for s in result.skipped if "same Hugging Face" in s.reason]) == 2
    assert results[0].skipped == results[1].skipped
