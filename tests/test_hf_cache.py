"""A Hugging Face hub cache, built with its real layout: ``models--org--name/`` holding
``refs/main``, content-addressed ``blobs/`` (sha256 for LFS files, git blob sha1 for
small ones) and ``snapshots/<commit>/`` whose files are relative symlinks into
``../../blobs/``. The checkpoint is a real ``torch.save``; the malicious pickle is
built from opcodes (it would call ``os.system``; it is never loaded)."""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import torch

from keyscope.cli import main
from keyscope.model import ScanResult
from keyscope.scan import ScanOptions, scan
from tests.sdk import NOW, account_sas, new_key

OLD = "1" * 40
MAIN = "2" * 40
# pickle protocol 4: os.system("true") via STACK_GLOBAL + REDUCE
EVIL = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R."


@dataclass(frozen=True)
class Cache:
    hub: Path
    repo: Path
    orphan: str  # a blob no snapshot points at (an older file), by its blob path
    sas: str


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _put(repo: Path, commit: str, name: str, data: bytes, etag: str) -> None:
    """Write the blob (once) and link ``snapshots/<commit>/<name>`` to it, as
    ``hf_hub_download`` does: a relative link, one ``..`` per directory level."""
    blob = repo / "blobs" / etag
    if not blob.exists():
        blob.write_bytes(data)
    link = repo / "snapshots" / commit / name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    hub = tmp_path / "huggingface" / "hub"
    repo = hub / "models--org--name"
    for sub in ("blobs", "refs", "snapshots"):
        (repo / sub).mkdir(parents=True)
    (repo / "refs" / "main").write_text(MAIN)
    buf = io.BytesIO()
    torch.save({"weight": torch.zeros(4, 4), "step": 3}, buf)
    model = buf.getvalue()
    sas = account_sas("hfacct", new_key(), services="b", permission="rl",
                      expiry=NOW + timedelta(days=30))
    config = json.dumps({"model_type": "demo",
                         "weights_url": f"https://hfacct.blob.core.windows.net/w?{sas}"}).encode()
    for commit in (OLD, MAIN):  # both revisions share the same checkpoint and config
        _put(repo, commit, "pytorch_model.bin", model, _sha256(model))
        _put(repo, commit, "config.json", config, _git_sha1(config))
    _put(repo, MAIN, "training/training_args.bin", EVIL, _sha256(EVIL))  # a nested path
    orphan = EVIL + b"\n"  # an older upload no snapshot points at any more
    (repo / "blobs" / _sha256(orphan)).write_bytes(orphan)
    return Cache(hub, repo, f"blobs/{_sha256(orphan)}", sas)


def _scan(path: Path, cache_dir: Path, **kw: object) -> ScanResult:
    return scan([path], ScanOptions(jobs=1, now=NOW, cache_dir=cache_dir, **kw))  # type: ignore[arg-type]


def _models(result: ScanResult, root: Path) -> list[tuple[str, str]]:
    return sorted((m.path.removeprefix(f"{root}/"), m.verdict) for m in result.model_findings)


def test_scanned_at_snapshots_every_file_is_read_under_its_snapshot_name(
    cache: Cache, tmp_path: Path
) -> None:
    snapshots = cache.repo / "snapshots"
    result = _scan(snapshots, tmp_path / "c")
    assert result.stats.files == 3  # checkpoint, config, training_args: one blob each
    assert _models(result, snapshots) == [(f"{MAIN}/training/training_args.bin", "executes-code")]
    [finding] = result.findings
    assert [loc.path.removeprefix(f"{snapshots}/") for loc in finding.locations] == [
        f"{OLD}/config.json"]
    skipped = {s.path.removeprefix(f"{snapshots}/"): s.reason for s in result.skipped}
    # The second revision's links lead to blobs already read: said, not read again.
    assert set(skipped) == {f"{MAIN}/config.json", f"{MAIN}/pytorch_model.bin"}
    assert all(f"same Hugging Face cache blob as {snapshots}/{OLD}/" in r
               for r in skipped.values())


def test_cli_exits_non_zero_on_a_cache_whose_checkpoint_runs_code(
    cache: Cache, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    rc = main(["scan", "-q", "-j", "1", "--format", "json", str(cache.repo / "snapshots" / MAIN)])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert [m["path"] for m in doc["model_findings"]] == [
        str(cache.repo / "snapshots" / MAIN / "training" / "training_args.bin")]
    assert doc["stats"]["files"] == 3 and doc["skipped"] == []


def test_hub_root_reports_each_file_once_by_snapshot_name(cache: Cache, tmp_path: Path) -> None:
    result = _scan(cache.hub, tmp_path / "c")
    repo = "models--org--name"
    assert _models(result, cache.hub) == [
        (f"{repo}/{cache.orphan}", "executes-code"),  # orphan: scanned under its blob name
        (f"{repo}/snapshots/{MAIN}/training/training_args.bin", "executes-code"),
    ]
    # refs/main, three snapshot files, the orphan blob; no referenced blob a second time
    assert result.stats.files == 5
    [finding] = result.findings
    assert [loc.path.removeprefix(f"{cache.hub}/") for loc in finding.locations] == [
        f"{repo}/snapshots/{OLD}/config.json"]


def test_follow_symlinks_does_not_read_a_blob_twice(cache: Cache, tmp_path: Path) -> None:
    result = _scan(cache.hub, tmp_path / "c", follow_symlinks=True)
    assert [p for p, _ in _models(result, cache.hub)] == [
        f"models--org--name/{cache.orphan}",
        f"models--org--name/snapshots/{MAIN}/training/training_args.bin",
    ]
    assert result.stats.files == 5


def test_shared_xet_blob_at_the_cache_root(cache: Cache, tmp_path: Path) -> None:
    """Recent clients keep Xet blobs once per cache (``<root>/blobs/<prefix>/<hash>``):
    the repository's ``blobs/<etag>`` is then itself a link to it."""
    xet = _sha256(b"xet" + EVIL)
    shared = cache.hub / "blobs" / xet[:2] / xet
    shared.parent.mkdir(parents=True)
    shared.write_bytes(EVIL)
    etag = _sha256(EVIL + b"xet")
    (cache.repo / "blobs" / etag).symlink_to(os.path.relpath(shared, cache.repo / "blobs"))
    _put(cache.repo, MAIN, "xet_model.bin", b"", etag)
    result = _scan(cache.hub, tmp_path / "c")
    paths = [p for p, _ in _models(result, cache.hub)]
    assert f"models--org--name/snapshots/{MAIN}/xet_model.bin" in paths
    assert not any(p.startswith("blobs/") or etag in p for p in paths), paths
    # scanned at the repository alone, the link still reaches the shared blob
    alone = _scan(cache.repo / "snapshots", tmp_path / "c")
    assert f"{MAIN}/xet_model.bin" in [p for p, _ in _models(alone, cache.repo / "snapshots")]


def test_snapshot_link_out_of_the_cache_is_not_followed(cache: Cache, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.bin"
    outside.write_bytes(EVIL)
    link = cache.repo / "snapshots" / MAIN / "stray.bin"
    link.symlink_to(outside)
    result = _scan(cache.repo / "snapshots", tmp_path / "c")
    assert "stray.bin" not in " ".join(m.path for m in result.model_findings)
    [reason] = [s.reason for s in result.skipped if s.path == str(link)]
    assert "out of the scanned tree" in reason
