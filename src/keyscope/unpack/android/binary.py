"""Bounded reading of untrusted little-endian binary formats (DEX, AXML, ARSC).

Every read checks its offset against the data; whatever is out of bounds raises
:class:`Malformed` with the reason, which the expanders turn into a Skipped entry.
:class:`Output` caps what one decoded file may grow to, so that a small file whose
records all point at one large string cannot expand without bound."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Iterator

from keyscope.model import Skipped
from keyscope.sources.interface import Blob
from keyscope.unpack.archives import MEMBER_BYTES, member
from keyscope.unpack.interface import Budget, member_path

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
GROWTH = 64  # decoded bytes per input byte (plus SLACK), at most MEMBER_BYTES
SLACK = 64 * 1024


class Malformed(Exception):
    """The bytes do not hold what their format says; ``str(exc)`` is the reason."""


def u8(data: bytes, offset: int) -> int:
    """The byte at ``offset``."""
    if not 0 <= offset < len(data):
        raise Malformed(f"offset {offset} is past the end ({len(data)} bytes)")
    return data[offset]


def u16(data: bytes, offset: int) -> int:
    """The little-endian uint16 at ``offset``."""
    if not 0 <= offset <= len(data) - 2:
        raise Malformed(f"offset {offset} is past the end ({len(data)} bytes)")
    return int(_U16.unpack_from(data, offset)[0])


def u32(data: bytes, offset: int) -> int:
    """The little-endian uint32 at ``offset``."""
    if not 0 <= offset <= len(data) - 4:
        raise Malformed(f"offset {offset} is past the end ({len(data)} bytes)")
    return int(_U32.unpack_from(data, offset)[0])


def chunks(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """The ``ResChunk_header``s from ``start`` to ``end``: (offset, type, header size,
    size), each inside ``end`` and no smaller than its header."""
    pos = start
    while pos + 8 <= end:
        kind, header, size = u16(data, pos), u16(data, pos + 2), u32(data, pos + 4)
        if header < 8 or size < header or pos + size > end:
            raise Malformed(f"chunk 0x{kind:04x} at {pos} has a bad size ({header}, {size})")
        yield pos, kind, header, size
        pos += size


class Output:
    """What a decoder has produced from ``source_size`` input bytes, capped in size,
    and in time by the budget's seconds (checked every few thousand records)."""

    def __init__(self, source_size: int, budget: Budget | None = None) -> None:
        self.limit = min(MEMBER_BYTES, GROWTH * source_size + SLACK)
        self.size = 0
        self.records = 0
        self.seconds = budget.limits.seconds if budget is not None else None
        self.deadline = budget.started + budget.limits.seconds if budget is not None else None

    def add(self, size: int) -> None:
        """Count one record of ``size`` bytes (plus its separator); Malformed once
        over the cap or past the deadline."""
        self.size += size + 1
        self.records += 1
        if self.size > self.limit:
            raise Malformed(f"decodes to more than {self.limit} bytes: the rest not decoded")
        late = self.deadline is not None and not self.records & 0xFFF
        if late and time.monotonic() > (self.deadline or 0.0):
            raise Malformed(f"took more than {self.seconds:g} s to decode: the rest not decoded")


def cut_short(what: str, declared: int, data: bytes) -> str | None:
    """Why ``data`` is incomplete when its header declares ``declared`` bytes."""
    if declared <= len(data):
        return None
    return f"{what} cut short: {len(data)} of the {declared} bytes it declares"


def emit(
    blob: Blob, budget: Budget, members: Iterable[tuple[str, bytes]], problem: str | None
) -> Iterator[Blob | Skipped]:
    """``members`` (name, bytes) as member blobs, each spent from ``budget``, then
    ``problem`` (why the rest was not decoded) as a Skipped entry on ``blob``."""
    for name, data in members:
        spent = budget.spend(len(data))
        if spent is not None:
            yield Skipped(member_path(blob, name), spent)
            return
        yield member(blob, name, data)
    if problem is not None:
        yield Skipped(member_path(blob), problem)


def text_lines(lines: Iterable[str]) -> bytes:
    """One string per line as UTF-8: line breaks inside a string shown as ``\\n``
    and ``\\r`` (so line N is string N), lone surrogates replaced."""
    out = "\n".join(s.replace("\r", "\\r").replace("\n", "\\n") for s in lines)
    return out.encode("utf-8", "replace")
