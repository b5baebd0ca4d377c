"""A bounded reader of binary property lists (``bplist00``, Apple's CFBinaryPList).

Nothing is read ahead: the trailer and offset table are checked when the reader is
made, and each object is decoded only when asked for, by index. Every length and
count is checked against the bytes that exist before anything is allocated, and a
container's references are yielded one by one, never materialised: a plist that
claims billions of objects, or an array of a billion references, costs nothing.
Reference cycles and shared subtrees are the caller's to bound (``plists.py``
expands each container once).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MAGIC = b"bplist00"
TRAILER = struct.Struct(">6xBBQQQ")  # offset size, ref size, objects, top, table offset
MAX_OBJECTS = 1_000_000  # more is not read as a plist (scanned as raw bytes)
_EPOCH = datetime(2001, 1, 1, tzinfo=UTC)


class PlistError(ValueError):
    """The bytes are not a well-formed binary plist (at the object being read)."""


@dataclass(frozen=True)
class UID:
    """An NSKeyedArchiver object reference (marker ``8n``)."""

    value: int


@dataclass(frozen=True)
class Container:
    """An array, set or dict: ``count`` references at ``start`` (a dict: the key
    references, then as many value references)."""

    kind: str  # "array", "set" or "dict"
    start: int
    count: int


Scalar = str | bytes | int | float | bool | None | datetime | UID
Value = Scalar | Container


def is_binary_plist(data: bytes) -> bool:
    """Whether ``data`` starts as a binary plist (version 00)."""
    return bytes(data[:8]) == MAGIC


class BinaryPlist:
    """The objects of one binary plist, decoded on demand."""

    def __init__(self, data: bytes, max_objects: int = MAX_OBJECTS) -> None:
        """Check the header, trailer and offset table; PlistError if they do not hold."""
        if not is_binary_plist(data) or len(data) < 8 + TRAILER.size:
            raise PlistError("no bplist00 header and trailer")
        self.data = data
        end = len(data) - TRAILER.size
        offset_size, ref_size, objects, top, table = TRAILER.unpack_from(data, end)
        if not (1 <= offset_size <= 8 and 1 <= ref_size <= 8):
            raise PlistError(f"offset size {offset_size} or reference size {ref_size}")
        if not 1 <= objects <= max_objects:
            raise PlistError(f"{objects} objects (at most {max_objects} are read)")
        if top >= objects:
            raise PlistError(f"top object {top} of {objects}")
        if table < 8 or table + objects * offset_size > end:
            raise PlistError("offset table outside the file")
        self.offset_size, self.ref_size = offset_size, ref_size
        self.objects, self.top, self.table = objects, top, table

    def offset(self, index: int) -> int:
        """Where object ``index`` starts; PlistError outside the object area."""
        if not 0 <= index < self.objects:
            raise PlistError(f"reference to object {index} of {self.objects}")
        at = self.table + index * self.offset_size
        offset = int.from_bytes(self.data[at : at + self.offset_size], "big")
        if not 8 <= offset < self.table:
            raise PlistError(f"object {index} at offset {offset}, outside the object area")
        return offset

    def value(self, index: int) -> Value:
        """Object ``index``: a scalar, or a Container whose references ``refs`` yields."""
        at = self.offset(index)
        marker = self.data[at]
        kind, info = marker >> 4, marker & 0xF
        if kind == 0x0:
            if info in (0x0, 0xF):
                return None
            if info in (0x8, 0x9):
                return info == 0x9
        elif kind == 0x1 and info <= 4:
            return self._int(at + 1, 1 << info)
        elif kind == 0x2 and info in (2, 3):
            raw = self._bytes(at + 1, 1 << info)
            return float(struct.unpack(">f" if info == 2 else ">d", raw)[0])
        elif marker == 0x33:
            seconds = struct.unpack(">d", self._bytes(at + 1, 8))[0]
            try:
                return _EPOCH + timedelta(seconds=seconds)
            except (OverflowError, ValueError):
                return float(seconds)
        elif kind in (0x4, 0x5, 0x6):
            count, start = self._count(at, info)
            raw = self._bytes(start, count * (2 if kind == 0x6 else 1))
            if kind == 0x4:
                return raw
            return raw.decode("ascii" if kind == 0x5 else "utf-16-be", "replace")
        elif kind == 0x8:
            return UID(self._int(at + 1, info + 1, signed=False))
        elif kind in (0xA, 0xB, 0xC, 0xD):
            count, start = self._count(at, info)
            self._bytes(start, count * self.ref_size * (2 if kind == 0xD else 1))
            name = "array" if kind == 0xA else "dict" if kind == 0xD else "set"
            return Container(name, start, count)
        raise PlistError(f"unknown object marker 0x{marker:02x} at offset {at}")

    def refs(self, container: Container) -> Iterator[int]:
        """The object indices an array or set refers to."""
        for i in range(container.count):
            yield self._ref(container.start, i)

    def entries(self, container: Container) -> Iterator[tuple[int, int]]:
        """A dict's (key, value) object indices."""
        for i in range(container.count):
            yield self._ref(container.start, i), self._ref(container.start, container.count + i)

    def _ref(self, start: int, i: int) -> int:
        at = start + i * self.ref_size
        return int.from_bytes(self.data[at : at + self.ref_size], "big")

    def _count(self, at: int, info: int) -> tuple[int, int]:
        """A length from the marker's low nibble, or from the int object after it."""
        if info != 0xF:
            return info, at + 1
        marker = self._bytes(at + 1, 1)[0]
        if marker >> 4 != 0x1 or marker & 0xF > 3:
            raise PlistError(f"bad length marker 0x{marker:02x} at offset {at + 1}")
        width = 1 << (marker & 0xF)
        count = self._int(at + 2, width, signed=False)
        return count, at + 2 + width

    def _int(self, at: int, width: int, *, signed: bool | None = None) -> int:
        # CF: 1, 2 and 4-byte ints are unsigned, 8 and 16-byte ones signed
        return int.from_bytes(self._bytes(at, width), "big",
                              signed=width >= 8 if signed is None else signed)  # fmt: skip

    def _bytes(self, at: int, size: int) -> bytes:
        if size < 0 or at + size > self.table:
            raise PlistError(f"{size} bytes at offset {at} run past the object area")
        return bytes(self.data[at : at + size])
