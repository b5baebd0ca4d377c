"""Hostile containers and structured model files (issues 11 and 12).

One small file must never end a scan: what cannot be read is a low "not scanned"
finding and the scan goes on. Budgets hold for every format together: bytes
produced, ratio, members, overlapping zip members, tar sparse maps. Encrypted zip
members are "not scannable", never CRC anomalies. Archives are made with the real
tools (``zip -P``, py7zr, tarfile, torch.save); only what no tool writes (a GNU
sparse header, overlapping central-directory entries) is laid out by hand.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from keyscope.cli import main
from keyscope.model import ModelFinding, Severity
from keyscope.modelfiles.analyzer import analyze_model
from keyscope.modelfiles.containers import (
    MAX_MEMBERS,
    MAX_OVERLAPS,
    MAX_REFUSED,
    MAX_SPARSE,
)
from tests.test_model_files import tar_of

# os.system("id") as protocol 4 writes it (never unpickled: only read as bytes)
PAYLOAD = (
    b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00"
    + b"\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R."
)


def worst(findings: list[ModelFinding]) -> Severity:
    return max((f.severity for f in findings), default=Severity.INFO)


def text(findings: list[ModelFinding]) -> str:
    return "\n".join(f.sentence for f in findings)


def torch_bytes(obj: object = None) -> bytes:
    buf = io.BytesIO()
    torch.save(obj if obj is not None else {"w": torch.zeros(3)}, buf)
    return buf.getvalue()


def judge_in_child(data: bytes, seconds: float = 30) -> list[dict[str, str]]:
    """analyze_model in a child process with a time and memory limit, so that a
    hang or a memory blow-up fails the test instead of the machine."""
    code = (
        "import json, resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, 3 * 1024**3))\n"
        "from keyscope.modelfiles.analyzer import analyze_model\n"
        "out = analyze_model('bomb', sys.stdin.buffer.read())\n"
        "print(json.dumps([{'severity': f.severity.label, 'sentence': f.sentence}"
        " for f in out]))\n"
    )
    start = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], input=data, capture_output=True, timeout=seconds
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"analysis did not finish within {seconds} s")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert time.monotonic() - start < seconds
    result: list[dict[str, str]] = json.loads(done.stdout)
    return result


# --- one hostile file: a low finding, never an exception ------------------------------


def _safetensors_list_dtype() -> bytes:
    header = json.dumps({"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}})
    return struct.pack("<Q", len(header)) + header.encode() + b"\0" * 4


def _npy_list_key() -> bytes:
    header = b"{['descr']: '<f4', 'fortran_order': False, 'shape': (1,)}"
    header += b" " * (63 - len(header)) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 4


def _gguf_huge_array() -> bytes:
    """An array of 2**63 uint32 values, then the chat template the reader looks for."""

    def s(value: str) -> bytes:
        return struct.pack("<Q", len(value)) + value.encode()

    kv = s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 4, 2**63)
    kv += s("tokenizer.chat_template") + struct.pack("<I", 8) + s("{{ messages }}")
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 2) + kv


def _keras(config: bytes = b'{"class_name": "Sequential", "config": {"layers": []}}') -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.6.0"}))
        z.writestr("config.json", config)
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    return buf.getvalue()


def _central(data: bytes, name: bytes) -> int:
    cd = data.find(b"PK\x01\x02")
    while data[cd + 46 : cd + 46 + len(name)] != name:
        cd = data.find(b"PK\x01\x02", cd + 1)
    return cd


def _keras_corrupt_deflate() -> bytes:
    data = bytearray(_keras())
    start = data.find(b"config.json") + len("config.json")  # the local header's name
    data[start : start + 4] = b"\xff\xff\xff\xff"  # zlib.error: invalid block type
    return bytes(data)


def _keras_unknown_method() -> bytes:
    data = bytearray(_keras())
    cd = _central(bytes(data), b"config.json")
    data[cd + 10 : cd + 12] = struct.pack("<H", 99)  # zipfile: NotImplementedError
    return bytes(data)


def _keras_truncated_member() -> bytes:
    big = json.dumps({"class_name": "Sequential", "pad": list(range(3000))}).encode()
    data = bytearray(_keras(big))
    cd = _central(bytes(data), b"config.json")
    (csize,) = struct.unpack("<I", data[cd + 20 : cd + 24])
    data[cd + 20 : cd + 24] = struct.pack("<I", csize // 2)  # zipfile: EOFError
    return bytes(data)


HOSTILE = {
    "list-dtype.safetensors": _safetensors_list_dtype,
    "list-key.npy": _npy_list_key,
    "huge-array.gguf": _gguf_huge_array,
    "corrupt.keras": _keras_corrupt_deflate,
    "method99.keras": _keras_unknown_method,
    "truncated.keras": _keras_truncated_member,
}


def test_the_hostile_inputs_break_the_loaders_readers() -> None:
    """The inputs are what the issue says: Python's own readers raise on them."""
    for name in ("corrupt.keras", "method99.keras", "truncated.keras"):
        with (
            zipfile.ZipFile(io.BytesIO(HOSTILE[name]())) as z,
            pytest.raises((zlib.error, NotImplementedError, EOFError, zipfile.BadZipFile)),
        ):
            z.read("config.json")
    with pytest.raises((ValueError, TypeError)):
        np.load(io.BytesIO(_npy_list_key()))


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_file_is_a_low_finding_not_a_crash(name: str) -> None:
    findings = analyze_model(name, HOSTILE[name]())
    assert findings, "what cannot be read is reported, never silently clean"
    assert worst(findings) <= Severity.LOW, text(findings)


def test_encrypted_keras_config_is_not_scannable(tmp_path: Path) -> None:
    zip_tool = _zip_tool()
    for name, body in (
        ("metadata.json", b"{}"),
        ("config.json", b'{"class_name": "Lambda"}'),
        ("model.weights.h5", b"\0"),
    ):
        (tmp_path / name).write_bytes(body)
    subprocess.run(
        [zip_tool, "-q", "-P", "pw", "m.keras", "metadata.json", "config.json", "model.weights.h5"],
        cwd=tmp_path,
        check=True,
    )
    with zipfile.ZipFile(tmp_path / "m.keras") as z, pytest.raises(RuntimeError):
        z.read("config.json")  # what Keras would hit
    findings = analyze_model("m.keras", (tmp_path / "m.keras").read_bytes())
    assert worst(findings) == Severity.LOW and "encrypted" in text(findings)


def _zip_tool() -> str:
    tool = shutil.which("zip")
    if tool is None:
        pytest.skip("the zip tool is not installed (apt-get install zip)")
    return tool


def test_one_hostile_file_never_ends_a_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every hostile file is reported, and the payload after them is still found,
    in ``keyscope scan``, ``keyscope models`` and in git history."""
    for name, make in HOSTILE.items():
        (tmp_path / name).write_bytes(make())
    (tmp_path / "zz-evil.pkl").write_bytes(PAYLOAD)
    for command in ("scan", "models"):
        assert main([command, "-j", "1", "--format", "json", str(tmp_path)]) == 1
        report = json.loads(capsys.readouterr().out)
        by_file = {Path(m["path"]).name for m in report["model_findings"]}
        assert set(HOSTILE) <= by_file
        assert any(
            m["verdict"] == "executes-code" and m["path"].endswith("zz-evil.pkl")
            for m in report["model_findings"]
        )
    repo = tmp_path / "repo"
    repo.mkdir()
    for name, make in HOSTILE.items():
        (repo / name).write_bytes(make())
    git = ["git", "-C", str(repo), "-c", "user.name=T", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "models"], check=True)
    subprocess.run([*git, "rm", "-q", *HOSTILE], check=True)
    (repo / "evil.pkl").write_bytes(PAYLOAD)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "swap"], check=True)
    assert main(["scan", "-j", "1", "--format", "json", str(repo)]) == 1
    report = json.loads(capsys.readouterr().out)
    # Blobs of deleted files are named by their object id in git history.
    blobs = {m["path"] for m in report["model_findings"] if m["severity"] == "low"}
    assert len(blobs) >= len(HOSTILE), blobs
    assert any(m["verdict"] == "executes-code" for m in report["model_findings"])


# --- budgets that hold for every format -----------------------------------------------


def _octal(n: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, n)


def _gnu_sparse_member(name: str, real_size: int) -> bytes:
    """A GNU sparse member ('S'): one stored byte at the end of ``real_size`` bytes of
    holes. tarfile reads it as a file of ``real_size`` bytes, zeros almost all."""
    h = bytearray(512)
    h[: len(name)] = name.encode()
    h[100:108] = _octal(0o644, 8)
    h[108:116] = h[116:124] = _octal(0, 8)
    h[124:136] = _octal(1, 12)  # bytes stored
    h[136:148] = _octal(0, 12)
    h[156:157] = b"S"
    h[257:265] = b"ustar  \0"
    h[386:398] = _octal(real_size - 1, 12)  # sparse map: one byte at the end
    h[398:410] = _octal(1, 12)
    h[483:495] = _octal(real_size, 12)
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h) + b"x" + b"\0" * 511


def test_gnu_sparse_tar_members_are_bounded() -> None:
    """A few hundred bytes of .tar.gz declaring 5 x 6 GiB of sparse members: refused
    from their headers, in milliseconds (it took 52 s and 6.3 GB)."""
    tar = b"".join(_gnu_sparse_member(f"m{i}.pkl", 6 * 1024**3) for i in range(5))
    data = gzip.compress(tar + b"\0" * 1024, 9)
    assert len(data) < 500
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        assert t.getmembers()[0].size == 6 * 1024**3  # what tarfile would produce
    findings = judge_in_child(data, seconds=20)
    assert len(findings) == 5
    assert all(f["severity"] == "low" and "not scanned" in f["sentence"] for f in findings)
    # 10,000 members of 60 MiB each ("would take hours"): the first ones are listed,
    # then one note ends the archive.
    tar = b"".join(_gnu_sparse_member(f"m{i}.pkl", 60 * 1024**2) for i in range(10_000))
    findings = judge_in_child(gzip.compress(tar + b"\0" * 1024), seconds=20)
    assert len(findings) == MAX_REFUSED + 1 and "rest of the archive" in findings[-1]["sentence"]


def _gnu_sparse_with_map(name: str, chunks: int) -> bytes:
    """A GNU sparse member whose map lists ``chunks`` one-byte chunks (4 in the
    header, 21 in each extension block), for the sparse-map budget."""
    entries = [(2 * k + 1, 1) for k in range(chunks)]
    h = bytearray(_gnu_sparse_member(name, 2 * chunks + 1)[:512])
    for k, (offset, size) in enumerate(entries[:4]):
        h[386 + 24 * k : 398 + 24 * k] = _octal(offset, 12)
        h[398 + 24 * k : 410 + 24 * k] = _octal(size, 12)
    h[124:136] = _octal(chunks, 12)  # bytes stored
    h[482] = 1  # extension blocks follow
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    blocks = b""
    rest = entries[4:]
    for start in range(0, len(rest), 21):
        block = bytearray(512)
        for k, (offset, size) in enumerate(rest[start : start + 21]):
            block[24 * k : 24 * k + 12] = _octal(offset, 12)
            block[24 * k + 12 : 24 * k + 24] = _octal(size, 12)
        block[504] = 1 if start + 21 < len(rest) else 0
        blocks += bytes(block)
    data = b"x" * chunks
    return bytes(h) + blocks + data + b"\0" * (-len(data) % 512)


def test_long_sparse_maps_are_refused() -> None:
    tar = _gnu_sparse_with_map("m.pkl", MAX_SPARSE + 1) + b"\0" * 1024
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        (member,) = t.getmembers()
        assert len(member.sparse) > MAX_SPARSE
    (f,) = analyze_model("m.tar", tar)
    assert "map entries: not scanned" in f.sentence and f.severity == Severity.LOW


def _overlapping_zip(inner: bytes, copies: int) -> bytes:
    """One stored member, and a central directory pointing ``copies`` times at it."""
    crc = zlib.crc32(inner)
    first = b"m00000.zip"
    local = b"PK\x03\x04" + struct.pack(
        "<HHHHHIIIHH", 20, 0, 0, 0, 0, crc, len(inner), len(inner), len(first), 0
    )
    local += first + inner
    cd = bytearray()
    for i in range(copies):
        name = b"m%05d.zip" % i
        cd += b"PK\x01\x02" + struct.pack(
            "<HHHHHHIIIHHHHHII",
            20,
            20,
            0,
            0,
            0,
            0,
            crc,
            len(inner),
            len(inner),
            len(name),
            0,
            0,
            0,
            0,
            0,
            0,
        )
        cd += name
    eocd = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, copies, copies, len(cd), len(local), 0)
    return local + bytes(cd) + eocd


def test_zip_members_pointing_at_one_inner_zip_are_read_once() -> None:
    """A ~500 KB zip whose central directory points 9,000 times at one stored inner
    checkpoint (it ran for minutes, re-scanning the same bytes each time)."""
    data = _overlapping_zip(torch_bytes(), 9_000)
    assert len(zipfile.ZipFile(io.BytesIO(data)).namelist()) == 9_000
    findings = judge_in_child(data, seconds=20)
    assert all(f["severity"] == "low" for f in findings), findings
    assert any("8999 zip members point at the data" in f["sentence"] for f in findings)


def test_partly_overlapping_zip_members_are_bounded() -> None:
    """Members whose data starts inside another's (the overlapping-file zip bomb):
    at most MAX_OVERLAPS are read, the rest are reported as not scanned."""
    n = MAX_OVERLAPS + 50
    names = [b"f%04d" % i for i in range(n)]
    tail = PAYLOAD * 20
    sizes = [0] * n
    size = len(tail)
    for i in range(n - 1, -1, -1):  # each member's data is every later member
        sizes[i] = size
        size += 30 + len(names[i])
    body = bytearray()
    offsets = []
    for i in range(n):
        offsets.append(len(body))
        body += b"PK\x03\x04" + struct.pack(
            "<HHHHHIIIHH", 20, 0, 0, 0, 0, 0, sizes[i], sizes[i], len(names[i]), 0
        )
        body += names[i]
    body += tail
    cd = bytearray()
    for i in range(n):
        cd += b"PK\x01\x02" + struct.pack(
            "<HHHHHHIIIHHHHHII",
            20,
            20,
            0,
            0,
            0,
            0,
            0,
            sizes[i],
            sizes[i],
            len(names[i]),
            0,
            0,
            0,
            0,
            0,
            offsets[i],
        )
        cd += names[i]
    data = bytes(body) + bytes(cd)
    data += b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, n, n, len(cd), len(body), 0)
    findings = judge_in_child(data, seconds=20)
    assert any(f"{n - 1} zip members overlap" in f["sentence"] for f in findings), findings
    assert any(f"{n - 1 - MAX_OVERLAPS} of them" in f["sentence"] for f in findings)


def test_members_are_counted_across_nested_archives() -> None:
    """MAX_MEMBERS holds for the file, not per container: 120 inner zips of 100
    members each (12,000 in all) end in one "rest not scanned" note."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        for i in range(100):
            z.writestr(f"n{i}.txt", b"x")
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as z:
        for i in range(120):
            z.writestr(f"inner{i}.zip", inner.getvalue())
    findings = judge_in_child(outer.getvalue(), seconds=30)
    notes = [f for f in findings if f"more than {MAX_MEMBERS} members" in f["sentence"]]
    assert len(notes) == 1 and notes[0]["severity"] == "low"


# --- issue 12: nothing silently skipped; encrypted zips -------------------------------


def test_7z_member_that_is_not_a_regular_file_is_still_scanned() -> None:
    """A member whose attributes carry Unix mode bits without S_IFREG: py7zr says
    is_file False, 7-Zip still extracts it as a file."""
    py7zr = pytest.importorskip("py7zr")
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        archive.writestr(PAYLOAD, "model.pkl")
        archive.header.files_info.files[-1]["attributes"] = 0x8000 | (0o644 << 16)
    with py7zr.SevenZipFile(io.BytesIO(buf.getvalue())) as archive:
        (member,) = archive.list()
        assert not member.is_file and not member.is_directory
    findings = analyze_model("m.7z", buf.getvalue())
    assert any(f.verdict == "executes-code" for f in findings), text(findings)


def test_7z_member_that_is_not_extracted_is_reported() -> None:
    """A directory entry that carries data is never extracted: it is reported."""
    py7zr = pytest.importorskip("py7zr")
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        archive.writestr(PAYLOAD, "model.pkl")
        archive.header.files_info.files[-1]["attributes"] = 0x10  # FILE_ATTRIBUTE_DIRECTORY
    findings = analyze_model("m.7z", buf.getvalue())
    assert "not scanned" in text(findings) and worst(findings) == Severity.LOW


def test_many_unreadable_zip_members_end_in_one_note(tmp_path: Path) -> None:
    """500 encrypted members (made by the zip tool): 20 are listed, then one note."""
    zip_tool = _zip_tool()
    for i in range(500):
        (tmp_path / f"n{i}.txt").write_text(f"note {i}\n")
    names = [f"n{i}.txt" for i in range(500)]
    subprocess.run([zip_tool, "-q", "-P", "pw", "n.zip", *names], cwd=tmp_path, check=True)
    findings = analyze_model("n.zip", (tmp_path / "n.zip").read_bytes())
    assert len(findings) == MAX_REFUSED + 1 and "rest of the archive" in findings[-1].sentence


def test_encrypted_zip_of_a_text_file_is_low_and_not_a_crc_anomaly(tmp_path: Path) -> None:
    zip_tool = _zip_tool()
    (tmp_path / "notes.txt").write_text("meeting notes\n" * 20)
    subprocess.run([zip_tool, "-q", "-P", "pw", "n.zip", "notes.txt"], cwd=tmp_path, check=True)
    findings = analyze_model("n.zip", (tmp_path / "n.zip").read_bytes())
    assert worst(findings) == Severity.LOW, text(findings)
    assert "encrypted" in text(findings) and "CRC" not in text(findings)


def test_encrypted_checkpoint_is_not_scannable_not_high(tmp_path: Path) -> None:
    zip_tool = _zip_tool()
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "data.pkl").write_bytes(PAYLOAD)
    subprocess.run(
        [zip_tool, "-q", "-0", "-P", "pw", "m.pt", "archive/data.pkl"], cwd=tmp_path, check=True
    )
    findings = analyze_model("m.pt", (tmp_path / "m.pt").read_bytes())
    assert worst(findings) == Severity.LOW and "encrypted" in text(findings)


def test_encryption_flag_on_a_plain_member_is_still_a_differential() -> None:
    """CVE-2025-1945: the flag is set but the bytes are plain. Older PyTorch ignores
    the flag and loads the pickle; the payload is found and the flag is high."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", PAYLOAD)
    data = bytearray(buf.getvalue())
    data[6:8] = struct.pack("<H", 1)
    cd = _central(bytes(data), b"archive/data.pkl")
    data[cd + 8 : cd + 10] = struct.pack("<H", 1)
    findings = analyze_model("m.pt", bytes(data))
    assert any(f.verdict == "executes-code" for f in findings), text(findings)
    assert any(f.severity == Severity.HIGH and "flag bits" in f.sentence for f in findings)


def test_benign_archives_stay_clean() -> None:
    """The budgets do not touch ordinary files: a checkpoint, an npz, a tar.gz of a
    checkpoint and a 7z of one are all clean."""
    ckpt = torch_bytes({"w": torch.zeros(1000), "step": 3})
    npz = io.BytesIO()
    np.savez_compressed(npz, a=np.zeros((200, 200)), b=np.arange(10))
    tgz = tar_of({"model.pt": ckpt}, "w:gz")
    for name, data in (("m.pt", ckpt), ("a.npz", npz.getvalue()), ("m.tgz", tgz)):
        assert analyze_model(name, data) == [], name
    assert analyze_model("p.pkl", pickle.dumps({"a": [1, 2]}, protocol=4)) == []


def test_npy_object_array_behind_a_large_header_is_scanned() -> None:
    """numpy.load(allow_pickle=True) ignores max_header_size: a 100 KB header (format
    2.0, padded with spaces as numpy pads) still leads to the pickle."""
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (hlen,) = struct.unpack("<H", buf.getvalue()[8:10])
    header = buf.getvalue()[10 : 10 + hlen].rstrip(b"\n")
    padded = header + b" " * (100_032 - 12 - len(header) - 1) + b"\n"  # 64-byte aligned
    data = b"\x93NUMPY\x02\x00" + struct.pack("<I", len(padded)) + padded
    loaded = np.load(io.BytesIO(data + buf.getvalue()[10 + hlen :]), allow_pickle=True)
    assert loaded[0] == {"a": 1}  # numpy reads it (our own benign pickle)
    findings = analyze_model("big-header.npy", data + PAYLOAD)
    assert any(f.verdict == "executes-code" for f in findings), text(findings)


def test_differentials_in_a_clean_file_are_low() -> None:
    """A benign checkpoint with a broken CRC: every byte was read and judged clean, so
    the CRC mismatch is an oddity (low); next to a payload it is high."""
    good = bytearray(torch_bytes())
    cd = _central(bytes(good), b"archive/data.pkl")
    good[cd + 16 : cd + 20] = b"\0\0\0\0"
    findings = analyze_model("m.pt", bytes(good))
    assert "CRC mismatch" in text(findings) and worst(findings) == Severity.LOW
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", PAYLOAD)
    evil = bytearray(buf.getvalue())
    cd = _central(bytes(evil), b"archive/data.pkl")
    evil[cd + 16 : cd + 20] = b"\0\0\0\0"
    findings = analyze_model("m.pt", bytes(evil))
    crc = [f for f in findings if "CRC mismatch" in f.sentence]
    assert crc and crc[0].severity == Severity.HIGH


def test_a_reader_bug_is_a_skipped_file_not_the_end_of_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The last line of isolation, in ``keyscope scan``: if judging one blob raises
    anyway (a bug), that blob is a skipped entry with the reason, and the other files
    are still scanned (big files, judged through a memory map, too)."""
    import keyscope.modelfiles.analyzer

    def broken(path: str, data: bytes, *_args: object) -> list[ModelFinding]:
        if "broken" in path:
            raise TypeError("a reader bug")
        return analyze_model(path, data)

    # scan and pipeline import analyze_model when they first meet a model file
    monkeypatch.setattr(keyscope.modelfiles.analyzer, "analyze_model", broken)
    (tmp_path / "broken.pkl").write_bytes(PAYLOAD)
    (tmp_path / "evil.pkl").write_bytes(PAYLOAD)
    (tmp_path / "broken-big.pt").write_bytes(torch_bytes({"w": torch.zeros(4096)}))
    args = ["scan", "-j", "1", "--format", "json", "--max-file-size", "8KB", str(tmp_path)]
    assert main(args) == 1
    report = json.loads(capsys.readouterr().out)
    skipped = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert "TypeError" in skipped["broken.pkl"] and "TypeError" in skipped["broken-big.pt"]
    assert any(m["path"].endswith("evil.pkl") for m in report["model_findings"])


# os.system("echo x") in protocol 0, and in protocol 2 behind a harmless first value
# (no magic number at offset 0 for the first; never unpickled, only read as bytes)
HEADERLESS_P0 = b"N0cos\nsystem\n(S'echo x'\ntR."
HEADERLESS_P2 = b"\x80\x02I0o1\n0cos\nsystem\n(S'echo x'\ntR."


def _headerless_wrappers(payload: bytes) -> dict[str, bytes]:
    import bz2
    import lzma

    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("data", payload)  # not named .pkl
    tarred = tar_of({"model/weights": payload}, "w:gz")
    py7zr = pytest.importorskip("py7zr")
    seven = io.BytesIO()
    with py7zr.SevenZipFile(seven, "w") as archive:
        archive.writestr(payload, "model/pytorch_model.bin")
    return {
        "m.7z": seven.getvalue(),
        "m.pkl.gz": gzip.compress(payload),
        "m.joblib": bz2.compress(payload),
        "m.pkl.xz": lzma.compress(payload),
        "m.zip": zipped.getvalue(),
        "m.tar.gz": tarred,
    }


@pytest.mark.parametrize(
    "payload",
    [HEADERLESS_P0, HEADERLESS_P2, HEADERLESS_P0 + b"\x00trailing bytes pickle.load never reads"],
    ids=["p0", "p2", "p0-trailing"],
)
def test_headerless_pickles_inside_containers_are_judged_by_parsing(payload: bytes) -> None:
    """pickle.load needs no magic number and reads to STOP: a member is a pickle
    candidate when it starts with an opcode, whatever its name or last byte."""
    for name, data in _headerless_wrappers(payload).items():
        findings = analyze_model(name, data)
        assert any(
            f.verdict == "executes-code" and "os.system" in " ".join(f.details) for f in findings
        ), (name, text(findings))


def test_text_members_that_start_like_a_pickle_add_no_finding() -> None:
    """Members that begin with an opcode byte but do not parse (README text, a vocab
    list, a CSV) are dropped by the parser, not reported."""
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("README", "This model was trained on ...\n")
        z.writestr("vocab.txt", "[PAD]\n[UNK]\nthe\nof\n")
        z.writestr("labels.csv", "id,label\n0,cat\n1,dog\n")
        z.writestr("model.pt", torch_bytes())
    assert analyze_model("bundle.zip", zipped.getvalue()) == []
    tarred = tar_of({"notes": b"S3 bucket layout\n", "model.pt": torch_bytes()}, "w:gz")
    assert analyze_model("bundle.tar.gz", tarred) == []
