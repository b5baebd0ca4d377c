"""Large archives cost little memory (issue 14's artifacts benchmark: a 317 MB sdist):
a file from ``MAP_BYTES`` on is read as a memory map whose pages are let go as the
archive streams out of it (``sources/oversize.py``, ``containers._ViewReader``), and
the model walk reads a compressed tar as a stream (``containers._compressed_tar``),
member by member, rather than decompressing it whole. Archives made by the real
``tar`` and ``gzip``; the memory is measured in a fresh interpreter (``VmHWM``)."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from keyscope.modelfiles.containers import Anomaly, Stream, pickles_in
from keyscope.scan import ScanOptions, scan
from keyscope.sources.oversize import MAP_BYTES
from tests.sdk import NOW, incident_url, new_key

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("tar", "gzip")), reason="needs the tar and gzip tools"
)
MIB = 1024 * 1024


class _Payload:
    """Unpickling this runs ``os.system``: what a hostile checkpoint does."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo keyscope-test-payload",))


def _tgz(tmp_path: Path, random_mib: int, extra: dict[str, bytes]) -> Path:
    """A tar.gz made by ``tar`` and ``gzip -1``: ``random_mib`` MiB of random bytes in
    8 MiB members (incompressible: the archive is as large), then ``extra``."""
    src = tmp_path / "pkg"
    src.mkdir()
    for i in range(random_mib // 8):
        (src / f"blob{i}.bin").write_bytes(os.urandom(8 * MIB))
    for name, data in extra.items():
        (src / name).write_bytes(data)
    subprocess.run(["tar", "-cf", str(tmp_path / "big.tar"), "pkg"], cwd=tmp_path, check=True)
    subprocess.run(["gzip", "-1", "-f", str(tmp_path / "big.tar")], check=True)
    shutil.rmtree(src)
    return tmp_path / "big.tar.gz"


def _peak_mib(target: Path) -> tuple[str, float]:
    """A scan (models judged too) of ``target`` in a fresh interpreter: its findings'
    member chains, and by how much its peak resident memory grew (MiB)."""
    probe = (
        "import re, sys\n"
        "from pathlib import Path\n"
        "from keyscope.scan import ScanOptions, scan\n"
        "hwm = lambda: int(re.search(r'VmHWM:\\s*(\\d+)', "
        "Path('/proc/self/status').read_text()).group(1))\n"
        "scan([Path(sys.argv[1]).with_name('warm.txt')], ScanOptions(jobs=1))\n"
        "before = hwm()\n"
        "r = scan([Path(sys.argv[1])], ScanOptions(jobs=1, max_file_size=1 << 30))\n"
        "print([loc.origin for f in r.findings for loc in f.locations])\n"
        "print([(m.verdict, m.where) for m in r.model_findings])\n"
        "print(hwm() - before, file=sys.stderr)\n"
    )
    (target.parent / "warm.txt").write_text("warm up\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", probe, str(target)], capture_output=True,
                          text=True, timeout=600, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout, int(done.stderr.strip().splitlines()[-1]) / 1024


def test_a_large_tar_gz_is_scanned_without_holding_it(tmp_path: Path) -> None:
    """A 72 MiB tar.gz (over MAP_BYTES) with a credential and a hostile pickle after
    the random members: both found at their members, while the peak grows by far less
    than the archive (read whole, then decompressed whole by the model walk, it grew
    by more than twice its size)."""
    secret = f"URL={incident_url('bigacct', new_key())}\n".encode()
    evil = pickle.dumps(_Payload())
    big = _tgz(tmp_path, 72, {"settings.env": secret, "model.pkl": evil})
    assert big.stat().st_size > MAP_BYTES
    out, grown = _peak_mib(big)
    assert "('big.tar.gz', 'pkg/settings.env')" not in out  # origin is the member chain
    assert "[('pkg/settings.env',)]" in out
    assert "('executes-code', ('<gzip>', 'pkg/model.pkl'))" in out
    assert grown < 64, f"peak grew by {grown:.0f} MiB"  # 180 MiB before


@pytest.mark.parametrize("head", [b"", b"\x1f\x8b\x08", b"PK\x05\x06"])
def test_a_large_file_no_expander_claims_is_still_scanned_whole(
    tmp_path: Path, head: bytes
) -> None:
    """A text file over MAP_BYTES is read as bytes, and one that only starts like an
    archive is mapped, then scanned as bytes: the credential at its end is found on
    its line (no expander's check breaks on a map)."""
    path = tmp_path / "huge.log"
    line = b"x" * 1023 + b"\n"
    lines = MAP_BYTES // len(line) + 16
    with open(path, "wb") as f:
        f.write(head + line * lines)
        f.write(f"URL={incident_url('logacct', new_key())}\n".encode())
    result = scan([path], ScanOptions(jobs=1, now=NOW, max_file_size=1 << 30))
    assert [(loc.origin, loc.line) for f in result.findings for loc in f.locations] == [
        ((), lines + 1)
    ]


def test_a_large_notebook_is_read_as_bytes(tmp_path: Path) -> None:
    """A notebook over MAP_BYTES is no archive: read as bytes, its cells unpacked."""
    secret = f"URL={incident_url('nbacct', new_key())}"
    lines = ["x = 1  # " + "y" * 50 + "\n"] * (MAP_BYTES // 60)
    cells = [{"cell_type": "code", "source": lines, "metadata": {}, "outputs": [],
              "execution_count": None},
             {"cell_type": "markdown", "source": [secret], "metadata": {}}]  # fmt: skip
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}
    path = tmp_path / "big.ipynb"
    path.write_text(json.dumps(nb))
    assert path.stat().st_size > MAP_BYTES
    result = scan([path], ScanOptions(jobs=1, now=NOW, max_file_size=1 << 30))
    assert not result.skipped
    assert [loc.origin for f in result.findings for loc in f.locations] == [("cell 2",)]


def test_the_model_walk_streams_a_compressed_tar(tmp_path: Path) -> None:
    """``pickles_in`` over a 64 MiB tar.gz: the pickle behind the random members is
    found at ``<gzip>`` then its member, and the walk never holds the decompressed tar
    (whole, Python's peak grew by more than 64 MiB; tarfile copies an 8 MiB member
    about three times as it reads it)."""
    data = _tgz(tmp_path, 64, {"model.pkl": pickle.dumps(_Payload())}).read_bytes()
    streams = []
    tracemalloc.start()
    try:
        for item in pickles_in(data):  # each item dropped once seen, as the analyzer does
            # random bytes may start with a pickle opcode: weak candidates, not this one
            if isinstance(item, Stream) and not item.weak:
                streams.append(item.where)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert streams == [("<gzip>", "pkg/model.pkl")]
    assert peak < 48 * MIB, f"peak {peak / MIB:.0f} MiB"


def test_a_compressed_tar_past_its_limit_is_still_a_bomb() -> None:
    """Streamed or not, a compressed tar that expands past the file's limit is the
    decompression bomb it was (the tar's members before the limit were read)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 80 * MIB
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    items = list(pickles_in(gzip.compress(buf.getvalue(), 9)))
    bombs = [i for i in items if isinstance(i, Anomaly) and "decompression bomb" in i.detail]
    assert [b.where for b in bombs if b.detail.startswith("gzip data expands")] == [()]


@pytest.mark.skipif(not shutil.which("zip"), reason="needs the zip tool")
def test_the_model_walk_inflates_a_large_zip_member_once(tmp_path: Path) -> None:
    """A 32 MiB deflated member (a .so in a wheel, a jar in an sdist): the walk holds
    its content once, never its compressed bytes copied nor its output joined
    (Python's peak grew by some 80 MiB); the pickle after it is still found."""
    (tmp_path / "lib.so").write_text(os.urandom(16 * MIB).hex())
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(_Payload()))
    subprocess.run(["zip", "-q", "-1", "w.whl", "lib.so", "model.pkl"], cwd=tmp_path, check=True)
    data = (tmp_path / "w.whl").read_bytes()
    assert len(data) > 12 * MIB  # deflated, not stored
    streams = []
    tracemalloc.start()
    try:
        for item in pickles_in(data):
            if isinstance(item, Stream) and not item.weak:
                streams.append(item.where)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert streams == [("model.pkl",)]
    assert peak < 44 * MIB, f"peak {peak / MIB:.0f} MiB"
