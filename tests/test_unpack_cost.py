"""What unpacking costs per member (found by profiling the artifacts benchmark, where a
Spark sdist holds ~100,000 class files): a member is read without extra copies, and the
worker asks the expander registry once about a member that is not a container."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from keyscope import scan as scan_module
from keyscope.scan import ScanOptions, scan
from keyscope.unpack.archives import CHUNK, read_capped
from tests.sdk import NOW, incident_url, new_key


class _Reader:
    """A stream that hands out ``data`` at most ``step`` bytes per read and records the
    objects it returned."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.pos = data, step, 0
        self.returned: list[bytes] = []

    def read(self, size: int = -1, /) -> bytes:
        n = min(size, self.step, len(self.data) - self.pos)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        self.returned.append(chunk)
        return chunk


@pytest.mark.parametrize("size", [0, 1, 4096, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5])
def test_read_capped_returns_every_byte_of_a_zip_member(tmp_path: Path, size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    with zipfile.ZipFile(tmp_path / "a.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("m.bin", data)
    with zipfile.ZipFile(tmp_path / "a.zip") as archive, archive.open("m.bin") as f:
        assert read_capped(f) == data


def test_a_member_that_fits_one_chunk_is_returned_without_a_copy() -> None:
    reader = _Reader(b"AccountKey=x\n" * 10, step=CHUNK)
    out = read_capped(reader)
    assert out is reader.returned[0]


def test_short_reads_before_the_end_lose_nothing() -> None:
    """A reader may return less than asked before its end: the rest is still read."""
    data = bytes(range(256)) * 50
    assert read_capped(_Reader(data, step=1000)) == data
    assert read_capped(_Reader(data, step=1000), cap=len(data)) == data
    assert read_capped(_Reader(data, step=1000), cap=len(data) - 1) is None
    assert read_capped(_Reader(data, step=len(data)), cap=len(data) - 1) is None


@pytest.mark.skipif(shutil.which("zip") is None, reason="needs the zip tool")
def test_the_registry_is_asked_once_per_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"f{i}.txt").write_text(f"line {i}\n")
    (src / "secret.env").write_text(f"URL={incident_url('costacct', new_key())}\n")
    subprocess.run(["zip", "-q", "-r", "../app.zip", "."], cwd=src, check=True)
    asked: list[tuple[str, ...]] = []
    real = scan_module.expander_for

    def counting(blob):  # type: ignore[no-untyped-def]
        asked.append(blob.origin)
        return real(blob)

    monkeypatch.setattr(scan_module, "expander_for", counting)
    result = scan([tmp_path / "app.zip"], ScanOptions(jobs=1, now=NOW))
    assert [loc.origin for f in result.findings for loc in f.locations] == [("secret.env",)]
    assert sorted(asked) == sorted([(), *((f"f{i}.txt",) for i in range(5)), ("secret.env",)])
