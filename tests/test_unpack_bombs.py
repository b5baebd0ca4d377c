"""Bombs and budgets (issue 14, point 2): every exceeded budget is a skipped entry that
names the limit and what was scanned before it, the scan goes on, nothing is written
and memory stays bounded. Archives are made by the real tools (``zip``, ``gzip``,
``zstd``, ``7z``, ``tar``); the shapes no tool writes (overlapping entries, a quine)
are crafted byte by byte, as an attacker crafts them."""

from __future__ import annotations

import functools
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from keyscope import scan as scan_module
from keyscope.model import ScanResult
from keyscope.scan import ScanOptions, scan
from keyscope.unpack import archives
from keyscope.unpack.interface import UnpackLimits
from tests.sdk import NOW, incident_url, new_key

TOOLS = ("zip", "gzip", "zstd", "7z", "tar")
pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in TOOLS), reason=f"needs {', '.join(TOOLS)}"
)


def _secret(account: str = "bombacct") -> str:
    return f"URL={incident_url(account, new_key())}\n"


def _run(cwd: Path, *argv: str, stdin: bytes | None = None) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, input=stdin)


def _scan(*paths: Path, **options: object) -> ScanResult:
    return scan(list(paths), ScanOptions(jobs=1, now=NOW, **options))  # type: ignore[arg-type]


def _origins(result: ScanResult) -> list[tuple[str, ...]]:
    return sorted(loc.origin for f in result.findings for loc in f.locations)


def _limits(monkeypatch: pytest.MonkeyPatch, **limits: object) -> None:
    """Tiny limits for one test (the worker builds its UnpackLimits from the options)."""
    monkeypatch.setattr(scan_module, "UnpackLimits", functools.partial(UnpackLimits, **limits))


def _zeros(path: Path, mib: int) -> None:
    with open(path, "wb") as f:
        f.truncate(mib * 1024 * 1024)


def test_42_zip_style_nesting_stops_at_the_ratio(tmp_path: Path) -> None:
    """42.zip's shape: 16 copies of a zip of 16 copies of a zip of 16 MiB of zeros
    (4 GiB if unpacked). The secret beside the first copy is found; the budget stops
    the rest with a skipped entry (200x the outer file's size), in seconds."""
    d = tmp_path / "b"
    d.mkdir()
    _zeros(d / "zeros.bin", 16)
    _run(d, "zip", "-q", "-9", "leaf.zip", "zeros.bin")
    (d / "zeros.bin").unlink()
    for level, inner in (("l1", "leaf"), ("l2", "l1")):
        copies = [f"{inner}-{i:02}.zip" for i in range(16)]
        for c in copies:
            shutil.copy(d / f"{inner}.zip", d / c)
        _run(d, "zip", "-q", "-0", f"{level}.zip", *copies)
        for c in copies:
            (d / c).unlink()
    (d / "a.env").write_text(_secret())
    _run(d, "zip", "-q", "42.zip", "a.env", "l2.zip")
    assert (d / "42.zip").stat().st_size < 8 * 1024 * 1024
    started = time.monotonic()
    result = _scan(d / "42.zip", models=False)
    assert time.monotonic() - started < 60
    assert _origins(result) == [("a.env",)]
    stops = [s for s in result.skipped if "unpacks to more than 200x its size" in s.reason]
    assert stops and "stopped after" in stops[0].reason
    assert "42.zip!/l2.zip!/l1-" in stops[0].path


def test_nesting_past_the_depth_and_a_small_depth(tmp_path: Path) -> None:
    """The depth limit ends any chain (a quine's too): with depth 2 the third zip is a
    skipped entry, scanned as raw bytes."""
    d = tmp_path / "n"
    d.mkdir()
    (d / "a.env").write_text(_secret())
    _run(d, "zip", "-q", "-0", "z1.zip", "a.env")  # stored: the raw bytes hold the text
    _run(d, "zip", "-q", "-0", "z2.zip", "z1.zip")
    _run(d, "zip", "-q", "-0", "z3.zip", "z2.zip")
    result = _scan(d / "z3.zip", unpack_depth=2)
    [skipped] = result.skipped
    assert skipped.path.endswith("z3.zip!/z2.zip!/z1.zip")
    assert skipped.reason == "zip: nested deeper than 2 containers, not unpacked"
    assert _origins(result) == [("z2.zip", "z1.zip")]


def test_overlapping_members_a_fifield_kernel(tmp_path: Path) -> None:
    """Fifield's non-recursive bomb (full overlap, crafted by hand): 200 central
    directory entries share one deflated kernel of 8 MiB of zeros. The first is read,
    every other one is refused as overlapping, without inflating it."""
    path = tmp_path / "kernel.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("k000", bytes(8 * 1024 * 1024))
    data = path.read_bytes()
    cd = data.rfind(b"PK\x01\x02")
    end = data.rfind(b"PK\x05\x06")
    record = data[cd:end]
    records = b"".join(record.replace(b"k000", f"k{i:03}".encode()) for i in range(200))
    eocd = bytearray(data[end:])
    struct.pack_into("<HHI", eocd, 8, 200, 200, len(records))
    path.write_bytes(data[:cd] + records + bytes(eocd))
    (tmp_path / "a.env").write_text(_secret())
    started = time.monotonic()
    result = _scan(path, tmp_path / "a.env", models=False)
    assert time.monotonic() - started < 30
    assert _origins(result) == [()]  # a.env, the scan went on
    overlaps = [s for s in result.skipped if "overlaps another member" in s.reason]
    assert len(overlaps) == 199


def _peak_kib(target: Path) -> tuple[str, int]:
    """The scan of ``target`` in a fresh interpreter: its output and how much its peak
    resident memory grew during the scan (KiB)."""
    probe = (
        "import re, sys\n"
        "from pathlib import Path\n"
        "from keyscope.scan import ScanOptions, scan\n"
        "hwm = lambda: int(re.search(r'VmHWM:\\s*(\\d+)', "
        "Path('/proc/self/status').read_text()).group(1))\n"
        "scan([Path(sys.argv[1]).with_name('warm.txt')], ScanOptions(jobs=1, models=False))\n"
        "before = hwm()\n"
        "r = scan([Path(sys.argv[1])], ScanOptions(jobs=1, models=False))\n"
        "print(len(r.findings), r.skipped)\n"
        "print(hwm() - before, file=sys.stderr)\n"
    )
    (target.parent / "warm.txt").write_text("warm up\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", probe, str(target)], capture_output=True,
                          text=True, timeout=300, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout, int(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("tool", ["gzip", "zstd"])
def test_a_small_compression_bomb_costs_little_memory(tmp_path: Path, tool: str) -> None:
    """64 MiB of zeros compressed by the real tool (a few KiB): past 16 MiB a stream may
    unpack to at most 200x its size, so it is refused after 16 MiB, not 64 (peak memory
    grows by less than 24 MiB)."""
    _zeros(tmp_path / "zeros.bin", 64)
    _run(tmp_path, tool, "-q", "zeros.bin")
    bomb = tmp_path / f"zeros.bin.{'gz' if tool == 'gzip' else 'zst'}"
    assert bomb.stat().st_size < 80 * 1024
    out, grown = _peak_kib(bomb)
    kind = "gzip" if tool == "gzip" else "zstd"
    assert f"{kind} data unpacks to more than {archives.RATIO_FLOOR} bytes (200x its size)" in out
    assert grown < 24 * 1024, f"peak grew by {grown} KiB"


def test_a_7z_bomb_is_refused_before_decompressing(tmp_path: Path) -> None:
    """8 members of 32 MiB of zeros, by the real ``7z`` (256 MiB in a few KiB): the
    declared sizes exceed 200x the file, so nothing is decompressed (fast, and memory
    does not grow by the members' size)."""
    d = tmp_path / "z"
    d.mkdir()
    for i in range(8):
        _zeros(d / f"zeros{i}.bin", 32)
    _run(d, "7z", "a", "-bd", "-mx1", str(tmp_path / "bomb.7z"), ".")
    shutil.rmtree(d)
    assert (tmp_path / "bomb.7z").stat().st_size < 1024 * 1024
    started = time.monotonic()
    out, grown = _peak_kib(tmp_path / "bomb.7z")
    assert time.monotonic() - started < 60
    assert "7z archive declares 268435456 bytes" in out and "decompression bomb" in out
    assert grown < 16 * 1024, f"peak grew by {grown} KiB"


def test_a_7z_with_many_members_stops_at_the_member_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "m"
    d.mkdir()
    for i in range(30):
        (d / f"m{i:02}.txt").write_text("x\n")
    (d / "m01.txt").write_text(_secret())
    _run(d, "7z", "a", "-bd", str(tmp_path / "many.7z"), ".")
    _limits(monkeypatch, members=5)
    result = _scan(tmp_path / "many.7z")
    assert _origins(result) == [("m01.txt",)]
    [skipped] = result.skipped
    assert skipped.path.endswith("many.7z!/m05.txt")
    assert skipped.reason.startswith("more than 5 members (stopped after 5 members, ")


def test_the_total_bytes_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "t"
    d.mkdir()
    (d / "a.env").write_text(_secret())
    for i in range(4):
        (d / f"big{i}.txt").write_bytes(os.urandom(300 * 1024).hex().encode()[: 512 * 1024])
    _run(d, "tar", "-czf", str(tmp_path / "big.tar.gz"), "a.env", "big0.txt", "big1.txt",
         "big2.txt", "big3.txt")  # fmt: skip
    (tmp_path / "after.env").write_text(_secret("after"))
    _limits(monkeypatch, total_bytes=1024 * 1024)
    result = _scan(tmp_path / "big.tar.gz", tmp_path / "after.env")
    assert _origins(result) == [(), ("a.env",)]  # after.env: the scan went on
    [skipped] = result.skipped
    assert skipped.path.endswith("big.tar.gz!/big1.txt")
    assert re.fullmatch(
        r"more than 1048576 bytes unpacked \(stopped after 2 members, \d+ bytes\)", skipped.reason
    )


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "gz"])
def test_the_time_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """A time limit of 0 s, deterministic: the first member already finds the clock
    run out; the archive is a skipped entry and the other files are scanned."""
    d = tmp_path / "s"
    d.mkdir()
    (d / "a.env").write_text(_secret())
    if kind == "zip":
        _run(d, "zip", "-q", "a.zip", "a.env")
    elif kind == "tar.gz":
        _run(d, "tar", "-czf", "a.tar.gz", "a.env")
    else:
        _run(d, "gzip", "-k", "a.env")
    (d / "a.env").rename(tmp_path / "plain.env")
    _limits(monkeypatch, seconds=0.0)
    result = _scan(tmp_path)
    assert _origins(result) == [()]  # plain.env
    [skipped] = result.skipped
    assert "took more than 0 s to unpack" in skipped.reason
    where = {"zip": "a.zip!/a.env", "tar.gz": "a.tar.gz", "gz": "a.env.gz!/a.env"}[kind]
    assert skipped.path.endswith(f"/s/{where}")


def test_tar_traversal_names_and_links_touch_nothing(tmp_path: Path) -> None:
    """``..`` and absolute names, a symlink to ``/etc/passwd`` and a hard link to a
    ``..`` name, archived by GNU tar with ``-P``: names are shown as they are, links are
    skipped with their targets, and no file appears anywhere the names point."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    (tmp_path / "a" / "up.env").write_text(_secret("up"))
    absolute = tmp_path / "abs.env"
    absolute.write_text(_secret("abs"))
    (work / "sym").symlink_to("/etc/passwd")
    os.link(tmp_path / "a" / "up.env", work / "hard")
    _run(work, "tar", "-P", "-cf", str(tmp_path / "evil.tar"), "../up.env", str(absolute),
         "sym", "hard")  # fmt: skip
    (tmp_path / "a" / "up.env").unlink()
    absolute.unlink()
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    result = _scan(tmp_path / "evil.tar")
    assert _origins(result) == [("../up.env",), (str(absolute),)]
    reasons = sorted((s.path.rsplit("!/", 1)[1], s.reason) for s in result.skipped)
    assert reasons == [
        ("hard", "hard link member (to '../up.env'): not followed"),
        ("sym", "symbolic link member (to '/etc/passwd'): not followed"),
    ]
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_budget_stops_read_well_in_the_text_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from keyscope.cli import main

    for i in range(4):
        (tmp_path / f"m{i}.txt").write_text("x\n")
    _run(tmp_path, "zip", "-q", "many.zip", "m0.txt", "m1.txt", "m2.txt", "m3.txt")
    _limits(monkeypatch, members=2)
    main(["scan", "--jobs", "1", str(tmp_path / "many.zip")])
    out = capsys.readouterr().out
    assert "skipped " in out
    line = next(s for s in out.splitlines() if "skipped" in s and "many.zip!/" in s)
    assert line.strip().endswith("many.zip!/m2.txt: more than 2 members (stopped after 2 "
                                 "members, 4 bytes)")  # fmt: skip
