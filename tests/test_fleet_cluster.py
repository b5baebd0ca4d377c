"""``keyscope scan --cluster``: a real Dask scheduler and worker processes on loopback
(``tests/dask_cluster.py``), 50 repositories made with real ``git`` and web archives
written by warcio. The distributed findings equal the single-machine ones exactly,
also when a worker is SIGKILLed mid-scan; a failing target is skipped with its
reason; an interrupted ``--db`` scan resumes without the targets it finished."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from keyscope.fleet.pieces import warc_pieces
from keyscope.fleet.run import RESUMED
from keyscope.inventory.store import Store, open_store
from tests import tokens
from tests.dask_cluster import DaskCluster, assert_each_once
from tests.postgres import Postgres
from tests.warcs import gzip_warc

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-12-01T00:00:00Z"
REPOS = 50
SPLIT = "64K"  # big.warc.gz in pieces


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com",
           "GIT_AUTHOR_DATE": "2026-01-02T03:04:05Z",
           "GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z"}  # fmt: skip
    subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A target file: 50 repositories (a secret each, one shared by every fifth, one
    committed then deleted in every seventh) and three web archives (one record
    repeats a repository's secret)."""
    root = tmp_path_factory.mktemp("fleet")
    shared = tokens.github()
    lines = ["# fifty repositories and three web archives"]
    for i in range(REPOS):
        repo = root / f"repo{i:02}"
        repo.mkdir()
        _git(repo, "init", "-q", "-b", "main")
        (repo / "README.md").write_text(f"repository {i}\n")
        (repo / "settings.py").write_text(f"TOKEN = '{tokens.github()}'\n")
        if i % 5 == 0:
            (repo / "ci.env").write_text(f"GH_TOKEN={shared}\n")
        if i % 7 == 0:
            (repo / "old.cfg").write_text(f"token = {tokens.gitlab_routable()}\n")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-qm", "first")
        if i % 7 == 0:
            _git(repo, "rm", "-q", "old.cfg")
            _git(repo, "commit", "-qm", "remove the token")
        lines.append(str(repo))
    for n in range(3):
        archive = root / f"crawl{n}.warc.gz"
        pages = [(f"https://site{n}.example/p{k}", f"<p>{tokens.github()}</p>".encode())
                 for k in range(4)]  # fmt: skip
        pages.append((f"https://site{n}.example/shared", f"<b>{shared}</b>".encode()))
        archive.write_bytes(gzip_warc(pages))
        lines.append(f"{archive}  # a crawl")
    # a larger one, cut into pieces by --split-size in the distributed scans
    words = tokens.RNG
    pages = []
    for k in range(60):
        text = " ".join("".join(words.choice("abcdefghij") for _ in range(7)) for _ in range(900))
        secret = f" {tokens.github()} " if k % 6 == 0 else " "
        pages.append((f"https://big.example/p{k}", f"<p>{text}{secret}{text[:99]}</p>".encode()))
    (root / "big.warc.gz").write_bytes(gzip_warc(pages))
    lines.append(str(root / "big.warc.gz"))
    (root / "targets.txt").write_text("\n".join(lines) + "\n")
    return root




def tasks(corpus: Path) -> int:
    """The tasks of the target list: one a target, big.warc.gz one a piece."""
    pieces = warc_pieces(str(corpus / "big.warc.gz"), 64 << 10)
    assert pieces is not None and len(pieces) >= 3
    return REPOS + 3 + len(pieces)


def keyscope(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "keyscope", "scan", "--now", NOW, "--fail-on", "never", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full,
    )  # fmt: skip


def finished(proc: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    return out, err


@pytest.fixture(scope="module")
def single(corpus: Path) -> dict[str, Any]:
    """The single-machine scan of the target file."""
    out, _ = finished(keyscope("--targets", str(corpus / "targets.txt"), "--format", "json"))
    doc: dict[str, Any] = json.loads(out)
    return doc


def test_the_distributed_scan_equals_the_single_machine_scan(
    corpus: Path, cluster: DaskCluster, single: dict[str, Any]
) -> None:
    proc = keyscope("--targets", str(corpus / "targets.txt"), "--format", "json",
                    "--cluster", cluster.address, "--split-size", SPLIT)  # fmt: skip
    out, err = finished(proc)
    doc = json.loads(out)
    # every repository's own secret, the gitlab tokens of every seventh, the archives'
    assert len(single["findings"]) >= REPOS + 12 + 10
    shared = [f for f in single["findings"] if len(f["locations"]) == REPOS // 5 + 3]
    assert len(shared) == 1  # one secret in 13 places across the targets: one finding
    assert doc["findings"] == single["findings"]
    assert doc["skipped"] == single["skipped"] == []
    assert doc["stats"]["files"] == single["stats"]["files"]
    assert doc["stats"]["bytes"] == single["stats"]["bytes"]
    assert doc["timeline"] == single["timeline"]
    assert f"cluster {cluster.address}" in err
    n = tasks(corpus)
    assert f"targets: {n}/{n} done, 0 running, 0 failed" in err


def test_a_worker_killed_mid_scan_loses_nothing_and_repeats_nothing(
    corpus: Path, cluster: DaskCluster, single: dict[str, Any]
) -> None:
    victim = cluster.add_worker()
    cluster.wait_for(3)
    watcher = cluster.watch_busy(f"w{len(cluster.workers) - 1}")
    proc = keyscope("--targets", str(corpus / "targets.txt"), "--format", "jsonl",
                    "--cluster", cluster.address, "--split-size", SPLIT)  # fmt: skip
    assert watcher.stdout is not None
    assert watcher.stdout.readline().strip() == "busy"  # the victim holds a task: kill it
    victim.send_signal(signal.SIGKILL)
    watcher.wait(30)
    out, _ = finished(proc)
    victim.wait(10)
    assert_each_once(out, single)


def test_a_failing_target_is_skipped_with_its_reason_and_the_scan_goes_on(
    corpus: Path, cluster: DaskCluster, tmp_path: Path
) -> None:
    listed = tmp_path / "targets.txt"
    gone = (tmp_path / "gone.git").as_uri()
    listed.write_text(f"{gone}\n{corpus / 'repo01'}\n")
    out, err = finished(keyscope("--targets", str(listed), "--format", "json",
                                 "--cluster", cluster.address))  # fmt: skip
    doc = json.loads(out)
    [skip] = doc["skipped"]
    assert skip["path"] == gone
    assert "could not be scanned: cannot clone" in skip["reason"]
    [path] = [loc["path"] for f in doc["findings"] for loc in f["locations"]]
    assert path == str(corpus / "repo01" / "settings.py")
    assert "1 failed" in err


def _done(store: Store) -> int:
    """Targets the scan recorded as finished (the table exists once it started)."""
    try:
        return int(store.scalar("SELECT count(*) FROM scan_targets WHERE status = 'done'"))
    except Exception:  # the scan has not migrated the database yet
        return 0


def test_an_interrupted_scan_resumes_from_the_inventory_without_the_targets_it_finished(
    corpus: Path, cluster: DaskCluster, single: dict[str, Any], postgres: Postgres,
    tmp_path: Path,
) -> None:
    """On PostgreSQL, the inventory of a distributed scan. One more target is a
    repository on a loopback server that takes the connection and never answers: the
    first run cannot end before it is interrupted, once every other target is done."""
    db = postgres.database()
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)
    listed = tmp_path / "targets.txt"
    stuck = f"http://127.0.0.1:{hang.getsockname()[1]}/stuck.git"
    listed.write_text((corpus / "targets.txt").read_text() + stuck + "\n")
    args = ("--targets", str(listed), "--format", "json", f"--db={db}",
            "--cluster", cluster.address, "--split-size", SPLIT)  # fmt: skip
    others = tasks(corpus)
    first = keyscope(*args, env={"PYTHONFAULTHANDLER": "1"})
    try:
        with open_store(db) as store:
            deadline = time.monotonic() + 120
            while _done(store) < others and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _done(store) == others
            # SIGTERM unwinds a scan as Ctrl-C does; SIGINT would be ignored when the
            # tests themselves run in a background job (its children inherit that)
            first.send_signal(signal.SIGTERM)
            try:
                first.communicate(timeout=60)
            except subprocess.TimeoutExpired:  # where it is stuck: the threads' stacks
                first.send_signal(signal.SIGABRT)
                _, err = first.communicate(timeout=30)
                pytest.fail(f"not interrupted within 60 s:\n{err[-6000:]}")
    finally:
        hang.close()  # the stuck clone fails now, and frees its worker
        if first.poll() is None:
            first.kill()
    assert first.returncode == 143  # interrupted
    out, _ = finished(keyscope(*args))
    doc = json.loads(out)
    resumed = [s["path"] for s in doc["skipped"] if s["reason"] == RESUMED]
    assert len(resumed) == others  # not scanned again
    [failed] = [s for s in doc["skipped"] if s["reason"] != RESUMED]
    assert failed["path"] == stuck and "cannot clone" in failed["reason"]
    assert doc["stats"]["files"] == 0 and doc["findings"] == []
    with open_store(db) as store:
        stored = {r["fingerprint"] for r in store.rows("SELECT fingerprint FROM credentials")}
        left = store.scalar("SELECT count(*) FROM scan_targets")
    assert stored == {f["fingerprint"] for f in single["findings"]}  # nothing lost
    assert left == 0  # the run ended: the next one scans every target again


def test_local_workers_and_the_progress_lines(corpus: Path, tmp_path: Path) -> None:
    """``local:N`` starts its own workers; stderr names the scheduler and its
    dashboard, then targets done / running / failed, bytes and findings."""
    listed = tmp_path / "targets.txt"
    listed.write_text(f"{corpus / 'repo01'}\n{corpus / 'repo02'}\n")
    out, err = finished(keyscope("--targets", str(listed), "--format", "json",
                                 "--cluster", "local:1"))  # fmt: skip
    doc = json.loads(out)
    assert len(doc["findings"]) == 2
    assert re.search(r"cluster tcp://127\.0\.0\.1:\d+; dashboard http://127\.0\.0\.1:\d+/status",
                     err)  # fmt: skip
    size = doc["stats"]["bytes"]
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(rf"keyscope: targets: 2/2 done, 0 running, 0 failed; {size} B, 2 findings",
                        last), last  # fmt: skip
