"""A small reader for the protobuf wire format, for hostile input.

Model formats such as ONNX and TensorFlow's SavedModel are protobuf messages. The
scanner reads them without the protobuf runtime and without their schemas: a message
is a sequence of (field number, wire type, value) triples, and the callers know which
field numbers they care about. Every read is bounds-checked, length-delimited values
are zero-copy ``memoryview`` slices (a length can never make the reader allocate),
and a shared :class:`Budget` caps the number of fields a whole scan may visit, so a
crafted file can neither exhaust memory nor keep the scanner busy for long.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

VARINT = 0
I64 = 1
LEN = 2
I32 = 5

MAX_FIELD_NUMBER = (1 << 29) - 1

Value = int | memoryview


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


class BudgetExceeded(WireError):
    """Reading stopped because the field budget was spent."""


class Budget:
    """How many more fields may be read, shared by every message of one file."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, n: int = 1) -> None:
        self.left -= n
        if self.left < 0:
            raise BudgetExceeded(f"stopped after {self.limit} protobuf fields")


def view(data: bytes | bytearray | memoryview) -> memoryview:
    """A flat, byte-addressed view of ``data`` (no copy)."""
    mv = data if isinstance(data, memoryview) else memoryview(data)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


def read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than ten bytes")


def fields(
    data: bytes | bytearray | memoryview, budget: Budget | None = None
) -> Iterator[tuple[int, int, Value]]:
    """Each field of one message, in file order: varints and fixed-width values as
    ints, length-delimited values as memoryview slices. Raises :class:`WireError` at
    the first malformed field (after yielding the good ones before it)."""
    buf = view(data)
    pos, end = 0, len(buf)
    while pos < end:
        if budget is not None:
            budget.spend()
        key, pos = read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0 or number > MAX_FIELD_NUMBER:
            raise WireError(f"field number {number} is out of range")
        value: Value
        if wire == VARINT:
            value, pos = read_varint(buf, pos, end)
        elif wire == LEN:
            n, pos = read_varint(buf, pos, end)
            if n > end - pos:
                raise WireError(f"field {number} claims {n} bytes, {end - pos} remain")
            value = buf[pos : pos + n]
            pos += n
        elif wire == I64:
            if pos + 8 > end:
                raise WireError("truncated 64-bit field")
            value = int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        elif wire == I32:
            if pos + 4 > end:
                raise WireError("truncated 32-bit field")
            value = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        else:
            # Groups (3, 4) are deprecated and unused by the formats read here.
            raise WireError(f"wire type {wire} in field {number}")
        yield number, wire, value


def as_bytes(value: Value, limit: int = 1 << 16) -> bytes:
    """A length-delimited value as bytes, cut at ``limit``."""
    if isinstance(value, int):
        raise WireError("expected a length-delimited field, found a number")
    return bytes(value[:limit])


def as_text(value: Value, limit: int = 1 << 16) -> str:
    """A length-delimited value decoded as UTF-8 (bad bytes replaced), cut at ``limit``."""
    return as_bytes(value, limit).decode("utf-8", "replace")


def as_message(value: Value) -> memoryview:
    """A length-delimited value that holds a nested message."""
    if isinstance(value, int):
        raise WireError("expected a nested message, found a number")
    return value


def length_fields(
    items: Iterator[tuple[int, int, Value]], wanted: Collection[int]
) -> dict[int, list[memoryview]]:
    """The length-delimited fields numbered in ``wanted``, by number, in stream order
    (strings, bytes and nested messages); other fields are skipped."""
    out: dict[int, list[memoryview]] = {n: [] for n in wanted}
    for number, wire, value in items:
        if wire == LEN and number in out:
            out[number].append(as_message(value))
    return out


def last_text(values: list[memoryview], limit: int) -> str:
    """A string field as protobuf reads it: the last occurrence wins ("" if none)."""
    return as_text(values[-1], limit) if values else ""


def top_level(
    data: bytes | bytearray | memoryview,
    wire_types: dict[int, int],
    max_fields: int,
    partial: bool = False,
) -> dict[int, int] | None:
    """For sniffing: how often each field occurs when ``data`` is exactly one message
    made only of the given field numbers with the given wire types; None when it is
    not. Reads at most ``max_fields`` fields and never descends into values. With
    ``partial``, ``data`` is only the head of a file: a last field that runs past its
    end is counted, not refused."""
    buf = view(data)
    pos, end = 0, len(buf)
    counts: dict[int, int] = {}
    try:
        for _ in range(max_fields):
            if pos >= end:
                return counts
            key, pos = read_varint(buf, pos, end)
            number, wire = key >> 3, key & 7
            if wire_types.get(number) != wire:
                return None
            counts[number] = counts.get(number, 0) + 1
            if wire == VARINT:
                _, pos = read_varint(buf, pos, end)
            elif wire == LEN:
                n, pos = read_varint(buf, pos, end)
                pos += n
            else:
                pos += 8 if wire == I64 else 4
            if pos > end:
                return counts if partial else None
    except WireError:
        return counts if partial and counts else None
    return None
