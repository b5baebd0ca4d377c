"""Model containers, read the way their loaders read them, never by extension.

Each reader yields the pickle streams a loader would unpickle (with where they sit)
and the anomalies a loader would tolerate but a scanner must report: zip members
read through the central directory with no CRC requirement (as PyTorch's miniz
does), duplicate names, local/central name mismatches, odd flag bits; NumPy object
arrays; compressed wrappers; nested archives (zip, tar, 7z) within depth and size
budgets. Non-pickle model files found inside containers (ONNX, SavedModel, TFLite,
GGUF, Keras HDF5, safetensors) are handed back as :class:`Embedded` for the
structural checks. Every member is sniffed as it is read, through the registry of
formats (``formats/registry.py``).
"""

from __future__ import annotations

import ast
import bisect
import bz2
import gzip
import importlib
import io
import lzma
import mmap
import re
import struct
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from keyscope.modelfiles.formats.pickles import may_start_pickle
from keyscope.modelfiles.formats.registry import (
    format_named,
    holds_pickles,
    sniff,
    structured_kinds,
)
from keyscope.modelfiles.kinds import model_kind

MAX_DEPTH = 4
MAX_EXPANDED = 2 * 1024**3  # bytes after decompression, per container
MAX_RATIO = 200  # decompressed / compressed, beyond which it is a bomb …
RATIO_FLOOR = 64 * 1024**2  # … once it is this large: arrays of zeros compress 1000:1
MAX_MEMBERS = 10_000  # archive members per file, all nested containers together
MAX_OVERLAPS = 100  # zip members whose data overlaps another member's, read at most
MAX_SPARSE = 10_000  # entries in one tar member's sparse map
MAX_NPY_HEADER = 16 * 1024**2
MAX_REFUSED = 20  # members of one archive that cannot be read, listed one by one
REFUSED = "members could not be read: the rest of the archive is not scanned"


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
    # "differential": a loader/scanner differential, high when the file holds anything
    # dangerous and low otherwise (every copy is scanned here, so it hides nothing
    # from keyscope); "high": something that may hide a payload; "low": oddities.
    severity: str


@dataclass(frozen=True)
class Embedded:
    """A model file without pickles inside a container, for the structural checks."""

    where: tuple[str, ...]
    data: bytes
    kind: str  # a sniff() result of a format without pickles, or "zip" (maybe Keras)


# The formats without pickles as registered at import (derived from the registry,
# which the walk itself consults: formats added later are walked the same way).
STRUCTURED_KINDS = structured_kinds()
# the kinds whose members the walk reads (what _pickles_in descends into)
WALKED = frozenset({"zip", "tar", "7z", "gzip", "bz2", "xz", "zlib"})
STREAMED = frozenset({"gzip", "bz2", "xz"})  # a tar inside these is walked as a stream
STREAM_CHUNK = 1024 * 1024
DROP_BYTES = 8 * 1024 * 1024  # a memory map read this far is let go of (see _ViewReader)
READER_FAILED = "the reader failed on it"  # an exception no parser should raise: a bug
# A zip member longer than this is inflated this far first, and read whole only when
# that head may be a model file or a container (most members of a jar are classes).
SNIFF_BYTES = 512
# Formats recognised by parsing more than a head (a protobuf message, a text prefix):
# a member starting like one of them is always read whole.
PARSED_KINDS = ("onnx", "savedmodel", "savedmodel-text")
# Members always read whole: the Keras check (formats/keras.py) reads config.json and
# leaves saying what is wrong with it (truncated, corrupt) to this walk.
READ_WHOLE = ("config.json",)


@dataclass(frozen=True)
class Reach:
    """How far the walk of one file reads: containers deep, and archive members in all
    (a scan reaches as far as it unpacks)."""

    depth: int = MAX_DEPTH
    members: int = MAX_MEMBERS


DEFAULT_REACH = Reach()  # what the walk reads of a file on its own


class Budget:
    """What one file may cost, shared by every container nested in it: bytes
    produced (decompressed, extracted or copied out of members, against the ratio
    and size limits of the file itself) and archive members."""

    def __init__(self, size: int, reach: Reach = DEFAULT_REACH) -> None:
        self.left = expansion_limit(size)
        self.reach = reach
        self.members = reach.members
        self.noted_members = self.noted_bytes = False

    def limit(self, compressed: int) -> int:
        """How much ``compressed`` bytes may produce now: their own ratio limit,
        capped by what the file has left."""
        return min(expansion_limit(compressed), self.left)

    def spend(self, produced: int) -> None:
        self.left -= produced

    def member(self) -> bool:
        """Count one more member; False once the file has no members left."""
        self.members -= 1
        return self.members >= 0

    def over(self, where: tuple[str, ...]) -> Iterator[Anomaly]:
        """The one note (per file, not per nested container) that a budget ran out."""
        if self.members < 0 and not self.noted_members:
            self.noted_members = True
            reason = f"more than {self.reach.members} members: the rest not scanned"
            yield Anomaly(where, reason, "low")
        elif self.left <= 0 and not self.noted_bytes:
            self.noted_bytes = True
            yield Anomaly(
                where, "archive expands beyond the file's size budget: the rest not scanned", "low"
            )


def pickles_in(
    data: bytes,
    where: tuple[str, ...] = (),
    depth: int = 0,
    budget: Budget | None = None,
    kind: str | None = None,
    reach: Reach = DEFAULT_REACH,
) -> Iterator[Stream | Anomaly | Embedded]:
    """Every pickle stream a loader of ``data`` would run, every anomaly, and every
    non-pickle model file (``data`` itself included) for the structural checks.
    ``kind``: what ``sniff(data)`` already said (None: sniff it here); members are
    sniffed as they are read; a new ``budget`` reads as far as ``reach``.

    Never raises: a member that cannot be read ends in a low anomaly saying so, and
    the members around it are still read."""
    if budget is None:
        budget = Budget(len(data), reach)
    try:
        yield from _pickles_in(data, where, depth, budget, kind)
    except Exception as exc:  # hostile bytes: whatever breaks, this member is not scanned
        yield Anomaly(where, f"{READER_FAILED} ({type(exc).__name__}): not scanned", "low")


def _pickles_in(
    data: bytes, where: tuple[str, ...], depth: int, budget: Budget, kind: str | None
) -> Iterator[Stream | Anomaly | Embedded]:
    if depth > budget.reach.depth:
        reason = f"nested deeper than {budget.reach.depth} containers: not scanned"
        yield Anomaly(where, reason, "low")
        return
    if kind is None:
        kind = sniff(data)
    if kind == "zip":
        if where:  # a zip inside a container may be a Keras archive: check its config
            yield Embedded(where, data, kind)
        yield from _zip(data, where, depth, budget)
    elif kind == "npy":
        yield from _npy(data, where)
    elif kind in STREAMED and depth < budget.reach.depth and _holds_tar(kind, data):
        yield from _compressed_tar(kind, data, where, depth, budget)
    elif kind in ("gzip", "bz2", "xz", "zlib"):
        inner = _decompress(kind, data, budget.limit(len(data)))
        if isinstance(inner, str):
            if "bomb" in inner:  # bytes that merely look compressed are not reported
                yield Anomaly(where, inner, "low")
        else:
            budget.spend(len(inner))
            yield from pickles_in(inner, (*where, f"<{kind}>"), depth + 1, budget)
    elif kind == "tar":
        yield from _tar(data, where, depth, budget)
    elif kind == "7z":
        yield from _seven_zip(data, where, depth, budget)
    elif kind is not None and not holds_pickles(kind):
        yield Embedded(where, data, kind)
    elif kind == "pickle":
        # A raw pickle, or PyTorch's legacy format (five pickles back to back).
        yield Stream(where, data, 0, max_streams=5)
    elif may_start_pickle(data):
        # No magic number: pickle.load needs none (protocols 0-2, or 4-5 without
        # PROTO), and a member's name or a guess at its last byte proves nothing.
        # Anything pickle.load reads past the first opcode of is a candidate; the
        # emulator decides (text or binary that does not parse, and calls nothing,
        # is dropped).
        yield Stream(where, data, 0, weak=True)


def walks_members(kind: str | None) -> bool:
    """Whether the walk of a file sniffed as ``kind`` reads its members (or, for a
    compressed file, what it holds) and judges each of them in turn."""
    return kind in WALKED


def expansion_limit(compressed: int) -> int:
    """How far ``compressed`` bytes may expand: MAX_RATIO times, but always up to
    RATIO_FLOOR (small, very compressible members are ordinary) and never past
    MAX_EXPANDED."""
    return min(MAX_EXPANDED, max(compressed * MAX_RATIO, RATIO_FLOOR))


class _Undecompressable(Exception):
    """The compressed bytes under a streamed tar do not decompress (any further)."""


class _Bomb(Exception):
    """A streamed tar decompresses past its limit."""


class _Inflating(io.RawIOBase):
    """The decompressed bytes of ``data`` (gzip, bzip2 or xz), read as a stream: as
    :func:`_decompress` reads them (gzip: every member; bzip2 and xz: the first
    stream), spending what is produced against ``budget`` and raising ``_Bomb`` past
    ``limit`` (the whole is never held)."""

    def __init__(self, kind: str, data: bytes, budget: Budget, limit: int) -> None:
        self._view = view_reader(data)
        self._gzip = gzip.GzipFile(fileobj=self._view) if kind == "gzip" else None
        self._decompressor: Any = bz2.BZ2Decompressor() if kind == "bz2" else None
        if kind == "xz":
            self._decompressor = lzma.LZMADecompressor()
        self._budget = budget
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        try:
            chunk = self._read(len(out))
        except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
            raise _Undecompressable(str(exc)) from exc
        self._left -= len(chunk)
        if self._left < 0:
            raise _Bomb
        self._budget.spend(len(chunk))
        out[: len(chunk)] = chunk
        return len(chunk)

    def _read(self, size: int) -> bytes:
        if self._gzip is not None:
            return self._gzip.read(size)
        d = self._decompressor
        while not d.eof:
            fed = self._view.read(STREAM_CHUNK) if d.needs_input else b""
            if d.needs_input and not fed:
                return b""  # truncated: what decompressed is what there is
            if chunk := d.decompress(fed, size):
                return bytes(chunk)
        return b""

    def close(self) -> None:
        if self._gzip is not None:
            self._gzip.close()
        self._view.close()
        super().close()


def _holds_tar(kind: str, data: bytes) -> bool:
    """Whether compressed ``data`` starts with a tar header once decompressed (read
    as far as that header only)."""
    with _Inflating(kind, data, Budget(0), RATIO_FLOOR) as stream:
        try:
            head = io.BufferedReader(stream).read(512)
        except (_Undecompressable, _Bomb):
            return False
    return sniff(head) == "tar"


def _compressed_tar(
    kind: str, data: bytes, where: tuple[str, ...], depth: int, budget: Budget
) -> Iterator[Stream | Anomaly | Embedded]:
    """A compressed tar walked as a stream, member by member, as :func:`_decompress`
    and :func:`_tar` would walk it whole (the tar is never held in memory); past the
    size limit the rest is a bomb, and bytes that stop decompressing end the walk
    quietly, as they would have left it unread."""
    limit = budget.limit(len(data))
    try:
        with _Inflating(kind, data, budget, limit) as stream:
            inner = (*where, f"<{kind}>")
            yield from _tar_stream(io.BufferedReader(stream, STREAM_CHUNK), inner, depth + 1,
                                   budget)  # fmt: skip
    except _Bomb:
        yield Anomaly(
            where,
            f"{kind} data expands more than {MAX_RATIO}x or beyond the file's size budget: "
            "a decompression bomb, not scanned",
            "low",
        )
    except _Undecompressable:
        return


def _decompress(kind: str, data: bytes, limit: int) -> bytes | str:
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
        return (
            f"{kind} data expands more than {MAX_RATIO}x or beyond the file's size budget: "
            "a decompression bomb, not scanned"
        )
    return out


def _npy(data: bytes, where: tuple[str, ...]) -> Iterator[Stream | Anomaly]:
    major = data[6] if len(data) > 7 else 0
    start = 10 if major == 1 else 12
    if len(data) < start:
        yield Anomaly(where, "truncated .npy header: numpy.load refuses the file", "low")
        return
    (hlen,) = struct.unpack("<H" if major == 1 else "<I", data[8:start])
    if hlen > MAX_NPY_HEADER:
        # numpy.load(allow_pickle=True) reads a header of any size (its
        # max_header_size is ignored then): one this large is not read here.
        yield Anomaly(where, f".npy header of {hlen} bytes: not scanned", "low")
        return
    header = data[start : start + hlen].decode("latin-1", "replace")
    meta = _npy_header(header, major)
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
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            # TypeError: a literal numpy cannot build either, such as a list as a key
            continue
    return None


def _tar(
    data: bytes, where: tuple[str, ...], depth: int, budget: Budget
) -> Iterator[Stream | Anomaly | Embedded]:
    with view_reader(data) as raw:
        yield from _tar_stream(raw, where, depth, budget, "r:")


def _tar_stream(
    raw: io.BufferedReader,
    where: tuple[str, ...],
    depth: int,
    budget: Budget,
    mode: Literal["r:", "r|"] = "r|",
) -> Iterator[Stream | Anomaly | Embedded]:
    """Regular members (sparse ones included), each checked against the file's
    budget by the size it declares before a byte of it is produced; ``mode`` "r|"
    reads ``raw`` as a stream, once, front to back."""
    refused = 0
    try:
        with tarfile.open(fileobj=raw, mode=mode) as tar:
            while (m := tar.next()) is not None:
                if mode == "r|":  # a stream's headers are not kept
                    tar.members.clear()  # type: ignore[attr-defined]
                if not budget.member() or budget.left <= 0:
                    yield from budget.over(where)
                    return
                chain = (*where, m.name)
                if not m.isfile():
                    if m.size > 0 and not (m.isdir() or m.issym() or m.islnk()):
                        yield Anomaly(chain, f"tar member of type {m.type!r}: not scanned", "low")
                    continue
                refusal = _tar_refusal(m, budget)
                if refusal is not None:
                    refused += 1
                    if refused > MAX_REFUSED:
                        yield Anomaly(where, f"{MAX_REFUSED} {REFUSED}", "low")
                        return
                    yield Anomaly(chain, refusal, "low")
                    continue
                f = tar.extractfile(m)
                if f is None:
                    continue
                body = f.read(m.size)
                budget.spend(len(body))
                if m.name in ("storages", "tensors", "pickle", "sys_info"):
                    # PyTorch's legacy tar checkpoint: these members are unpickled.
                    yield Stream(chain, body, 0, max_streams=2)
                else:
                    yield from pickles_in(body, chain, depth + 1, budget)
    except (tarfile.TarError, OSError, EOFError) as exc:
        yield Anomaly(where, f"tar archive cannot be read ({exc})", "low")


def _tar_refusal(m: tarfile.TarInfo, budget: Budget) -> str | None:
    """Why a tar member is not extracted: the length of its sparse map, or the bytes
    it would produce (a sparse member's holes included) against the data it stores."""
    sparse: object = m.sparse  # typeshed says int; tarfile keeps (offset, size) pairs
    if not isinstance(sparse, list):
        return None if m.size <= budget.left else _beyond("tar member", m.size)
    if len(sparse) > MAX_SPARSE:
        return f"sparse tar member with {len(sparse)} map entries: not scanned"
    stored = sum(size for _offset, size in sparse)
    return None if m.size <= budget.limit(stored) else _beyond("sparse tar member", m.size)


def _beyond(what: str, size: int) -> str:
    return (
        f"{what} of {size} bytes expands more than {MAX_RATIO}x or beyond the file's "
        "size budget: a decompression bomb, not scanned"
    )


@dataclass(frozen=True)
class _Entry:
    name: str
    method: int
    flags: int
    crc: int
    csize: int
    usize: int
    offset: int


def _zip(
    data: bytes, where: tuple[str, ...], depth: int, budget: Budget
) -> Iterator[Stream | Anomaly | Embedded]:
    entries = _central_directory(data, budget.reach.members)
    if isinstance(entries, str):
        yield Anomaly(where, entries, "low")
        entries = list(_local_headers(data, budget.reach.members))
    names: dict[str, int] = {}
    spans = _Spans()
    refused = 0
    for e in entries:
        chain = (*where, e.name)
        if not budget.member() or budget.left <= 0:
            yield from budget.over(where)
            break
        names[e.name] = names.get(e.name, 0) + 1
        if names[e.name] == 2:
            yield Anomaly(
                chain,
                "duplicate zip member name: loaders and scanners may pick "
                "different copies; every copy is scanned",
                "differential",
            )
        if _is_storage(e.name):
            continue  # raw tensor bytes, never unpickled
        if not spans.add(e):
            continue  # the same bytes, read the same way, were scanned already
        if _no_model(data, e):
            budget.spend(SNIFF_BYTES)
            continue  # its head is no model file: the rest is not inflated
        body = _member(data, e, budget.limit(e.csize))
        encrypted = bool(e.flags & 0x61)
        if isinstance(body, str) or (encrypted and not _plain(body[1], e.crc)):
            refused += 1
            if refused > MAX_REFUSED:
                yield Anomaly(where, f"{MAX_REFUSED} {REFUSED}", "low")
                break
            yield Anomaly(chain, ENCRYPTED if encrypted else str(body), "low")
            continue
        local_name, content = body
        budget.spend(len(content))
        if local_name != e.name:
            yield Anomaly(
                chain,
                f"local header names the member {local_name!r}: the central "
                "directory and the local header disagree",
                "differential",
            )
        if encrypted:
            yield Anomaly(
                chain,
                f"zip flag bits 0x{e.flags:x} (encryption/patched data) on a member that is "
                "not encrypted: older PyTorch readers ignore them and load it",
                "differential",
            )
        elif zlib.crc32(content) != e.crc:
            yield Anomaly(
                chain,
                "CRC mismatch: Python's zipfile refuses the member, PyTorch loads it anyway",
                "differential",
            )
        if e.name.endswith(".pkl"):
            yield Stream(chain, content, 0)
        else:
            yield from pickles_in(content, chain, depth + 1, budget)
    yield from spans.anomalies(where)


ENCRYPTED = "encrypted zip member: neither torch.load nor this scanner can read it, not scanned"


def _plain(content: bytes, crc: int) -> bool:
    """Whether a member flagged as encrypted is in fact plain data a loader that
    ignores the flag would read."""
    return zlib.crc32(content) == crc or sniff(content) in ("pickle", "zip", "npy")


class _Spans:
    """Where zip members' data lies. Members that point at data already read (the
    overlapping entries of zip bombs) are read once; members that partly overlap
    others are read up to ``MAX_OVERLAPS`` times."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._read: set[tuple[int, int, int, bool]] = set()
        self.shared = 0
        self.overlapping = 0

    def add(self, e: _Entry) -> bool:
        """Whether ``e`` is to be read (and count it when it overlaps)."""
        key = (e.offset, e.method, e.csize, e.name.endswith(".pkl"))
        if key in self._read:
            self.shared += 1
            return False
        self._read.add(key)
        start, end = e.offset, e.offset + 30 + max(e.csize, 0)  # at most the member's span
        i = bisect.bisect_right(self._starts, start)
        if (i > 0 and self._ends[i - 1] > start) or (
            i < len(self._starts) and self._starts[i] < end
        ):
            self.overlapping += 1
            return self.overlapping <= MAX_OVERLAPS
        self._starts.insert(i, start)
        self._ends.insert(i, end)
        return True

    def anomalies(self, where: tuple[str, ...]) -> Iterator[Anomaly]:
        if self.shared:
            yield Anomaly(
                where,
                f"{self.shared} zip members point at the data of earlier members "
                "(overlapping entries, a zip-bomb technique): that data was scanned once",
                "low",
            )
        if self.overlapping:
            skipped = max(0, self.overlapping - MAX_OVERLAPS)
            yield Anomaly(
                where,
                f"{self.overlapping} zip members overlap the data of others (a zip-bomb "
                f"technique): {skipped} of them beyond the first {MAX_OVERLAPS} not scanned",
                "high" if skipped else "low",
            )


def zip_by_name(data: bytes) -> dict[str, _Entry] | str:
    """The members of a zip as Python's ``zipfile`` finds them by name (the last
    copy of a name wins), or why its central directory cannot be read."""
    entries = _central_directory(data)
    return entries if isinstance(entries, str) else {e.name: e for e in entries}


def zip_read(data: bytes, e: _Entry, limit: int) -> bytes | str:
    """One member's content, at most ``limit`` bytes of it, or why it cannot be read."""
    if e.flags & 0x1:
        return "it is encrypted"
    body = _member(data, e, min(limit, expansion_limit(e.csize)))
    return body if isinstance(body, str) else body[1]


def _is_storage(name: str) -> bool:
    parts = name.split("/")
    return len(parts) >= 2 and parts[-2] == "data" and parts[-1].isdigit()


def _central_directory(data: bytes, cap: int = MAX_MEMBERS) -> list[_Entry] | str:
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
    for _ in range(min(count, cap + 1)):  # one more, for the member budget to see
        if data[pos : pos + 4] != b"PK\x01\x02" or pos + 46 > len(data):
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


def _local_headers(data: bytes, cap: int = MAX_MEMBERS) -> Iterator[_Entry]:
    """Fallback when the central directory is broken: walk the local headers."""
    pos = data.find(b"PK\x03\x04")
    count = 0
    while pos >= 0 and count <= cap:
        if pos + 30 > len(data):
            return
        (flags, method, _t, _d, crc, csize, usize, nlen, xlen) = struct.unpack(
            "<HHHHIIIHH", data[pos + 6 : pos + 30]
        )
        name = data[pos + 30 : pos + 30 + nlen].decode("utf-8", "replace")
        yield _Entry(name, method, flags, crc, csize, usize, pos)
        count += 1
        pos = data.find(b"PK\x03\x04", pos + 30 + nlen + xlen + max(csize, 0))


def _member(data: bytes, e: _Entry, limit: int) -> tuple[str, bytes] | str:
    """A member's local name and content, or why it cannot be read; ``limit`` is
    how many bytes it may produce."""
    pos = e.offset
    if data[pos : pos + 4] != b"PK\x03\x04" or pos + 30 > len(data):
        return "zip member's local header is missing"
    nlen, xlen = struct.unpack("<HH", data[pos + 26 : pos + 30])
    local_name = data[pos + 30 : pos + 30 + nlen].decode("utf-8", "replace")
    start = pos + 30 + nlen + xlen
    bomb = (
        f"zip member expands more than {MAX_RATIO}x or beyond the file's size budget: "
        "a decompression bomb, not scanned"
    )
    if e.method == 0:
        raw = data[start : start + e.csize]
        return (local_name, raw) if len(raw) <= limit else bomb
    if e.method == 8:
        inflater = zlib.decompressobj(-15)
        try:
            with memoryview(data) as view:  # neither input nor output held twice
                out = _inflate(inflater, view[start : start + e.csize], limit)
        except zlib.error as exc:
            return f"zip member does not inflate ({exc})"
        if out is None:
            return bomb
        if not inflater.eof:  # no loader reads a member whose data ends early
            return "zip member's compressed data ends early: not scanned"
        return local_name, out
    return f"zip compression method {e.method} is not read"


def _no_model(data: bytes, e: _Entry) -> bool:
    """Whether member ``e`` is certainly nothing the walk reads, from its first
    ``SNIFF_BYTES`` bytes alone: a longer, plainly stored or deflated member whose head
    no partial sniff matches, that starts with no pickle opcode nor like a format
    recognised by parsing. A member that fits the head, is a ``.pkl`` or in
    ``READ_WHOLE``, flagged encrypted, or whose head does not inflate is read whole
    (what is wrong with it is then said)."""
    if e.name.endswith((".pkl", *READ_WHOLE)) or e.flags & 0x61 or e.method not in (0, 8):
        return False
    pos = e.offset
    if data[pos : pos + 4] != b"PK\x03\x04" or pos + 30 > len(data):
        return False
    nlen, xlen = struct.unpack("<HH", data[pos + 26 : pos + 30])
    start = pos + 30 + nlen + xlen
    end = start + max(e.csize, 0)
    stored = e.method == 0
    head = bytes(data[start : min(end, start + SNIFF_BYTES + 1)]) if stored else (
        _inflated_head(data, start, end)
    )
    if head is None:
        return False
    if len(head) <= SNIFF_BYTES or head[:1] in _parsed_first():
        return False
    return model_kind(head[:SNIFF_BYTES], partial=True) is None


def _inflated_head(data: bytes, start: int, end: int) -> bytes | None:
    """The first ``SNIFF_BYTES + 1`` bytes the deflated data at ``data[start:end]``
    inflates to (fewer: it is shorter), fed a little at a time; None when it does
    not inflate."""
    inflater = raw_inflater()
    out = b""
    step = 4 * 1024
    try:
        with memoryview(data) as view:
            at = start
            while len(out) <= SNIFF_BYTES and at < end and not inflater.eof:
                pending: Any = view[at : min(end, at + step)]
                at += step
                while pending and len(out) <= SNIFF_BYTES and not inflater.eof:
                    out += inflater.decompress(pending, SNIFF_BYTES + 1 - len(out))
                    pending = inflater.unconsumed_tail
                if pending:  # the head is complete before this chunk was used up
                    break
    except INFLATE_ERRORS:
        return None
    return out


def _isal_zlib() -> Any:
    """ISA-L's zlib (the optional ``isal`` package: its inflate is about 1.7x zlib's
    on the members of jars), or None when it is not installed."""
    try:
        return importlib.import_module("isal.isal_zlib")
    except ImportError:
        return None


_fast_zlib = _isal_zlib()
# what a raw inflater raises on data that does not inflate
INFLATE_ERRORS: tuple[type[Exception], ...] = (
    (zlib.error,) if _fast_zlib is None else (zlib.error, _fast_zlib.error)
)


def raw_inflater() -> Any:
    """A decompressobj for raw deflate data (zip members): ISA-L's when the ``isal``
    package is installed, else zlib's. It raises one of ``INFLATE_ERRORS``."""
    return (_fast_zlib or zlib).decompressobj(-15)


def crc32(data: bytes) -> int:
    """zlib's CRC-32 of ``data`` (ISA-L's when installed: the same value, faster)."""
    return int((_fast_zlib or zlib).crc32(data))


_PARSED_FIRST: bytes | None = None


def _parsed_first() -> bytes:
    """The first bytes a file of a format in ``PARSED_KINDS`` can start with (any
    byte when such a format says none)."""
    global _PARSED_FIRST
    if _PARSED_FIRST is None:
        firsts = [getattr(format_named(k), "first", None) for k in PARSED_KINDS]
        _PARSED_FIRST = (
            bytes(range(256)) if any(f is None for f in firsts)
            else bytes(sorted({b for f in firsts if f for b in f}))
        )
    return _PARSED_FIRST


def _inflate(inflater: Any, raw: memoryview, limit: int) -> bytes | None:
    """What ``inflater`` makes of ``raw``, fed in chunks into one buffer; None past
    ``limit`` bytes."""
    out = io.BytesIO()
    for at in range(0, len(raw), STREAM_CHUNK):
        pending: Any = raw[at : at + STREAM_CHUNK]
        while pending and not inflater.eof:
            out.write(inflater.decompress(pending, limit + 1 - out.tell()))
            if out.tell() > limit:
                return None
            pending = inflater.unconsumed_tail
        if inflater.eof:
            break
    return out.getvalue()


def _seven_zip(
    data: bytes, where: tuple[str, ...], depth: int, budget: Budget
) -> Iterator[Stream | Anomaly | Embedded]:
    """7z members (nullifAI hid its pickles in 7z), after checking the sizes the
    archive declares against the budget and before decompressing anything. Every
    member with content is read, whatever type its attributes claim (7-Zip extracts
    it as a file all the same); one that is not read is reported."""
    try:
        import py7zr
        from py7zr.io import BytesIOFactory
    except ImportError:
        yield Anomaly(where, "7z archive not scanned: py7zr is not installed", "low")
        return
    if (damage := seven_zip_damage(data)) is not None:
        yield Anomaly(where, damage, "low")
        return
    limit = budget.limit(len(data))
    refusal: str | None = None
    escaping: list[str] = []
    listed: list[str] = []
    factory = BytesIOFactory(limit)
    # py7zr parses hostile bytes: any exception it raises means "cannot be read".
    try:
        with (
            view_reader(data) as source,
            py7zr.SevenZipFile(source, mode="r", max_extract_size=limit) as archive,
        ):
            members = [m for m in archive.list() if not m.is_directory or m.uncompressed]
            declared = sum(max(m.uncompressed or 0, 0) for m in members)
            if not all(budget.member() for _ in members):
                left = budget.reach.members
                refusal = f"7z archive has more members than the {left} left: not scanned"
            elif declared > limit:
                refusal = (
                    f"7z archive declares {declared} bytes of content in {len(data)}: it "
                    f"expands more than {MAX_RATIO}x or beyond the size budget, a "
                    "decompression bomb, not scanned"
                )
            else:
                escaping = [m.filename for m in members if escapes(m.filename)]
                listed = [m.filename for m in members if not escapes(m.filename)]
                if listed:
                    archive.extract(targets=listed, factory=factory)
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
    products = factory.products
    for name in dict.fromkeys(listed):
        if name not in products:
            yield Anomaly((*where, name), "7z member was not extracted: not scanned", "low")
    for name, product in products.items():
        product.seek(0)
        body = product.read()
        budget.spend(len(body))
        yield from pickles_in(body, (*where, name), depth + 1, budget)


class _ViewReader(io.RawIOBase):
    """A seekable file over bytes or a memory map, without copying them. Over a map,
    the pages read are let go every ``DROP_BYTES`` (they stay in the page cache): a
    file read front to back is never resident whole."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._pos = 0
        self._map = data if isinstance(data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED") else None
        self._kept = 0  # pages of the map from here on may be resident

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        n = max(0, min(len(out), len(self._view) - self._pos))
        out[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        if self._map is not None and self._pos - self._kept >= DROP_BYTES:
            end = self._pos - self._pos % mmap.PAGESIZE
            self._map.madvise(mmap.MADV_DONTNEED, self._kept, end - self._kept)
            self._kept = end
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        self._kept = min(self._kept, self._pos - self._pos % mmap.PAGESIZE)
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


def seven_zip_damage(data: bytes) -> str | None:
    """Why 7z bytes are not handed to py7zr (it is truncated), if they are not."""
    if len(data) < 32:
        return "7z archive is truncated"
    next_offset, next_size = struct.unpack("<QQ", data[12:28])
    if 32 + next_offset + next_size > len(data):
        return "7z archive is truncated (its header lies past the end)"
    return None


def escapes(name: str) -> bool:
    """Whether an archive member's name is absolute or climbs out with ``..``."""
    text = name.replace("\\", "/")
    return text.startswith("/") or ".." in text.split("/") or (len(text) > 1 and text[1] == ":")
