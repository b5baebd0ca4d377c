"""Large files read by workers of their own (``sources/zipparts.py``, ``ALONE_BYTES``):
a folder unit hands a large file that cannot be cut (a tar.gz) back, a unit of its
own reads it while others read the rest, and its results are put back where it was
met: ``-j 2`` reports exactly what ``-j 1`` reports. Archives made by ``tar``,
credentials signed by the Azure SDK; the heap setting (``keyscope.heap``) measured in a
fresh interpreter."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from keyscope.cli import main
from keyscope.detect.rules import load_rules
from keyscope.scan import ScanOptions, _WorkerState
from keyscope.sources.files import FilesSource
from keyscope.sources.interface import WAIT, Batch, Skipped
from keyscope.sources.zipparts import ALONE_BYTES, ZipPieces
from tests.sdk import NOW, incident_url, new_key
from tests.test_unpack_models import _Payload

pytestmark = pytest.mark.skipif(not shutil.which("tar"), reason="needs the tar tool")
CLI_NOW = ["--now", "2026-11-26T12:00:00Z", "--fail-on", "never"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder: a.env, a tar just over ALONE_BYTES (a credential after its random
    member), a larger tar.gz (random members, a credential in the middle and one
    last, a hostile pickle), z.env."""
    root = tmp_path_factory.mktemp("alone")
    src = root / "pkg"
    src.mkdir()
    for n in range(6):
        (src / f"blob{n}.bin").write_bytes(os.urandom(ALONE_BYTES // 4))
        if n == 2:
            (src / "middle.env").write_text("URL=" + incident_url("alonemiddle", new_key()) + "\n")
    (src / "z-last.env").write_text("\nURL=" + incident_url("alonelast", new_key()) + "\n")
    (src / "model.pkl").write_bytes(pickle.dumps(_Payload()))
    folder = root / "tree"
    folder.mkdir()
    subprocess.run(["tar", "-czf", str(folder / "m-big.tar.gz"), "pkg"], cwd=root, check=True)
    mid = root / "mid"
    mid.mkdir()
    (mid / "blob.bin").write_bytes(os.urandom(ALONE_BYTES))
    (mid / "x.env").write_text("URL=" + incident_url("alonemid", new_key()) + "\n")
    subprocess.run(["tar", "-cf", str(folder / "b-mid.tar"), "mid"], cwd=root, check=True)
    (folder / "a.env").write_text("URL=" + incident_url("alonebefore", new_key()) + "\n")
    (folder / "z.env").write_text("URL=" + incident_url("aloneafter", new_key()) + "\n")
    assert (folder / "m-big.tar.gz").stat().st_size >= ALONE_BYTES
    return folder


def _document(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    main(["scan", "-q", *CLI_NOW, *argv])
    doc = json.loads(capsys.readouterr().out)
    doc["stats"]["seconds"] = 0  # the one thing that may differ
    return json.dumps(doc, indent=1)


def test_two_workers_report_exactly_what_one_reports(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    handed: list[tuple[str, tuple[int, ...]]] = []
    hand_back = ZipPieces.hand_back

    def spy(self: ZipPieces, unit: object, batch: Batch) -> None:
        handed.extend((os.path.basename(d.path), d.cuts) for d in batch.deferred)
        hand_back(self, unit, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(ZipPieces, "hand_back", spy)
    monkeypatch.chdir(tree.parent)
    one = _document(capsys, "-j", "1", "--format", "json", "tree")
    two = _document(capsys, "-j", "2", "--format", "json", "tree")
    assert handed == [("b-mid.tar", ()), ("m-big.tar.gz", ())]  # units of their own
    assert one == two
    doc = json.loads(two)
    places = [(loc["path"], loc.get("origin", [])) for f in doc["findings"]
              for loc in f["locations"]]  # fmt: skip
    assert sorted(places) == [
        ("tree/a.env", []),
        ("tree/b-mid.tar", ["mid/x.env"]),
        ("tree/m-big.tar.gz", ["pkg/middle.env"]),
        ("tree/m-big.tar.gz", ["pkg/z-last.env"]),
        ("tree/z.env", []),
    ]
    assert doc["stats"]["files"] == 4
    assert [(m["path"], m["where"], m["verdict"]) for m in doc["model_findings"]] == [
        ("tree/m-big.tar.gz", ["<gzip>", "pkg/model.pkl"], "executes-code")
    ]


def test_the_large_file_is_a_unit_of_its_own_spliced_where_it_was_met(tree: Path) -> None:
    """The units of a two-worker scan, read in this process in the orchestrator's
    order: the folder's unit, then for each large file one that unpacks it (not
    judging it as a model file) and one that judges it, the largest work first; the
    folder's results come back with the archives' in walk order."""
    options = ScanOptions(jobs=2, now=NOW)
    state = _WorkerState(load_rules(()), "re", NOW, options)
    source = FilesSource(options)
    source.claim(str(tree))
    skipped: list[Skipped] = []
    kinds, batches = [], []
    for unit in source.units(skipped, 2):
        assert unit is not WAIT
        paths = getattr(unit, "paths", None)
        kinds.append((type(unit).__name__, paths and os.path.basename(paths[0])))
        batches.append(source.absorb(unit, state.run(unit)))
    state.close()
    assert kinds == [("DirUnit", None), ("PathsUnit", "m-big.tar.gz"), ("PathsUnit", "b-mid.tar"),
                     ("OversizeUnit", "m-big.tar.gz"), ("OversizeUnit", "b-mid.tar")]  # fmt: skip
    assert not any(b.findings for b in batches[:-1])  # held until all came back
    found = [(os.path.basename(f.location.path), f.location.origin) for f in batches[-1].findings]
    assert found == [("a.env", ()), ("b-mid.tar", ("mid/x.env",)),
                     ("m-big.tar.gz", ("pkg/middle.env",)),
                     ("m-big.tar.gz", ("pkg/z-last.env",)), ("z.env", ())]  # fmt: skip
    assert batches[-1].files == 4
    assert [m.where for m in batches[-1].model_findings] == [("<gzip>", "pkg/model.pkl")]


HEAP_PROBE = """
import re, sys
from pathlib import Path
from keyscope.heap import return_large_buffers
rss = lambda: int(re.search(r'VmRSS:\\s*(\\d+)', Path('/proc/self/status').read_text()).group(1))
if sys.argv[1] == "fixed":
    assert return_large_buffers()
big = b"x" * (30 << 20)  # freed: glibc would now serve buffers under 30 MiB from its heap
del big
before = rss()
member = b"y" * (24 << 20)  # a large member
pin = bytearray(4096)  # a later small allocation, above it on the heap
del member
print(rss() - before)
"""


def test_a_large_buffer_freed_goes_back_to_the_system() -> None:
    """With ``return_large_buffers`` a freed 24 MiB member leaves the process at once,
    even after a larger buffer was freed and a small allocation followed it (by
    default glibc keeps it in its heap: the workers grew by tens of MiB)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    grown = {}
    for mode in ("fixed", "default"):
        done = subprocess.run([sys.executable, "-c", HEAP_PROBE, mode], capture_output=True,
                              text=True, timeout=60, env=env, check=True)  # fmt: skip
        grown[mode] = int(done.stdout.strip()) / 1024
    assert grown["fixed"] < 4, grown
    assert grown["default"] > 16, grown  # the probe does show what the setting changes


def test_a_large_file_that_is_no_archive_is_one_unit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file over ALONE_BYTES that is no archive (a checkpoint named ``.pkl`` whose
    bytes start with no pickle opcode, judged by its name) is read whole by one unit,
    as ``-j 1`` reads it: judged by name and content together, and scanned."""
    folder = tmp_path / "tree"
    folder.mkdir()
    secret = "\nURL=" + incident_url("pklacct", new_key())
    (folder / "weights.pkl").write_bytes(b"\xfe" + os.urandom(ALONE_BYTES) + secret.encode())
    (folder / "a.env").write_text("URL=" + incident_url("pklbefore", new_key()) + "\n")
    options = ScanOptions(jobs=2, now=NOW)
    source = FilesSource(options)
    source.claim(str(folder))
    state = _WorkerState(load_rules(()), "re", NOW, options)
    kinds = []
    for unit in source.units([], 2):
        kinds.append(type(unit).__name__)
        source.absorb(unit, state.run(unit))
    state.close()
    assert kinds == ["DirUnit", "PathsUnit"]
    monkeypatch.chdir(tmp_path)
    one = _document(capsys, "-j", "1", "--format", "json", "tree")
    two = _document(capsys, "-j", "2", "--format", "json", "tree")
    assert one == two
    assert len(json.loads(two)["findings"]) == 2
