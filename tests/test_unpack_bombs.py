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
import zlib
from pathlib import Path

import pytest

from keyscope import scan as scan_module
from keyscope.model import ScanResult
from keyscope.scan import ScanOptions, scan
from keyscope.unpack import archives
from keyscope.unpack.interface import UnpackLimits
from tests.sdk import NOW, incident_url, new_key

TOOLS = ("zip", "unzip", "gzip", "zstd", "7z", "tar")
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


def _bits_to_bytes(bits: list[int]) -> bytes:
    return bytes(sum(b << i for i, b in enumerate(bits[k : k + 8])) for k in range(0, len(bits), 8))


def _huffman(bits: list[int], code: int, n: int) -> None:  # Huffman codes: MSB first
    bits += [(code >> (n - 1 - i)) & 1 for i in range(n)]


def _number(bits: list[int], value: int, n: int) -> None:  # header and extra bits: LSB first
    bits += [(value >> i) & 1 for i in range(n)]


def _copy(bits: list[int], length: int, distance: int) -> None:
    """One length/distance pair in deflate's fixed Huffman code (RFC 1951 3.2.5-6)."""
    lengths = [(257 + i, 3 + i, 0) for i in range(8)]
    for extra in range(1, 6):
        for _ in range(4):
            code, base, bits_before = lengths[-1]
            lengths.append((code + 1, base + (1 << bits_before), extra))
    code, base, extra = [t for t in lengths if t[1] <= length][-1]
    if code < 280:
        _huffman(bits, code - 256, 7)
    else:
        _huffman(bits, 0b11000000 + code - 280, 8)
    _number(bits, length - base, extra)
    distances, start = [], 1
    for dcode in range(30):
        dextra = max(0, dcode // 2 - 1)
        distances.append((dcode, start, dextra))
        start += 1 << dextra
    dcode, start, dextra = [t for t in distances if t[1] <= distance][-1]
    _huffman(bits, dcode, 5)
    _number(bits, distance - start, dextra)


UNIT = 10  # every op of the quine program is 10 bytes


def _literal(n: int) -> bytes:
    """Op "L n": output the next n bytes as they are. An empty stored block then a
    stored block header (10 bytes)."""
    return b"\x00\x00\x00\xff\xff\x00" + struct.pack("<HH", n, n ^ 0xFFFF)


def _repeat(n: int, final: bool = False) -> bytes:
    """Op "R n": output the last n bytes again. A fixed-Huffman block copying n bytes
    from n back (in one or two pairs, empty fixed blocks as filler) and an empty stored
    block that pads it to 10 bytes."""
    for first in [n, *range(3, n - 2)]:
        parts = [first] if first == n else [first, n - first]
        for empties in range(3):
            bits: list[int] = []
            _number(bits, 0b010, 3)  # not final, fixed Huffman
            for part in parts:
                _copy(bits, part, n)
            _huffman(bits, 0, 7)  # end of block
            for _ in range(empties):
                _number(bits, 0b010, 3)
                _huffman(bits, 0, 7)
            _number(bits, int(final), 3)  # stored, padded to a byte
            bits += [0] * (-len(bits) % 8)
            if len(bits) // 8 + 4 == UNIT and max(parts) <= 258:
                return _bits_to_bytes(bits) + b"\x00\x00\xff\xff"
    raise AssertionError(f"no 10-byte repeat of {n}")


def _zip_quine(name: bytes = b"r/r.zip") -> bytes:
    """A zip whose one member is the zip itself, byte for byte, CRC included (Russ
    Cox's r.zip construction, "Zip Files All The Way Down", 2010). No tool writes one:
    it is crafted here as an attacker would. The deflate data is Cox's Lempel-Ziv quine
    program for a prefix P (the local header) and a suffix S (central directory and
    end record); the CRC, which appears inside the data it covers, is the fixed point
    of an affine map over GF(2), solved by elimination."""
    p, s = 30 + len(name), 46 + len(name) + 22

    def deflate(prefix: bytes, suffix: bytes) -> bytes:
        lp, rp, ls = _literal(p + UNIT), _repeat(p + UNIT), _literal(s + UNIT)
        rs = _repeat(s + UNIT, final=True)
        l0, l1, l4, r4 = _literal(0), _literal(UNIT), _literal(4 * UNIT), _repeat(4 * UNIT)
        program = [lp, prefix, lp, rp, l1, rp, l1, l1, l4, rp, l1, l1, l4, r4, l4, r4, l4, r4]
        program += [l4, r4, l4, r4, l0, l0, ls, r4, l0, l0, ls, rs, suffix, rs]
        return b"".join(program)

    size = len(deflate(bytes(p), bytes(s)))
    total = p + size + s

    def build(crc: int) -> bytes:
        head = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, size, total,
                           len(name), 0) + name  # fmt: skip
        tail = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, size,
                           total, len(name), 0, 0, 0, 0, 0, 0) + name  # fmt: skip
        tail += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, 46 + len(name), p + size, 0)
        return head + deflate(head, tail) + tail

    base = zlib.crc32(build(0))
    columns = [zlib.crc32(build(1 << i)) ^ base for i in range(32)]
    # solve (A + I) x = base, A's columns being what each bit of x changes
    rows = [[sum((((columns[c] >> r) & 1) ^ (r == c)) << c for c in range(32)), (base >> r) & 1]
            for r in range(32)]  # fmt: skip
    pivots: list[int] = []
    for c in range(32):
        found = next((i for i in range(len(pivots), 32) if (rows[i][0] >> c) & 1), None)
        if found is None:
            continue
        k = len(pivots)
        rows[k], rows[found] = rows[found], rows[k]
        for i in range(32):
            if i != k and (rows[i][0] >> c) & 1:
                rows[i][0] ^= rows[k][0]
                rows[i][1] ^= rows[k][1]
        pivots.append(c)
    crc = sum(rows[k][1] << c for k, c in enumerate(pivots))
    return build(crc)


def test_a_zip_quine_is_unpacked_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """r.zip contains itself: a member equal to its archive is a skipped entry (not
    unpacked again); without that check the depth limit still ends it."""
    path = tmp_path / "r.zip"
    path.write_bytes(_zip_quine())
    with zipfile.ZipFile(path) as z:  # a valid zip, CRC and all, holding itself
        assert z.read("r/r.zip") == path.read_bytes()
    _run(tmp_path, "unzip", "-tq", "r.zip")
    result = _scan(path)
    [skipped] = result.skipped
    assert skipped.path.endswith("r.zip!/r/r.zip")
    assert skipped.reason == "zip: the member is the archive itself (a quine), not unpacked again"
    monkeypatch.setattr(scan_module, "_same", lambda a, b: False)
    [skipped] = _scan(path).skipped
    assert skipped.path.endswith("r.zip" + "!/r/r.zip" * 8)
    assert skipped.reason == "zip: nested deeper than 8 containers, not unpacked"


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


@pytest.mark.parametrize(("tool", "honest"), [("gzip", True), ("gzip", False),
                                              ("zstd", True), ("zstd", False)])
def test_a_small_compression_bomb_costs_little_memory(
    tmp_path: Path, tool: str, honest: bool
) -> None:
    """64 MiB of zeros compressed by the real tool (a few KiB). As the tool wrote it
    (gzip's ISIZE trailer, zstd's frame content size) it is refused before anything is
    unpacked; with the size hidden (the trailer rewritten, or zstd fed from a pipe) it
    is read to 16 MiB and refused there, past 16 MiB a stream may unpack to at most
    200x its size (it was read to 64 MiB before)."""
    _zeros(tmp_path / "zeros.bin", 64)
    bomb = tmp_path / f"zeros.bin.{'gz' if tool == 'gzip' else 'zst'}"
    if tool == "zstd" and not honest:
        with open(tmp_path / "zeros.bin", "rb") as src, open(bomb, "wb") as dst:
            subprocess.run(["zstd", "-q", "-c"], stdin=src, stdout=dst, check=True)
    else:
        _run(tmp_path, tool, "-q", "zeros.bin")
    if tool == "gzip" and not honest:
        bomb.write_bytes(bomb.read_bytes()[:-4] + struct.pack("<I", 100))
    (tmp_path / "zeros.bin").unlink(missing_ok=True)
    assert bomb.stat().st_size < 80 * 1024
    out, grown = _peak_kib(bomb)
    reason = f"{tool} data unpacks to more than {archives.RATIO_FLOOR} bytes (200x its size)"
    said = ", as it says itself (67108864 bytes)" if honest else ""
    assert f"{reason}{said}: not scanned" in out
    limit = 8 if honest else 24
    assert grown < limit * 1024, f"peak grew by {grown} KiB"


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


def test_a_7z_absolute_member_name_is_skipped_with_the_reason(tmp_path: Path) -> None:
    """``7z -spf`` stores a member under its absolute path: py7zr will not read such a
    name, so it is a skipped entry under the name as stored; the other members are read."""
    (tmp_path / "abs.env").write_text(_secret("abs"))
    (tmp_path / "rel.env").write_text(_secret("rel"))
    _run(tmp_path, "7z", "a", "-bd", "-spf", "t.7z", str(tmp_path / "abs.env"))
    _run(tmp_path, "7z", "a", "-bd", "t.7z", "rel.env")
    result = _scan(tmp_path / "t.7z")
    assert _origins(result) == [("rel.env",)]
    [skipped] = result.skipped
    assert skipped.path.endswith(f"t.7z!/{tmp_path / 'abs.env'}")
    assert "absolute or climbs out with '..'" in skipped.reason


def test_a_tar_of_many_members_keeps_no_list_of_them(tmp_path: Path) -> None:
    """tarfile remembers every header it reads (tens of MiB for 100 000 members, the
    member budget): the expander drops them as it goes. 20 000 empty members, written
    by Python's tarfile, cost well under 2 MiB (they cost 9 MiB)."""
    import io
    import tarfile
    import tracemalloc

    from keyscope.sources.interface import Blob
    from keyscope.unpack.archives import TarExpander
    from keyscope.unpack.interface import Budget

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for i in range(20_000):
            tar.addfile(tarfile.TarInfo(f"d/f{i}.txt"), io.BytesIO(b""))
    blob = Blob("many.tar", out.getvalue())
    tracemalloc.start()
    try:
        count = sum(1 for _ in TarExpander().expand(blob, Budget(UnpackLimits(), len(blob.data))))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes"
