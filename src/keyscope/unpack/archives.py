"""Archives as expanders: zip (and everything built on it: .jar .whl .apk .docx …), tar
(plain or gzip/bzip2/xz-compressed) and single-file gzip/bz2/xz, each recognised by its
content. Nothing is extracted: members are read from memory, streamed, each after its
declared size was checked against the budget; names (``..``, absolute paths) are only
shown, never used to touch the file system.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import posixpath
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import replace
from typing import IO, Any, Protocol

from keyscope.model import Skipped
from keyscope.modelfiles.containers import view_reader, zip_by_name, zip_read
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

GZIP, BZ2, XZ = b"\x1f\x8b\x08", b"BZh", b"\xfd7zXZ\x00"
SUFFIXES = {".gz": "", ".gzip": "", ".bz2": "", ".xz": "", ".tgz": ".tar", ".tbz2": ".tar",
            ".tbz": ".tar", ".txz": ".tar"}  # fmt: skip



def member(blob: Blob, name: str, data: bytes) -> Blob:
    """``data`` as a member of ``blob`` named ``name``."""
    return Blob(blob.path, data, origin=(*blob.origin, name), oid=blob.oid)


def too_big(declared: int) -> str | None:
    """Why a member that declares ``declared`` bytes is not read, if it is too big."""
    if declared > MEMBER_BYTES:
        return f"member of {declared} bytes is larger than {MEMBER_BYTES} bytes: not scanned"
    return None


def admit(blob: Blob, name: str, declared: int, budget: Budget) -> tuple[Skipped | None, bool]:
    """May a member declaring ``declared`` bytes be read? ``(None, False)``: read it;
    ``(skipped, False)``: skip this one; ``(skipped, True)``: the budget is spent, stop."""
    refusal = too_big(declared)
    if refusal is not None:
        return Skipped(member_path(blob, name), refusal), False
    spent = budget.spend(declared)
    if spent is not None:
        return Skipped(member_path(blob, name), spent), True
    return None, False


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def read_capped(stream: Readable, cap: int = MEMBER_BYTES) -> bytes | None:
    """At most ``cap`` bytes of ``stream`` read in chunks; None if it holds more."""
    want = min(CHUNK, cap + 1)
    first = stream.read(want)
    if len(first) < want:  # most members fit in one chunk: returned without a copy
        more = stream.read(want - len(first))
        if not more:
            return first
        first += more
    out = bytearray(first)
    while len(out) <= cap:
        chunk = stream.read(min(CHUNK, cap + 1 - len(out)))
        if not chunk:
            return bytes(out)
        out += chunk
    return None


class ZipExpander(Expander):
    """Zip read through its central directory with Python's ``zipfile``."""

    name = "zip"

    def claims(self, blob: Blob) -> bool:
        head = bytes(blob.data[:4])
        return head == b"PK\x03\x04" or (head == b"PK\x05\x06" and len(blob.data) >= 22)

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        try:
            with view_reader(blob.data) as raw, zipfile.ZipFile(raw) as archive:
                infos = archive.infolist()
                overlapping = _overlapping(infos)
                lenient = _LenientReader(blob.data)
                for index, info in enumerate(infos):
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
                if archive.comment and budget.spend(len(archive.comment)) is None:
                    yield member(blob, "<zip comment>", archive.comment)
        except DAMAGED as exc:
            yield Skipped(member_path(blob), f"zip archive cannot be read ({exc})")


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

    def claims(self, blob: Blob) -> bool:
        return is_tar(bytes(blob.data[257:262]))

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        with view_reader(blob.data) as raw:
            yield from tar_members(blob, raw, budget)


def is_tar(magic: bytes) -> bool:
    """Whether the 5 bytes at offset 257 of a tar header are its ``ustar`` magic."""
    return magic == b"ustar"


def tar_members(blob: Blob, stream: IO[bytes], budget: Budget) -> Iterator[Blob | Skipped]:
    """The regular members of the tar in ``stream``, read in one pass."""
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for info in archive:
                name = info.name
                if info.isdir():
                    continue
                if not info.isfile():
                    yield Skipped(member_path(blob, name), _tar_kind(info))
                    continue
                skip, stop = admit(blob, name, info.size, budget)
                if skip is not None:
                    yield skip
                    if stop:
                        return
                    continue
                f = archive.extractfile(info)
                data = b"" if f is None else read_capped(f)
                if data is None:
                    yield Skipped(member_path(blob, name), "tar member is larger than it says")
                    continue
                yield member(blob, name, data)
    except DAMAGED as exc:
        yield Skipped(member_path(blob), f"tar archive cannot be read any further ({exc})")


def _tar_kind(info: tarfile.TarInfo) -> str:
    if info.issym():
        return f"symbolic link member (to {info.linkname!r}): not followed"
    if info.islnk():
        return f"hard link member (to {info.linkname!r}): not followed"
    return f"tar member of type {info.type!r} (device, FIFO …): not scanned"


class CompressedExpander(Expander):
    """A gzip, bzip2 or xz stream: a compressed tar's members, or the one file it holds
    (named after the outer file without its suffix, or ``<data>``)."""

    name = "compressed"

    def claims(self, blob: Blob) -> bool:
        head = bytes(blob.data[:6])
        return (
            head.startswith(GZIP)
            or head == XZ
            or (head.startswith(BZ2) and head[3:4] in b"123456789" and len(head) == 6
                and bytes(blob.data[4:10]) == b"1AY&SY")
        )  # fmt: skip

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        name = inner_name(blob.origin[-1] if blob.origin else blob.path)
        head = bytes(blob.data[:3])
        kind = "gzip" if head == GZIP else "bzip2" if head == BZ2 else "xz"
        try:
            with view_reader(blob.data) as raw, _decompressing(head, raw) as stream:
                tar = is_tar(stream.read(512)[257:262])
            with view_reader(blob.data) as raw, _decompressing(head, raw) as stream:
                if tar:
                    yield from tar_members(blob, stream, budget)
                    return
                data = read_capped(stream)
        except DAMAGED as exc:
            yield Skipped(member_path(blob, name), f"{kind} data cannot be decompressed ({exc})")
            return
        if data is None:
            reason = f"{kind} data unpacks to more than {MEMBER_BYTES} bytes: not scanned"
            yield Skipped(member_path(blob, name), reason)
            return
        spent = budget.spend(len(data))
        if spent is not None:
            yield Skipped(member_path(blob, name), spent)
            return
        yield member(blob, name, data)


def _decompressing(head: bytes, raw: IO[bytes]) -> IO[bytes]:
    if head == GZIP:
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if head == BZ2:
        return bz2.BZ2File(raw)
    return lzma.LZMAFile(raw)


def inner_name(outer: str) -> str:
    """What a compressed file holds: its name without the compression suffix (``.tgz``
    becomes ``.tar``), or ``<data>`` when it has none."""
    base = posixpath.basename(outer.replace("\\", "/"))
    stem, suffix = posixpath.splitext(base)
    if suffix.lower() in SUFFIXES and stem:
        return stem + SUFFIXES[suffix.lower()]
    return "<data>"
