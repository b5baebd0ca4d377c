"""A large repository in pieces on a cluster (``fleet/repo_pieces.py``): a repository
made with real ``git`` whose history ``--split-size`` cuts into several tasks, with
credentials signed by the Azure SDK and botocore spread over its commits (one
secret kept across edits of its file and then removed; one blob at several paths and
commits; one on a side branch; one uncommitted). The pieces scan every blob once
between them, and the findings of a scan on a real Dask cluster (``dask scheduler``
and ``dask worker`` processes on loopback), git provenance included, equal the
single-machine scan's exactly."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from keyscope.fleet.repo_pieces import (
    KEY_SPACE,
    RepoPiece,
    history_size,
    pieces_for,
    repo_pieces,
)
from keyscope.fleet.task import scan_target
from keyscope.scan import ScanOptions, scan
from tests import sdk, tokens
from tests.dask_cluster import DaskCluster, assert_each_once

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-12-01T00:00:00Z"
SPLIT = "100K"
SPLIT_BYTES = 100 << 10
COMMITS = 40


def _git(repo: Path, *args: str, day: int = 1) -> str:
    stamp = f"2026-01-{1 + day // 24:02}T{day % 24:02}:00:00Z"
    env = {**os.environ, "GIT_AUTHOR_NAME": f"Dev {day % 3}",
           "GIT_AUTHOR_EMAIL": f"dev{day % 3}@example.com", "GIT_COMMITTER_NAME": "CI",
           "GIT_COMMITTER_EMAIL": "ci@example.com", "GIT_AUTHOR_DATE": stamp,
           "GIT_COMMITTER_DATE": stamp}  # fmt: skip
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, env=env,
                          capture_output=True, text=True)  # fmt: skip
    return done.stdout


def _sas(blob: str) -> str:
    key = sdk.new_key()
    sas = sdk.account_sas("contosodata", key, expiry=datetime(2027, 6, 1, tzinfo=UTC),
                          resource_types="o", services="b", permission="r")  # fmt: skip
    return sdk.blob_url("contosodata", "backups", blob, sas)


def _presigned() -> str:
    import botocore.session
    from botocore.config import Config

    client = botocore.session.get_session().create_client(
        "s3", region_name="eu-west-1", config=Config(signature_version="s3v4"),
        aws_access_key_id="AKIA" + tokens.rand("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
        aws_secret_access_key=tokens.rand("abcdefghijklmnopqrstuvwxyz0123456789", 40),
    )  # fmt: skip
    url: str = client.generate_presigned_url(
        "get_object", Params={"Bucket": "ml-artifacts", "Key": "w.bin"}, ExpiresIn=3600)
    return url


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Forty commits of pages and a growing notes file; an SAS URL in settings.py
    (added, kept over 16 edits of another line, removed), a presigned URL in one blob
    at deploy/a.env, deploy/b.env and, later, backup/a.env; an SAS URL kept to HEAD;
    one on a side branch; one in an uncommitted file."""
    repo = tmp_path_factory.mktemp("bigrepo")
    rng = random.Random(19)
    _git(repo, "init", "-q", "-b", "main")
    shared = f"S3_URL={_presigned()}\n"
    kept = _sas("kept.bak")
    notes = ""
    for i in range(COMMITS):
        words = " ".join("".join(rng.choice("abcdefghij") for _ in range(6)) for _ in range(420))
        (repo / "docs").mkdir(exist_ok=True)
        (repo / "docs" / f"page{i:02}.md").write_text(f"# page {i}\n{words}\n")
        notes += f"note {i}: {words[:60]}\n"
        (repo / "notes.txt").write_text(notes)
        settings = repo / "config" / "settings.py"
        if i == 3:
            settings.parent.mkdir()
            backup = _sas("db.bak")
        if 3 <= i < 20:  # another line edited: a new blob each time, the same secret
            settings.write_text(f"DEBUG = {i}\nBACKUP = '{backup}'\n")
        if i == 20:
            settings.write_text("DEBUG = True\nBACKUP = None\n")
        if i == 5:
            (repo / "deploy").mkdir()
            (repo / "deploy" / "a.env").write_text(shared)
            (repo / "deploy" / "b.env").write_text(shared)
        if i == 15:
            (repo / "backup").mkdir()
            (repo / "backup" / "a.env").write_text(shared)
        if i == 25:
            (repo / "keys.txt").write_text(f"kept: {kept}\n")
        _git(repo, "add", "-A", day=i)
        _git(repo, "commit", "-qm", f"commit {i}", day=i)
        if i == 30:
            _git(repo, "checkout", "-q", "-b", "feature", day=i)
            (repo / "feature.cfg").write_text(f"url = {_sas('feature.bin')}\n")
            _git(repo, "add", "-A", day=i)
            _git(repo, "commit", "-qm", "feature", day=i)
            _git(repo, "checkout", "-q", "main", day=i)
    (repo / "local.cfg").write_text(f"token = {tokens.github()}\n")  # not committed
    return repo


def _blobs(repo: Path) -> list[str]:
    out = _git(repo, "cat-file", "--batch-all-objects", "--batch-check")
    return [line.split()[0] for line in out.splitlines() if line.split()[1] == "blob"]


def _options(cache: Path) -> ScanOptions:
    return ScanOptions(now=datetime(2026, 12, 1, tzinfo=UTC), cache_dir=cache)


def test_the_ranges_cover_the_id_space_without_overlap_or_gap(repo: Path) -> None:
    for n in (1, 2, 3, 7, 1024):
        pieces = repo_pieces("r", n, "t")
        assert [p.index for p in pieces] == list(range(n))
        assert pieces[0].lo == 0 and pieces[-1].hi == KEY_SPACE
        for before, after in itertools.pairwise(pieces):
            assert before.hi == after.lo and before.lo < before.hi
        for oid in [*_blobs(repo), "0" * 40, "f" * 40, "f" * 64]:
            assert sum(p.holds(oid) for p in pieces) == 1, (n, oid)
    assert repo_pieces("r", 4, "t")[1].name == "r#blobs=40000000-7fffffff"
    assert pieces_for(10, 10, 0) == 1  # --split-size 0: never cut
    assert pieces_for(1, 250 << 10, SPLIT_BYTES) == 3  # by bytes
    assert pieces_for(100, 0, SPLIT_BYTES) == 4  # by blobs: 4 KiB of work each


def test_pieces_scan_each_blob_once_and_find_what_the_whole_scan_finds(
    repo: Path, tmp_path: Path
) -> None:
    options = _options(tmp_path / "cache")
    whole = scan([str(repo)], options)
    first = scan_target(str(repo), options, SPLIT_BYTES)
    assert first.findings == [] and len(first.pieces) >= 3  # cut, not scanned
    results = [scan_target(p, options) for p in first.pieces]
    assert all(r.failed is None for r in results)
    blobs = _blobs(repo)
    # the versions of settings.py holding the secret fall in several pieces
    log = _git(repo, "log", "--format=%H", "--", "config/settings.py").split()
    versions = {_git(repo, "rev-parse", f"{c}:config/settings.py").strip() for c in log[1:]}
    assert len(versions) == 17
    assert len({p.index for p in first.pieces for v in versions if p.holds(v)}) >= 2
    # every blob read by exactly one piece; the uncommitted file by the first only
    assert [r.files for r in results] == [
        sum(p.holds(b) for b in blobs) + (p.index == 0) for p in first.pieces
    ]
    assert sum(r.files for r in results) == whole.stats.files == len(blobs) + 1
    assert sum(r.bytes for r in results) == whole.stats.bytes
    located = sorted(repr((f.fingerprint, loc)) for r in results for f in r.findings
                     for loc in f.locations)  # fmt: skip
    expected = sorted(repr((f.fingerprint, loc)) for f in whole.findings for loc in f.locations)
    assert len(expected) >= 6 and sum("git=None" in e for e in expected) == 1  # local.cfg
    assert located == expected  # each location once, with the same provenance




def _keyscope(*args: str) -> tuple[dict[str, Any], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "keyscope", "scan", "--now", NOW, "--fail-on", "never",
         "--format", "json", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc, done.stderr


def _where(doc: dict[str, Any], path: str) -> list[dict[str, Any]]:
    return [loc for f in doc["findings"] for loc in f["locations"] if loc["path"].endswith(path)]


@pytest.mark.parametrize("remote", [False, True], ids=["path", "url"])
def test_the_cluster_scan_of_a_repository_in_pieces_equals_the_single_machine_scan(
    repo: Path, cluster: DaskCluster, tmp_path: Path, remote: bool
) -> None:
    """A local path, and the same repository as a URL (each piece mirrors it under
    the scan's cache)."""
    target = repo.as_uri() if remote else str(repo)
    single, _ = _keyscope(target)
    doc, err = _keyscope(target, "--cluster", cluster.address, "--split-size", SPLIT)
    n = pieces_for(*history_size(repo, _options(tmp_path)), SPLIT_BYTES)
    assert n >= 3
    assert f"targets: {n}/{n} done, 0 running, 0 failed" in err  # progress counts pieces
    assert doc["findings"] == single["findings"]
    assert doc["stats"]["files"] == single["stats"]["files"]
    assert doc["stats"]["bytes"] == single["stats"]["bytes"]
    assert doc["skipped"] == single["skipped"] == []
    # the planted secrets, with their history
    [removed] = _where(doc, "config/settings.py")
    assert removed["git"]["message"] == "commit 3" and removed["git"]["removed_in"]
    for path in ("/deploy/a.env", "/deploy/b.env", "/backup/a.env"):  # one blob, three places
        [loc] = _where(doc, path)
        assert loc["git"]["message"] == ("commit 15" if "backup" in path else "commit 5")
    [kept] = _where(doc, "keys.txt")
    assert kept["git"]["present_at_head"] and kept["git"]["message"] == "commit 25"
    assert _where(doc, "feature.cfg")[0]["git"]["message"] == "feature"
    if not remote:
        assert _where(doc, "local.cfg")  # the uncommitted file, read by the first piece


def test_a_piece_is_named_by_its_range() -> None:
    piece = RepoPiece("https://git.example/r.git", 0, KEY_SPACE // 2, 0, 2, "t")
    assert piece.name == "https://git.example/r.git#blobs=00000000-7fffffff"


def _popen(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, "-m", "keyscope", "scan", "--now", NOW, "--fail-on", "never", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _done(db: Path) -> int:
    """Tasks the scan recorded as finished (the table exists once it started)."""
    from keyscope.inventory.store import open_store

    try:
        with open_store(str(db), migrate=False) as store:
            return int(store.scalar("SELECT count(*) FROM scan_targets WHERE status = 'done'"))
    except Exception:  # the scan has not made the database yet
        return 0


def test_an_interrupted_scan_resumes_without_the_pieces_it_finished(
    repo: Path, cluster: DaskCluster, tmp_path: Path
) -> None:
    """With --db, each piece is recorded as it ends. The target list also holds a
    repository on a loopback server that takes the connection and never answers:
    the first run is interrupted once every piece is done; the second scans none of
    them again and loses none of their findings."""
    from keyscope.fleet.run import RESUMED
    from keyscope.inventory.store import open_store

    single, _ = _keyscope(str(repo))
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)
    stuck = f"http://127.0.0.1:{hang.getsockname()[1]}/stuck.git"
    listed = tmp_path / "targets.txt"
    listed.write_text(f"{repo}\n{stuck}\n")
    db = tmp_path / "inventory.sqlite3"
    args = ("--targets", str(listed), "--format", "json", f"--db={db}",
            "--cluster", cluster.address, "--split-size", SPLIT)  # fmt: skip
    n = pieces_for(*history_size(repo, _options(tmp_path)), SPLIT_BYTES)
    first = _popen(*args)
    try:
        deadline = time.monotonic() + 120
        while _done(db) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _done(db) == n
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    finally:
        hang.close()  # the stuck clone fails now, and frees its worker
        if first.poll() is None:
            first.kill()
    assert first.returncode == 143  # interrupted
    second = _popen(*args)
    out, err = second.communicate(timeout=180)
    assert second.returncode == 0, err
    doc = json.loads(out)
    resumed = sorted(s["path"] for s in doc["skipped"] if s["reason"] == RESUMED)
    assert resumed == sorted(p.name for p in repo_pieces(str(repo), n, ""))
    assert doc["stats"]["files"] == 0 and doc["findings"] == []
    assert f"targets: {n + 1}/{n + 1} done" in err
    with open_store(str(db)) as store:
        stored = {r["fingerprint"] for r in store.rows("SELECT fingerprint FROM credentials")}
    assert stored == {f["fingerprint"] for f in single["findings"]}  # nothing lost


def test_a_worker_killed_mid_piece_loses_nothing_and_repeats_nothing(
    repo: Path, cluster: DaskCluster
) -> None:
    single, _ = _keyscope(str(repo))
    victim = cluster.add_worker()
    cluster.wait_for(3)
    watcher = cluster.watch_busy(f"w{len(cluster.workers) - 1}")
    proc = _popen(str(repo), "--format", "jsonl", "--cluster", cluster.address,
                  "--split-size", "40K")  # fmt: skip
    assert watcher.stdout is not None
    assert watcher.stdout.readline().strip() == "busy"  # the victim holds a task: kill it
    victim.send_signal(signal.SIGKILL)
    watcher.wait(30)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    victim.wait(10)
    assert_each_once(out, single)


def _mirror_in(args: tuple[str, str, str]) -> str:
    from keyscope.fleet.mirrors import shared_mirror

    url, cache, token = args
    return str(shared_mirror(url, Path(cache), token))


def test_workers_of_one_machine_share_a_mirror_safely(repo: Path, tmp_path: Path) -> None:
    """Four processes at once on an empty cache: one clones, the others wait and use
    its mirror (without the lock, the clones would collide in one folder); a clone
    left half-made is removed and made again."""
    import multiprocessing

    from keyscope.fleet.mirrors import MARKER, shared_mirror
    from keyscope.sources.remote import mirror_path, mirrors_in

    url, cache = repo.as_uri(), tmp_path / "cache"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        made = pool.map(_mirror_in, [(url, str(cache), f"scan{i % 2}") for i in range(4)])
    target = mirror_path(url, mirrors_in(cache))
    assert set(made) == {str(target)}
    assert _git(target, "rev-parse", "main").strip() == _git(repo, "rev-parse", "main").strip()
    assert (target / MARKER).read_text().strip() in ("scan0", "scan1")
    # a clone killed half-way: a folder without the marker
    _git(target, "update-ref", "-d", "refs/heads/main")
    (target / MARKER).unlink()
    assert shared_mirror(url, cache, "scan2") == target
    assert _git(target, "rev-parse", "main").strip() == _git(repo, "rev-parse", "main").strip()
    assert (target / MARKER).read_text().strip() == "scan2"
