"""Archives as expanders: zip (and everything built on it: .jar .whl .apk .docx …), tar
(ustar, GNU or old v7; plain or gzip/bzip2/xz/zstd-compressed) and single-file
gzip/bz2/xz/zstd, each recognised by its content. Nothing is extracted: members are read
from memory, streamed, each after its declared size was checked against the budget;
names (``..``, absolute paths) are only shown, never used to touch the file system. The
bytes no member covers (a self-extractor's stub, data appended to a zip or tar) are one
more member, ``(outside members)``, so they are scanned too.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import posixpath
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import IO, Any, Protocol

from keyscope.model import Skipped
from keyscope.modelfiles.containers import (
    INFLATE_ERRORS,
    crc32,
    raw_inflater,
    view_reader,
    zip_by_name,
    zip_read,
)
from keyscope.sources.interface import Blob
from keyscope.unpack.interface import Budget, Expander, member_path

MEMBER_BYTES = 64 * 1024 * 1024  # one member, unpacked (as --max-file-size's default)
CHUNK = 1024 * 1024
# what hostile or damaged archive bytes make the readers raise
DAMAGED = (
    tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError,
    zlib.error, lzma.LZMAError, ValueError, NotImplementedError, RuntimeError,
    KeyError, UnicodeDecodeError,
)  # fmt: skip

GZIP, BZ2, XZ, ZSTD = b"\x1f\x8b\x08", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd"
SUFFIXES = {".gz": "", ".gzip": "", ".bz2": "", ".xz": "", ".zst": "", ".zstd": "",
            ".tgz": ".tar", ".tbz2": ".tar", ".tbz": ".tar", ".txz": ".tar",
            ".tzst": ".tar"}  # fmt: skip
# one compressed stream may unpack to this much, then to at most ``ratio`` times its size
RATIO_FLOOR = 16 * 1024 * 1024
OUTSIDE = "(outside members)"


def member(blob: Blob, name: str, data: bytes) -> Blob:
    """``data`` as a member of ``blob`` named ``name``."""
    return Blob(blob.path, data, origin=(*blob.origin, name), oid=blob.oid, image=blob.image,
                captured=blob.captured)


def spent_members(
    blob: Blob, members: Iterable[tuple[str, bytes]], budget: Budget
) -> Iterator[Blob | Skipped]:
    """``members`` (name, bytes) of ``blob`` as long as the budget lasts; the one that
    exceeds it is a Skipped entry with the reason, and the rest are not read."""
    for name, data in members:
        if (spent := budget.spend(len(data))) is not None:
            yield Skipped(member_path(blob, name), spent)
            return
        yield member(blob, name, data)


def too_big(declared: int) -> str | None:
    """Why a member that declares ``declared`` bytes is not read, if it is too big."""
    if declared > MEMBER_BYTES:
        return f"member of {declared} bytes is larger than {MEMBER_BYTES} bytes: not scanned"
    return None


def admit(blob: Blob, name: str, declared: int, budget: Budget) -> tuple[Skipped | None, bool]:
    """May a member declaring ``declared`` bytes be read? ``(None, False)``: read it;
    ``(skipped, False)``: skip this one; ``(skipped, True)``: the budget is spent, stop.
    A member too big to read still counts as one member (and the clock still runs)."""
    refusal = too_big(declared)
    spent = budget.spend(0 if refusal is not None else declared)
    if spent is not None:
        return Skipped(member_path(blob, name), spent), True
    if refusal is not None:
        return Skipped(member_path(blob, name), refusal), False
    return None, False


def outside(blob: Blob, spans: Sequence[tuple[int, int]]) -> Blob | None:
    """The bytes of ``blob`` that no span ``(start, stop)`` covers (a self-extractor's
    stub, data appended after the archive, gaps between members), one line per run,
    as the member ``(outside members)``; None when there are none but zero padding."""
    data = blob.data
    runs: list[bytes] = []
    pos = 0
    for start, stop in sorted(spans):
        if start > pos:
            runs.append(bytes(data[pos:start]))
        pos = max(pos, stop)
    runs.append(bytes(data[pos:]))
    kept = [run for run in runs if run.count(0) != len(run)]
    return member(blob, OUTSIDE, b"\n".join(kept)) if kept else None


class OutOfTime(Exception):
    """Raised by a :func:`timed` stream when the budget's time is up."""


class _Timed(io.RawIOBase):
    """A stream that stops (``OutOfTime``) once the budget's time is up, checked at
    every read: a reader skipping a huge member inside a library ends in time too."""

    def __init__(self, stream: Readable, budget: Budget) -> None:
        self._stream = stream
        self._budget = budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if (late := self._budget.overtime()) is not None:
            raise OutOfTime(late)
        out = memoryview(buffer).cast("B")
        chunk = self._stream.read(len(out))
        out[: len(chunk)] = chunk
        return len(chunk)


def timed(stream: Readable, budget: Budget) -> IO[bytes]:
    """``stream`` read through the budget's clock (see ``_Timed``), unbuffered: a
    damaged stream fails where its reader reaches the damage, not a buffer earlier."""
    return _Timed(stream, budget)  # type: ignore[return-value]


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def read_capped(stream: Readable, cap: int = MEMBER_BYTES) -> bytes | None:
    """At most ``cap`` bytes of ``stream`` read in chunks; None if it holds more. A
    member that fits one chunk is returned as read; a longer one is gathered in a
    ``BytesIO``, whose ``getvalue`` hands its buffer over (held once, not twice)."""
    want = min(CHUNK, cap + 1)
    first = stream.read(want)
    if len(first) < want:  # most members fit in one chunk: returned without a copy
        more = stream.read(want - len(first))
        if not more:
            return first
        first += more
    out = io.BytesIO()
    out.write(first)
    del first  # held once: in ``out`` only
    while out.tell() <= cap:
        chunk = stream.read(min(CHUNK, cap + 1 - out.tell()))
        if not chunk:
            return out.getvalue()
        out.write(chunk)
    return None


class ZipExpander(Expander):
    """Zip read through its central directory with Python's ``zipfile``; a blob that
    is one piece of a large zip (``Blob.part``) yields only the members of its piece."""

    name = "zip"
    first: bytes | None = b"P"

    def claims(self, blob: Blob) -> bool:
        head = bytes(blob.data[:4])
        return head == b"PK\x03\x04" or (head == b"PK\x05\x06" and len(blob.data) >= 22)

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        spans: list[tuple[int, int]] | None = None
        try:
            with view_reader(blob.data) as raw, zipfile.ZipFile(raw) as archive:
                infos = archive.infolist()
                first, end = blob.part[:2] if blob.part else (0, len(infos))
                # the comment and the bytes outside members come with the last piece
                last = end >= len(infos)
                if last:
                    spans = _zip_spans(blob.data, infos, archive.start_dir)
                overlapping = _overlapping(infos)
                lenient = _LenientReader(blob.data)
                for index in range(first, min(end, len(infos))):
                    info = infos[index]
                    if info.is_dir():
                        continue
                    name = info.filename
                    refusal = _zip_refusal(info, index in overlapping)
                    if refusal is not None:
                        yield Skipped(member_path(blob, name), refusal)
                        continue
                    if info.flag_bits & 0x1:  # plain data flagged encrypted is read
                        if (plain := lenient.read(info)) is None:
                            encrypted = "encrypted zip member: not scanned"
                            yield Skipped(member_path(blob, name), encrypted)
                            continue
                        if (spent := budget.spend(len(plain))) is not None:
                            yield Skipped(member_path(blob, name), spent)
                            return
                        yield member(blob, name, plain)
                        continue
                    skip, stop = admit(blob, name, info.file_size, budget)
                    if skip is not None:
                        yield skip
                        if stop:
                            return
                        continue
                    try:
                        data = inflated(blob.data, info)
                        if data is None:  # not plainly readable: zipfile says why
                            with archive.open(info) as f:
                                data = read_capped(f)
                    except DAMAGED as exc:
                        data = lenient.read(info)
                        if data is None:
                            reason = f"zip member cannot be read ({exc})"
                            yield Skipped(member_path(blob, name), reason)
                            continue
                    if data is None:  # zipfile stops at the declared size: never here
                        yield Skipped(member_path(blob, name), "zip member is larger than it says")
                        continue
                    yield member(blob, name, data)
                if last and archive.comment and budget.spend(len(archive.comment)) is None:
                    yield member(blob, "<zip comment>", archive.comment)
        except DAMAGED as exc:
            if blob.origin[-1:] != (OUTSIDE,):  # a leftover header there: bytes, no note
                yield Skipped(member_path(blob), f"zip archive cannot be read ({exc})")
        # what no member covers is scanned too (all of it, by the worker, when the zip
        # could not be read: it yielded no member)
        if spans is not None and (rest := outside(blob, spans)) is not None:
            if (spent := budget.spend(len(rest.data))) is not None:
                yield Skipped(member_path(blob, OUTSIDE), spent)
            else:
                yield rest


def inflated(data: bytes, info: zipfile.ZipInfo) -> bytes | None:
    """A stored or deflated member's content read straight from ``data`` (no copy of
    its compressed bytes, no file object), when it reads plainly: a local header where
    the directory says, exactly the declared size, and the CRC it declares. None for
    anything else: ``zipfile`` then reads it, or says what is wrong with it."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return None
    if info.flag_bits & 0x61:  # encrypted, patched: zipfile's refusals stand
        return None
    pos = info.header_offset
    if bytes(data[pos : pos + 4]) != b"PK\x03\x04":
        return None
    lengths = bytes(data[pos + 26 : pos + 30])
    start = pos + 30 + int.from_bytes(lengths[:2], "little") + int.from_bytes(lengths[2:], "little")
    end = start + info.compress_size
    if end > len(data):
        return None
    with memoryview(data) as view, view[start:end] as raw:
        if info.compress_type == zipfile.ZIP_STORED:
            out = bytes(raw)
        else:
            try:
                # max_length 0 would mean "all of it": an empty member gets 1
                out = raw_inflater().decompress(raw, max(info.file_size, 1))
            except INFLATE_ERRORS:
                return None
    if len(out) != info.file_size or crc32(out) != info.CRC:
        return None
    return out


class PrefixedZipExpander(ZipExpander):
    """A zip behind a prefix (a self-extractor's stub, a launch script, a CRX header),
    found by its end record; the prefix is the ``(outside members)`` member. Registered
    last: a tar or an image whose last member is a zip is read as what it starts as."""

    first = None  # the prefix may start with anything
    binary = True  # its central directory holds NUL bytes, within TAIL of the end

    def claims(self, blob: Blob) -> bool:
        return _prefixed(blob.data)


class _LenientReader:
    """Members ``zipfile`` refuses, read the way PyTorch's loader reads them
    (``modelfiles``' reader): despite a CRC or local-name mismatch, or despite an
    encryption flag when the data is plain (its CRC matches)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        # zip_by_name's answer (its entry type is private to modelfiles/), parsed once
        self._entries: dict[str, Any] | str | None = None

    def read(self, info: zipfile.ZipInfo) -> bytes | None:
        """The member's content, or None if this reader cannot read it either."""
        if self._entries is None:
            self._entries = zip_by_name(self.data)
        entries = self._entries
        entry = None if isinstance(entries, str) else entries.get(info.filename)
        if entry is None or entry.offset != info.header_offset:
            return None
        flagged = bool(entry.flags & 0x1)
        body = zip_read(self.data, replace(entry, flags=entry.flags & ~0x1), MEMBER_BYTES)
        if isinstance(body, str) or (flagged and zlib.crc32(body) != entry.crc):
            return None
        return body


def _end_record(data: bytes) -> int:
    """Where the zip's end-of-central-directory record starts (as ``zipfile`` finds it:
    in the last 64 KiB, the comment's room), or -1."""
    return data.rfind(b"PK\x05\x06", max(0, len(data) - 65557))  # no copy: ~25 µs


def _prefixed(data: bytes) -> bool:
    """Whether ``data`` ends with a zip behind a prefix (a self-extractor's stub, a
    launch script): an end record whose central directory is where it says."""
    # A central directory always holds NUL bytes (its compression methods): text,
    # which has none, is passed over at memchr speed before the record is searched.
    if data.find(b"\0", max(0, len(data) - 65557 - 46)) < 0:
        return False
    end = _end_record(data)
    if end < 0 or end + 22 > len(data):
        return False
    count = int.from_bytes(bytes(data[end + 10 : end + 12]), "little")
    size = int.from_bytes(bytes(data[end + 12 : end + 16]), "little")
    start = end - size
    return count > 0 and start > 0 and bytes(data[start : start + 4]) == b"PK\x01\x02"


def _zip_spans(
    data: bytes, infos: list[zipfile.ZipInfo], start_dir: int
) -> list[tuple[int, int]]:
    """Where the zip's records lie: each member's local header, data and descriptor,
    and the central directory through the end record and its comment."""
    spans = []
    for info in infos:
        start = info.header_offset
        stop = start + 30
        if bytes(data[start : start + 4]) == b"PK\x03\x04":
            lengths = bytes(data[start + 26 : start + 30])
            stop += int.from_bytes(lengths[:2], "little") + int.from_bytes(lengths[2:], "little")
            stop += info.compress_size
            if info.flag_bits & 0x8:  # a data descriptor, with or without its signature
                stop += 4 if bytes(data[stop : stop + 4]) == b"PK\x07\x08" else 0
                stop += 20 if max(info.compress_size, info.file_size) >= 0xFFFFFFFF else 12
        spans.append((start, stop))
    end = _end_record(data)
    if end >= 0:
        comment = int.from_bytes(bytes(data[end + 20 : end + 22]), "little")
        spans.append((start_dir, end + 22 + comment))
    return spans


def _overlapping(infos: list[zipfile.ZipInfo]) -> set[int]:
    """The members (by index) whose data lies inside another member's: the overlapping
    entries of a zip bomb."""
    spans = sorted(
        (info.header_offset, info.header_offset + 30 + info.compress_size, i)
        for i, info in enumerate(infos)
        if not info.is_dir()
    )
    out: set[int] = set()
    end = -1
    for start, stop, i in spans:
        if start < end:
            out.add(i)
        end = max(end, stop)
    return out


def _zip_refusal(info: zipfile.ZipInfo, overlapping: bool) -> str | None:
    if overlapping:
        return "zip member overlaps another member's data (a zip-bomb technique): not scanned"
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_ISLNK(mode):
        return "symbolic link member: not followed"
    return None


class TarExpander(Expander):
    """A plain tar (POSIX or GNU), read as a stream."""

    name = "tar"
    binary = True  # a header's fields end in NUL bytes (is_tar_header requires them)

    def claims(self, blob: Blob) -> bool:
        return is_tar_header(bytes(blob.data[:512]))

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        with view_reader(blob.data) as raw:
            end = yield from tar_members(blob, raw, budget)
        # data appended after the end of the archive is scanned too
        if end is not None and (rest := outside(blob, [(0, end)])) is not None:
            if (spent := budget.spend(len(rest.data))) is not None:
                yield Skipped(member_path(blob, OUTSIDE), spent)
            else:
                yield rest


def is_tar(magic: bytes) -> bool:
    """Whether the 5 bytes at offset 257 of a tar header are its ``ustar`` magic."""
    return magic == b"ustar"


def is_tar_header(block: bytes) -> bool:
    """Whether ``block`` (a file's first 512 bytes) is a tar header: the ``ustar``
    magic, or, for an old (v7) tar that has none, a name, a known type and a checksum
    that adds up."""
    if len(block) < 512:
        return False
    if is_tar(block[257:262]):
        return True
    if any(block[257:265]) or not block[0] or block[156:157] not in b"01234567\0":
        return False
    try:
        checksum = int(block[148:156].strip(b" \0"), 8)
    except ValueError:
        return False
    unsigned = sum(block[:148]) + sum(block[156:]) + 8 * 32
    signed = unsigned - 256 * sum(1 for b in block[:148] + block[156:] if b > 127)
    return checksum in (unsigned, signed)


def tar_members(
    blob: Blob, stream: Readable, budget: Budget
) -> Generator[Blob | Skipped, None, int | None]:
    """The regular members of the tar in ``stream``, read in one pass; returns where
    the archive's last member ends (None if it was not read to its end). A sparse
    member is read as its data extents only, never inflated with its holes."""
    try:
        with tarfile.open(fileobj=timed(stream, budget), mode="r|") as archive:
            for info in archive:
                archive.members.clear()  # type: ignore[attr-defined]  # tarfile keeps each header
                name = info.name
                if info.isdir():
                    continue
                if not info.isfile():
                    yield Skipped(member_path(blob, name), _tar_kind(info))
                    continue
                sparse: list[tuple[int, int]] | None = info.sparse  # type: ignore[assignment]
                extents = sparse if sparse is not None else [(0, info.size)]
                skip, stop = admit(blob, name, sum(size for _, size in extents), budget)
                if skip is not None:
                    yield skip
                    if stop:
                        return None
                    continue
                f = archive.extractfile(info)
                data = b"" if f is None else _read_extents(f, extents)
                if data is None:
                    yield Skipped(member_path(blob, name), "tar member is larger than it says")
                    continue
                yield member(blob, name, data)
            return archive.offset
    except OutOfTime as exc:
        yield Skipped(member_path(blob), str(exc))
    except DAMAGED as exc:
        yield Skipped(member_path(blob), f"tar archive cannot be read any further ({exc})")
    return None


def _read_extents(f: IO[bytes], extents: list[tuple[int, int]]) -> bytes | None:
    """The data extents ``(offset, size)`` of a tar member, one after the other."""
    if len(extents) == 1 and extents[0][0] == 0:
        return read_capped(f)
    raw: Any = getattr(f, "raw", f)  # tarfile's own reader: it seeks in a stream, forward
    out = bytearray()
    for offset, size in extents:
        raw.seek(offset)
        out += raw.read(size)
    return bytes(out)


def _tar_kind(info: tarfile.TarInfo) -> str:
    if info.issym():
        return f"symbolic link member (to {info.linkname!r}): not followed"
    if info.islnk():
        return f"hard link member (to {info.linkname!r}): not followed"
    return f"tar member of type {info.type!r} (device, FIFO …): not scanned"


class CompressedExpander(Expander):
    """A gzip, bzip2, xz or zstd stream: a compressed tar's members, or the one file it
    holds (named after the outer file without its suffix, or ``<data>``), read to at
    most ``MEMBER_BYTES`` and, past ``RATIO_FLOOR``, to the budget's ratio."""

    name = "compressed"
    first = b"\x1f\xfd\x28BPQRSTUVWXYZ[\\]^_"  # gzip, xz, zstd, bzip2, skippable zstd

    def claims(self, blob: Blob) -> bool:
        head = bytes(blob.data[:6])
        return (
            head.startswith(GZIP)
            or head == XZ
            or head.startswith(ZSTD)
            or (head[:1] in b"PQRSTUVWXYZ[\\]^_" and head[1:4] == b"\x2a\x4d\x18")  # zstd skippable
            or (head.startswith(BZ2) and head[3:4] in b"123456789" and len(head) == 6
                and bytes(blob.data[4:10]) == b"1AY&SY")
        )  # fmt: skip

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        name = inner_name(blob.origin[-1] if blob.origin else blob.path)
        head = bytes(blob.data[:4])
        kind = _kind(head)
        cap = min(MEMBER_BYTES, max(RATIO_FLOOR, budget.limits.ratio * len(blob.data)))
        try:
            with view_reader(blob.data) as raw, _decompressing(kind, raw) as stream:
                tar = is_tar_header(stream.read(512))
            with view_reader(blob.data) as raw, _decompressing(kind, raw) as stream:
                if tar:
                    yield from tar_members(blob, stream, budget)
                    return
                declared = _declared(kind, blob.data)
                data = None if declared > cap else read_capped(timed(stream, budget), cap)
        except OutOfTime as exc:
            yield Skipped(member_path(blob, name), str(exc))
            return
        except DAMAGED as exc:
            yield Skipped(member_path(blob, name), f"{kind} data cannot be decompressed ({exc})")
            return
        if data is None:
            ratio = f" ({budget.limits.ratio}x its size)" if cap < MEMBER_BYTES else ""
            said = f", as it says itself ({declared} bytes)" if declared > cap else ""
            reason = f"{kind} data unpacks to more than {cap} bytes{ratio}{said}: not scanned"
            yield Skipped(member_path(blob, name), reason)
            return
        spent = budget.spend(len(data))
        if spent is not None:
            yield Skipped(member_path(blob, name), spent)
            return
        yield member(blob, name, data)


def _declared(kind: str, data: bytes) -> int:
    """The least a single compressed stream unpacks to, by what it says of itself (0
    when it says nothing): a gzip's ISIZE trailer (its last member's size modulo 2**32,
    so never more than the whole) or a zstd first frame's content size. It may lie
    small (reading then stops at the cap), never large: a bomb made by the tools is
    refused before one byte is unpacked."""
    if kind == "gzip" and len(data) >= 18:
        return int.from_bytes(bytes(data[-4:]), "little")
    if kind == "zstd" and (zstd := _zstd()) is not None:
        try:
            size = zstd.get_frame_info(bytes(data[:18])).decompressed_size
        except zstd.ZstdError:
            return 0
        return int(size or 0)
    return 0


def _kind(head: bytes) -> str:
    if head.startswith(GZIP):
        return "gzip"
    if head.startswith(BZ2):
        return "bzip2"
    return "xz" if head.startswith(XZ[:4]) else "zstd"


def _decompressing(kind: str, raw: IO[bytes]) -> IO[bytes]:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if kind == "bzip2":
        return bz2.BZ2File(raw)
    if kind == "xz":
        return lzma.LZMAFile(raw)
    return _zstd_file(raw)


def _zstd() -> Any:
    """Python 3.14's ``compression.zstd``, or its backport (imported when first needed),
    or None."""
    try:
        from compression import zstd  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        try:
            from backports import zstd  # type: ignore[no-redef,unused-ignore]
        except ImportError:
            return None
    return zstd


def _zstd_file(raw: IO[bytes]) -> IO[bytes]:
    """A zstd reader over every frame, streamed (a frame need not declare its size);
    the window stays at zstd's default limit (128 MiB), as ``zstd -d`` without ``--long``."""
    if (zstd := _zstd()) is None:
        raise NotImplementedError("no zstd module: install backports.zstd")
    return zstd.ZstdFile(raw)  # type: ignore[no-any-return]


def inner_name(outer: str) -> str:
    """What a compressed file holds: its name without the compression suffix (``.tgz``
    becomes ``.tar``), or ``<data>`` when it has none."""
    base = posixpath.basename(outer.replace("\\", "/"))
    stem, suffix = posixpath.splitext(base)
    if suffix.lower() in SUFFIXES and stem:
        return stem + SUFFIXES[suffix.lower()]
    return "<data>"
