"""Large zips read by several workers (``sources/zipparts.py``): a worker hands a zip
of ``SPLIT_BYTES`` or more back, the files source plans one unit per piece of its
central directory plus one model-walk unit, and puts their results back where the
zip was met, so that ``-j 2`` reports exactly what ``-j 1`` reports. A piece that
exceeds its share of the unpack budget sends the file back to be read whole.
Archives are made by the ``zip`` and ``tar`` tools, pickles by ``pickle``,
credentials signed by the Azure SDK."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
from pathlib import Path

import pytest

from keyscope.cli import main
from keyscope.detect.rules import load_rules
from keyscope.model import ScanResult
from keyscope.scan import ScanOptions, _WorkerState, scan
from keyscope.sources.files import FilesSource
from keyscope.sources.interface import WAIT, Batch, Skipped, merged
from keyscope.sources.zipparts import SPLIT_BYTES, ZipPartUnit, ZipPieces, zip_cuts
from keyscope.unpack.interface import UnpackLimits
from tests.sdk import NOW, incident_url, new_key
from tests.test_unpack_models import _Payload

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("zip", "tar")), reason="needs the zip and tar tools"
)
CLI_NOW = ["--now", "2026-11-26T12:00:00Z", "--fail-on", "never"]


def _run(cwd: Path, *argv: str) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def big_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zip over ``SPLIT_BYTES``: incompressible blobs, secrets early, in the middle
    (inside a nested .tar.gz) and last, a hostile pickle, a symbolic link member and
    an archive comment; in a folder with a file before and after it."""
    root = tmp_path_factory.mktemp("pieces")
    src = root / "src"
    (src / "data").mkdir(parents=True)
    (src / "a-first.env").write_text("URL=" + incident_url("pieceearly", new_key()) + "\n")
    for n in range(96):
        (src / "data" / f"blob{n:03d}.bin").write_bytes(os.urandom(96 * 1024))
    nested = src / "nested"
    nested.mkdir()
    (nested / "deep.env").write_text("# deep\nURL=" + incident_url("piecemiddle", new_key()))
    _run(src, "tar", "-czf", "data/m-middle.tgz", "nested")
    shutil.rmtree(nested)
    (src / "data" / "model.pkl").write_bytes(pickle.dumps(_Payload()))
    (src / "z-last.env").write_text("\n\nURL=" + incident_url("piecelate", new_key()) + "\n")
    os.symlink("/etc/passwd", src / "link")
    folder = root / "tree"
    folder.mkdir()
    _run(src, "zip", "-q", "-r", "-y", "-0", str(folder / "m-release.zip"),
         "a-first.env", "data", "link", "z-last.env")  # fmt: skip
    _run(folder, "sh", "-c", "echo 'release build' | zip -q -z m-release.zip")
    (folder / "a.env").write_text("URL=" + incident_url("beforezip", new_key()) + "\n")
    (folder / "z.env").write_text("URL=" + incident_url("afterzip", new_key()) + "\n")
    assert (folder / "m-release.zip").stat().st_size >= SPLIT_BYTES
    return folder


def test_a_large_zip_is_cut_into_balanced_pieces(big_zip: Path) -> None:
    path = big_zip / "m-release.zip"
    cuts = zip_cuts(str(path), path.stat().st_size, 4)
    assert cuts is not None and len(cuts) == 5 and cuts[0] == 0
    assert list(cuts) == sorted(set(cuts))
    small = big_zip / "a.env"
    assert zip_cuts(str(small), SPLIT_BYTES, 4) is None  # not a zip, whatever its size
    assert zip_cuts(str(path), SPLIT_BYTES - 1, 4) is None  # too small to cut
    assert zip_cuts(str(path), path.stat().st_size, 1) is None  # one worker


def _document(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    main(["scan", "-q", *CLI_NOW, *argv])
    out = capsys.readouterr().out
    if not out.startswith("{") or "jsonl" in argv:
        return out
    doc = json.loads(out)
    if "stats" in doc:  # the time a scan took is the one thing that may differ
        doc["stats"]["seconds"] = 0
    return json.dumps(doc, indent=1)


@pytest.mark.parametrize("fmt", ["json", "text", "sarif", "jsonl"])
def test_two_workers_report_exactly_what_one_reports(
    big_zip: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
) -> None:
    handed: list[tuple[int, ...]] = []
    hand_back = ZipPieces.hand_back

    def spy(self: ZipPieces, unit: object, batch: Batch) -> None:
        handed.extend(d.cuts for d in batch.deferred)
        hand_back(self, unit, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(ZipPieces, "hand_back", spy)
    monkeypatch.chdir(big_zip.parent)
    one = _document(capsys, "-j", "1", "--format", fmt, "tree")
    two = _document(capsys, "-j", "2", "--format", fmt, "tree")
    assert len(handed) == 1 and len(handed[0]) >= 3  # the zip was read in pieces
    if fmt == "text":  # the summary line says how long the scan took
        one, two = (o.rsplit(" in ", 1)[0] for o in (one, two))
    elif fmt == "jsonl":
        one, two = ("\n".join(o.splitlines()[:-1]) for o in (one, two))
    assert one == two
    if fmt == "json":
        doc = json.loads(two)
        assert len(doc["findings"]) == 5 and len(doc["model_findings"]) == 1
        assert doc["stats"]["files"] == 3
        assert [s["path"] for s in doc["skipped"]] == ["tree/m-release.zip!/link"]


def _in_process(
    paths: list[Path], limits: UnpackLimits | None = None, kinds: list[str] | None = None
) -> list[Batch]:
    """The units of a two-worker files scan, each read and taken in at once in this
    process (the orchestrator's order), with ``limits`` for the unpacking; the kind
    of each unit goes to ``kinds``."""
    options = ScanOptions(jobs=2, now=NOW)
    state = _WorkerState(load_rules(()), "re", NOW, options)
    if limits is not None:
        state.limits = limits
    source = FilesSource(options)
    for p in paths:
        source.claim(str(p))
    skipped: list[Skipped] = []
    out = []
    for unit in source.units(skipped, 2):
        assert unit is not WAIT  # each unit was taken in as soon as it was made
        if kinds is not None:
            kinds.append(type(unit).__name__)
        out.append(source.absorb(unit, state.run(unit)))
    state.close()
    return out


def _places(batch: Batch) -> list[tuple[str, ...]]:
    return [f.location.origin for f in batch.findings]


def test_a_piece_over_its_share_of_the_budget_reads_the_file_whole(big_zip: Path) -> None:
    """With 60 members allowed, each of four pieces may unpack 15: a piece holds more,
    so the zip is read whole, and stops where one worker stops."""
    limits = UnpackLimits(members=60)
    kinds: list[str] = []
    pieces = merged(_in_process([big_zip], limits, kinds))
    # the walk, the pieces, then the file read whole (its path alone)
    assert kinds[-1] == "PathsUnit" and kinds.count("ZipPartUnit") >= 2
    one = _one_worker(big_zip, limits)
    assert any("more than 60 members" in s.reason for s in one.skipped)
    assert _places(pieces) == _places(one)  # what one worker finds, no more, no less
    assert [(s.path, s.reason) for s in pieces.skipped] == [
        (s.path, s.reason) for s in one.skipped
    ]
    assert pieces.files == one.files == 3


def _one_worker(folder: Path, limits: UnpackLimits) -> Batch:
    options = ScanOptions(jobs=1, now=NOW)
    state = _WorkerState(load_rules(()), "re", NOW, options)
    state.limits = limits
    source = FilesSource(options)
    source.claim(str(folder))
    batches = [source.absorb(u, state.run(u)) for u in source.units([], 1)]
    state.close()
    return merged(batches)


def test_pieces_within_their_share_are_spliced_where_the_zip_was_met(big_zip: Path) -> None:
    kinds: list[str] = []
    batches = _in_process([big_zip], None, kinds)
    assert "PathsUnit" not in kinds and kinds.count("OversizeUnit") == 1
    got = merged(batches)
    one = _one_worker(big_zip, UnpackLimits())
    assert _places(got) == _places(one)  # streamed in walk order, the zip's in the middle
    assert [s.path for s in got.skipped] == [s.path for s in one.skipped]
    assert [(m.path, m.where) for m in got.model_findings] == [
        (m.path, m.where) for m in one.model_findings
    ]
    assert (got.files, got.bytes) == (one.files, one.bytes)


def test_a_piece_of_a_file_that_is_no_longer_a_zip_is_handed_back(tmp_path: Path) -> None:
    path = tmp_path / "changed.zip"
    path.write_bytes(b"not a zip any more\n" * (SPLIT_BYTES // 16))
    options = ScanOptions(jobs=2, now=NOW)
    state = _WorkerState(load_rules(()), "re", NOW, options)
    batch = state.run(ZipPartUnit(str(path), 0, 10, 2))
    state.close()
    assert [(d.path, d.cuts) for d in batch.deferred] == [(str(path), ())]
    assert batch.files == 0 and not batch.findings


def test_results_a_single_file_scan(big_zip: Path) -> None:
    """A zip named on the command line is cut too (the walk hands it to a worker)."""
    result: ScanResult = scan([big_zip / "m-release.zip"], ScanOptions(jobs=2, now=NOW))
    assert len(result.findings) == 3 and result.stats.files == 1


def test_the_cut_limit_follows_the_unpack_budget() -> None:
    from keyscope.sources.zipparts import MAX_CUT_MEMBERS

    limits = UnpackLimits()
    assert limits.members == MAX_CUT_MEMBERS
    # a zip cut in pieces is too large for the ratio limit to stop it before the byte
    # limit: equal shares of bytes and members are then the whole budget story
    assert SPLIT_BYTES * limits.ratio >= limits.total_bytes
