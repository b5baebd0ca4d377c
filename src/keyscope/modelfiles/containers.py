"""Model containers, read the way their loaders read them, never by extension.

Each reader yields the pickle streams a loader would unpickle (with where they sit)
and the anomalies a loader would tolerate but a scanner must report: zip members
read through the central directory with no CRC requirement (as PyTorch's miniz
does), duplicate names, local/central name mismatches, odd flag bits; NumPy object
arrays; compressed wrappers; nested archives (zip, tar, 7z) within depth and size
budgets. Non-pickle model files found inside containers (ONNX, SavedModel, TFLite,
GGUF, Keras HDF5, safetensors) are handed back as :class:`Embedded` for the
structural checks.
"""

from __future__ import annotations

import ast
import bz2
import gzip
import io
import lzma
import re
import struct
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from keyscope.modelfiles.onnx_graphs import is_onnx
from keyscope.modelfiles.tf_graphs import is_saved_model, is_saved_model_text
from keyscope.modelfiles.tflite_graphs import is_tflite

MAX_DEPTH = 4
MAX_EXPANDED = 2 * 1024**3  # bytes after decompression, per container
MAX_RATIO = 200  # decompressed / compressed, beyond which it is a bomb …
RATIO_FLOOR = 64 * 1024**2  # … once it is this large: arrays of zeros compress 1000:1
MAX_MEMBERS = 10_000


@dataclass(frozen=True)
class Stream:
    """A pickle the loader would unpickle: ``data[offset:]`` inside ``where``."""

    where: tuple[str, ...]  # member chain, e.g. ("archive/data.pkl",)
    data: bytes
    offset: int
    max_streams: int = 1
    weak: bool = False  # no magic number: only a pickle if it parses (or does harm)


@dataclass(frozen=True)
class Anomaly:
    where: tuple[str, ...]
    detail: str
    severity: str  # "high" for loader/scanner differentials, "low" for oddities


@dataclass(frozen=True)
class Embedded:
    """A model file without pickles inside a container, for the structural checks."""

    where: tuple[str, ...]
    data: bytes
    kind: str  # a sniff() result from STRUCTURED_KINDS, or "zip" (maybe Keras)


STRUCTURED_KINDS = frozenset(
    {"gguf", "hdf5", "safetensors", "onnx", "savedmodel", "savedmodel-text", "tflite"}
)
SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"


def sniff(data: bytes, partial: bool = False) -> str | None:
    """The format by content: zip, 7z, npy, gzip, bz2, xz, zlib, tar, safetensors,
    gguf, hdf5, onnx, savedmodel, tflite, pickle; None for anything else. With
    ``partial``, ``data`` is only the head of a larger file (the formats recognised
    by parsing, ONNX and SavedModel, then accept a message cut short)."""
    head = bytes(data[:16])
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(SEVEN_ZIP_MAGIC):
        return "7z"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith((b"\xfd7zXZ\x00", b"\x5d\x00\x00")):
        return "xz"
    if head.startswith(b"ZF") or (
        len(head) > 1 and head[0] == 0x78 and head[1] in (1, 0x5E, 0x9C, 0xDA)
    ):
        return "zlib"
    if head.startswith(b"GGUF"):
        return "gguf"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head[4:8] == b"TFL3" and is_tflite(data, partial):
        return "tflite"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if len(data) > 262 and data[257:262] == b"ustar":
        return "tar"
    if head[:1] in (b"(", b"c", b"}", b"]") and bytes(data[-4:]).rstrip(b"\r\n")[-1:] == b".":
        return "pickle0"  # protocol 0/1 has no magic: a candidate only, proven by parsing
    if head[:1] in (b"s", b"m", b"#", b"\n", b" ") and is_saved_model_text(data):
        return "savedmodel-text"
    if head[:1] == b"\x08":  # protobuf field 1 as a varint: ONNX or SavedModel?
        if is_onnx(data, partial):
            return "onnx"
        if is_saved_model(data, partial):
            return "savedmodel"
    if len(data) >= 10 and data[8:9] == b"{":
        (n,) = struct.unpack("<Q", data[:8])
        if 2 <= n <= len(data) - 8:
            return "safetensors"
    return None


def pickles_in(
    data: bytes, where: tuple[str, ...] = (), depth: int = 0
) -> Iterator[Stream | Anomaly | Embedded]:
    """Every pickle stream a loader of ``data`` would run, every anomaly, and every
    non-pickle model file (``data`` itself included) for the structural checks."""
    if depth > MAX_DEPTH:
        yield Anomaly(where, f"nested deeper than {MAX_DEPTH} containers: not scanned", "low")
        return
    kind = sniff(data)
    if kind == "zip":
        if where:  # a zip inside a container may be a Keras archive: check its config
            yield Embedded(where, data, kind)
        yield from _zip(data, where, depth)
    elif kind == "npy":
        yield from _npy(data, where)
    elif kind in ("gzip", "bz2", "xz", "zlib"):
        inner = _decompress(kind, data)
        if isinstance(inner, str):
            if "bomb" in inner:  # bytes that merely look compressed are not reported
                yield Anomaly(where, inner, "low")
        else:
            yield from pickles_in(inner, (*where, f"<{kind}>"), depth + 1)
    elif kind == "tar":
        yield from _tar(data, where, depth)
    elif kind == "7z":
        yield from _seven_zip(data, where, depth)
    elif kind in STRUCTURED_KINDS:
        yield Embedded(where, data, kind)
    elif kind == "pickle":
        # A raw pickle, or PyTorch's legacy format (five pickles back to back).
        yield Stream(where, data, 0, max_streams=5)
    elif kind == "pickle0":
        yield Stream(where, data, 0, weak=True)


def expansion_limit(compressed: int) -> int:
    """How far ``compressed`` bytes may expand: MAX_RATIO times, but always up to
    RATIO_FLOOR (small, very compressible members are ordinary) and never past
    MAX_EXPANDED."""
    return min(MAX_EXPANDED, max(compressed * MAX_RATIO, RATIO_FLOOR))


def _decompress(kind: str, data: bytes) -> bytes | str:
    limit = expansion_limit(len(data))
    try:
        if kind == "zlib":
            body = data[2 + data[2:].find(b"\x78") if data.startswith(b"ZF") else 0 :]
            d = zlib.decompressobj()
            out = d.decompress(body, limit + 1)
        elif kind == "gzip":
            with view_reader(data) as raw, gzip.GzipFile(fileobj=raw) as f:
                out = f.read(limit + 1)
        elif kind == "bz2":
            out = bz2.BZ2Decompressor().decompress(data, limit + 1)
        else:
            out = lzma.LZMADecompressor().decompress(data, limit + 1)
    except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
        return f"{kind} data does not decompress ({exc})"
    if len(out) > limit:
        return f"{kind} data expands more than {MAX_RATIO}x: a decompression bomb, not scanned"
    return out


def _npy(data: bytes, where: tuple[str, ...]) -> Iterator[Stream | Anomaly]:
    major = data[6] if len(data) > 7 else 0
    if major == 1:
        (hlen,) = struct.unpack("<H", data[8:10])
        start = 10
    else:
        (hlen,) = struct.unpack("<I", data[8:12])
        start = 12
    header = data[start : start + hlen].decode("latin-1", "replace")
    meta = _npy_header(header, major) if hlen < 65536 else None
    if not isinstance(meta, dict):
        # With the \x93NUMPY magic, numpy.load reads the header or raises: it falls
        # back to pickle.load only for files without the magic (sniffed as pickles).
        yield Anomaly(where, "invalid .npy header: numpy.load refuses the file", "low")
        return
    if "O" in repr(meta.get("descr", "")):
        yield Stream(where, data, start + hlen)


def _npy_header(header: str, major: int) -> object:
    """The header dict as numpy reads it: a Python literal; for format 1 and 2 files
    written by Python 2, long integers such as ``(3L, 4L)`` are read as ints."""
    for text in (header, re.sub(r"(?<=\d)[lL]\b", "", header) if major <= 2 else None):
        if text is None:
            continue
        try:
            return ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
    return None


def _tar(data: bytes, where: tuple[str, ...], depth: int) -> Iterator[Stream | Anomaly | Embedded]:
    try:
        with view_reader(data) as raw, tarfile.open(fileobj=raw, mode="r:") as tar:
            members = tar.getmembers()[:MAX_MEMBERS]
            for m in members:
                if not m.isfile():
                    continue
                f = tar.extractfile(m)
                if f is None:
                    continue
                body = f.read(MAX_EXPANDED)
                chain = (*where, m.name)
                if m.name in ("storages", "tensors", "pickle", "sys_info"):
                    # PyTorch's legacy tar checkpoint: these members are unpickled.
                    yield Stream(chain, body, 0, max_streams=2)
                else:
                    yield from pickles_in(body, chain, depth + 1)
    except (tarfile.TarError, OSError, EOFError) as exc:
        yield Anomaly(where, f"tar archive cannot be read ({exc})", "low")


@dataclass(frozen=True)
class _Entry:
    name: str
    method: int
    flags: int
    crc: int
    csize: int
    usize: int
    offset: int


def _zip(data: bytes, where: tuple[str, ...], depth: int) -> Iterator[Stream | Anomaly | Embedded]:
    entries = _central_directory(data)
    if isinstance(entries, str):
        yield Anomaly(where, entries, "low")
        entries = list(_local_headers(data))
    names: dict[str, int] = {}
    expanded = 0
    for e in entries[:MAX_MEMBERS]:
        chain = (*where, e.name)
        names[e.name] = names.get(e.name, 0) + 1
        if names[e.name] == 2:
            yield Anomaly(
                chain,
                "duplicate zip member name: loaders and scanners may pick "
                "different copies; every copy is scanned",
                "high",
            )
        if e.flags & 0x61:
            yield Anomaly(
                chain,
                f"zip flag bits 0x{e.flags:x} (encryption/patched data): "
                "older PyTorch readers ignore them",
                "high",
            )
        body = _member(data, e)
        if isinstance(body, str):
            yield Anomaly(chain, body, "low")
            continue
        local_name, content = body
        if local_name != e.name:
            yield Anomaly(
                chain,
                f"local header names the member {local_name!r}: the central "
                "directory and the local header disagree",
                "high",
            )
        if zlib.crc32(content) != e.crc:
            yield Anomaly(
                chain,
                "CRC mismatch: Python's zipfile refuses the member, PyTorch loads it anyway",
                "high",
            )
        expanded += len(content)
        if expanded > MAX_EXPANDED:
            yield Anomaly(where, "archive expands beyond the size budget: not fully scanned", "low")
            return
        if e.name.endswith(".pkl"):
            yield Stream(chain, content, 0)
        elif _is_storage(e.name):
            continue  # raw tensor bytes, never unpickled
        else:
            yield from pickles_in(content, chain, depth + 1)


def _is_storage(name: str) -> bool:
    parts = name.split("/")
    return len(parts) >= 2 and parts[-2] == "data" and parts[-1].isdigit()


def _central_directory(data: bytes) -> list[_Entry] | str:
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 65557))
    if eocd < 0 or eocd + 22 > len(data):
        return "zip without an end-of-central-directory record"
    count, _size, cd_offset = struct.unpack("<HII", data[eocd + 10 : eocd + 20])
    if count == 0xFFFF or cd_offset == 0xFFFFFFFF:
        loc = data.rfind(b"PK\x06\x07", 0, eocd)
        if loc >= 0:
            (z64,) = struct.unpack("<Q", data[loc + 8 : loc + 16])
            if data[z64 : z64 + 4] == b"PK\x06\x06":
                (count,) = struct.unpack("<Q", data[z64 + 32 : z64 + 40])
                (cd_offset,) = struct.unpack("<Q", data[z64 + 48 : z64 + 56])
    entries: list[_Entry] = []
    pos = cd_offset
    for _ in range(min(count, MAX_MEMBERS)):
        if data[pos : pos + 4] != b"PK\x01\x02":
            return "zip central directory is damaged"
        (flags, method, _t, _d, crc, csize, usize, nlen, xlen, clen, _disk, _ia, _ea, offset) = (
            struct.unpack("<HHHHIIIHHHHHII", data[pos + 8 : pos + 46])
        )
        name = data[pos + 46 : pos + 46 + nlen].decode("utf-8", "replace")
        extra = data[pos + 46 + nlen : pos + 46 + nlen + xlen]
        usize, csize, offset = _zip64(extra, usize, csize, offset)
        entries.append(_Entry(name, method, flags, crc, csize, usize, offset))
        pos += 46 + nlen + xlen + clen
    return entries


def _zip64(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    i = 0
    while i + 4 <= len(extra):
        tag, size = struct.unpack("<HH", extra[i : i + 4])
        if tag == 1:
            vals = extra[i + 4 : i + 4 + size]
            j = 0
            if usize == 0xFFFFFFFF and j + 8 <= len(vals):
                (usize,) = struct.unpack("<Q", vals[j : j + 8])
                j += 8
            if csize == 0xFFFFFFFF and j + 8 <= len(vals):
                (csize,) = struct.unpack("<Q", vals[j : j + 8])
                j += 8
            if offset == 0xFFFFFFFF and j + 8 <= len(vals):
                (offset,) = struct.unpack("<Q", vals[j : j + 8])
        i += 4 + size
    return usize, csize, offset


def _local_headers(data: bytes) -> Iterator[_Entry]:
    """Fallback when the central directory is broken: walk the local headers."""
    pos = data.find(b"PK\x03\x04")
    count = 0
    while pos >= 0 and count < MAX_MEMBERS:
        if pos + 30 > len(data):
            return
        (flags, method, _t, _d, crc, csize, usize, nlen, xlen) = struct.unpack(
            "<HHHHIIIHH", data[pos + 6 : pos + 30]
        )
        name = data[pos + 30 : pos + 30 + nlen].decode("utf-8", "replace")
        yield _Entry(name, method, flags, crc, csize, usize, pos)
        count += 1
        pos = data.find(b"PK\x03\x04", pos + 30 + nlen + xlen + max(csize, 0))


def _member(data: bytes, e: _Entry) -> tuple[str, bytes] | str:
    pos = e.offset
    if data[pos : pos + 4] != b"PK\x03\x04":
        return "zip member's local header is missing"
    nlen, xlen = struct.unpack("<HH", data[pos + 26 : pos + 30])
    local_name = data[pos + 30 : pos + 30 + nlen].decode("utf-8", "replace")
    start = pos + 30 + nlen + xlen
    raw = data[start : start + e.csize]
    if e.method == 0:
        return local_name, raw
    if e.method == 8:
        limit = expansion_limit(len(raw))
        try:
            out = zlib.decompressobj(-15).decompress(raw, limit + 1)
        except zlib.error as exc:
            return f"zip member does not inflate ({exc})"
        if len(out) > limit:
            return "zip member expands more than the ratio budget: a bomb, not scanned"
        return local_name, out
    return f"zip compression method {e.method} is not read"


def _seven_zip(
    data: bytes, where: tuple[str, ...], depth: int
) -> Iterator[Stream | Anomaly | Embedded]:
    """7z members (nullifAI hid its pickles in 7z), after checking the sizes the
    archive declares against the budget and before decompressing anything."""
    try:
        import py7zr
        from py7zr.io import BytesIOFactory
    except ImportError:
        yield Anomaly(where, "7z archive not scanned: py7zr is not installed", "low")
        return
    if len(data) < 32:
        yield Anomaly(where, "7z archive is truncated", "low")
        return
    next_offset, next_size = struct.unpack("<QQ", data[12:28])
    if 32 + next_offset + next_size > len(data):
        yield Anomaly(where, "7z archive is truncated (its header lies past the end)", "low")
        return
    limit = expansion_limit(len(data))
    refusal: str | None = None
    escaping: list[str] = []
    factory = BytesIOFactory(limit)
    # py7zr parses hostile bytes: any exception it raises means "cannot be read".
    try:
        with (
            view_reader(data) as source,
            py7zr.SevenZipFile(source, mode="r", max_extract_size=limit) as archive,
        ):
            members = [m for m in archive.list() if m.is_file]
            declared = sum(max(m.uncompressed or 0, 0) for m in members)
            if len(members) > MAX_MEMBERS:
                refusal = f"7z archive has {len(members)} members: not scanned"
            elif declared > limit:
                refusal = (
                    f"7z archive declares {declared} bytes of content in {len(data)}: it "
                    f"expands more than {MAX_RATIO}x or beyond the size budget, a "
                    "decompression bomb, not scanned"
                )
            else:
                escaping = [m.filename for m in members if _escapes(m.filename)]
                targets = [m.filename for m in members if not _escapes(m.filename)]
                if targets:
                    archive.extract(targets=targets, factory=factory)
    except Exception as exc:  # a third-party parser on hostile input may raise anything
        encrypted = isinstance(exc, py7zr.PasswordRequired) or "password" in str(exc).lower()
        refusal = (
            f"7z archive cannot be read ({'it is encrypted' if encrypted else type(exc).__name__})"
            ": not scanned"
        )
    if refusal is not None:
        yield Anomaly(where, refusal, "low")
        return
    for name in escaping:
        yield Anomaly(
            (*where, name),
            "7z member name escapes the extraction directory (absolute or '..'): not extracted",
            "low",
        )
    for name, product in factory.products.items():
        product.seek(0)
        yield from pickles_in(product.read(), (*where, name), depth + 1)


class _ViewReader(io.RawIOBase):
    """A seekable file over bytes or a memory map, without copying them."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        n = max(0, min(len(out), len(self._view) - self._pos))
        out[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._view.release()  # a memory map cannot be closed while a view exists
        super().close()


def view_reader(data: bytes) -> io.BufferedReader:
    """A seekable file over ``data`` (bytes or a memory map) that copies nothing;
    closing it releases the view, so the map can be closed."""
    return io.BufferedReader(_ViewReader(data))


def _escapes(name: str) -> bool:
    text = name.replace("\\", "/")
    return text.startswith("/") or ".." in text.split("/") or (len(text) > 1 and text[1] == ":")
