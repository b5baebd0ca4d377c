"""The compiled resource table (``resources.arsc``): string values by resource name.

Every string value of every configuration lives in the table's global string pool;
the packages' TYPE chunks say which entry (``string/storage_url``: type name and
key name from the package's pools) holds which. Each resource with string values
becomes one member named after it, holding its distinct values (default
configuration and translations, in table order) one per line: a finding reads
``app.apk!/resources.arsc!/string/storage_url:1:1``. String arrays and other map
entries count too. Strings of the pool that no entry names (style spans, entries
that did not decode) follow as the member ``strings``: nothing is left unscanned."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import compress

from keyscope.model import Skipped
from keyscope.sources.interface import Blob
from keyscope.unpack.android.binary import (
    Malformed,
    Output,
    chunks,
    cut_short,
    emit,
    text_lines,
    u8,
    u32,
)
from keyscope.unpack.android.stringpool import STRING_POOL, StringPool, read_pool
from keyscope.unpack.interface import Budget, Expander

MAGIC = b"\x02\x00\x0c\x00"
PACKAGE, TYPE = 0x0200, 0x0201
FLAG_SPARSE, FLAG_OFFSET16 = 0x01, 0x02  # of a TYPE chunk
ENTRY_COMPLEX, ENTRY_COMPACT = 0x0001, 0x0008  # of an entry
STRING_VALUE = 0x03
NONE = 0xFFFFFFFF
_ENTRY = struct.Struct("<HHI")  # ResTable_entry: size, flags, key
_VALUE = struct.Struct("<HBBI")  # Res_value: size, res0, dataType, data
_MAP_VALUE = struct.Struct("<IHBBI")  # ResTable_map: name, then a Res_value


@dataclass
class _Table:
    pool: StringPool
    output: Output
    values: dict[str, dict[str, None]] = field(default_factory=dict)  # name → values
    used: set[int] = field(default_factory=set)  # pool indices some entry holds

    def add(self, name: str, index: int) -> None:
        """String ``index`` of the global pool as a value of resource ``name``."""
        if (text := self.pool.get(index)) is None:
            return
        self.used.add(index)
        seen = self.values.setdefault(name, {})
        if text not in seen:
            self.output.add(len(text))
            seen[text] = None


def decode_arsc(data: bytes, output: Output) -> tuple[list[tuple[str, bytes]], str | None]:
    """The members of the resource table in ``data`` (resource name → its string
    values, then ``strings``) and why part of it was not decoded (None if all was).
    Malformed when the global string pool cannot be read."""
    if bytes(data[:4]) != MAGIC:
        raise Malformed("not a resources.arsc table")
    declared = u32(data, 4)
    end = min(declared, len(data))
    table = _Table(StringPool([]), output)
    problem = cut_short("resources.arsc", declared, data)
    try:
        for pos, kind, header, size in chunks(data, 12, end):
            if kind == STRING_POOL and not table.pool.strings:
                table.pool = read_pool(data, pos, output)
            elif kind == PACKAGE:
                _package(data, pos, header, size, table)
    except Malformed as exc:
        problem = f"resources.arsc: {exc}"
    if not table.pool.strings:
        raise Malformed(problem or "resources.arsc: no global string pool")
    if table.pool.bad:
        bad = f"{table.pool.bad} strings of its pool could not be read"
        problem = f"{problem}; {bad}" if problem else f"resources.arsc: {bad}"
    members = [(name, text_lines(values)) for name, values in table.values.items()]
    rest = [s for i, s in enumerate(table.pool.strings) if s and i not in table.used]
    if rest:
        members.append(("strings", text_lines(rest)))
    return members, problem


def _package(data: bytes, pos: int, header: int, size: int, table: _Table) -> None:
    if header < 284:
        raise Malformed(f"package chunk at {pos} has a short header ({header})")
    type_pool, key_pool = pos + u32(data, pos + 268), pos + u32(data, pos + 276)
    id_offset = u32(data, pos + 284) if header >= 288 else 0
    types = keys = StringPool([])
    for at, kind, sub_header, sub_size in chunks(data, pos + header, pos + size):
        if kind == STRING_POOL and at == type_pool:
            types = read_pool(data, at, table.output)
        elif kind == STRING_POOL and at == key_pool:
            keys = read_pool(data, at, table.output)
        elif kind == TYPE:
            type_id = u8(data, at + 8)
            type_name = types.get(type_id - 1 - id_offset) or types.get(type_id - 1)
            _type(data, at, sub_header, sub_size, type_name or f"type{type_id}", keys, table)


def _type(
    data: bytes, at: int, header: int, size: int, type_name: str, keys: StringPool, table: _Table
) -> None:
    """The entries of one TYPE chunk (one configuration of one resource type)."""
    flags, count, start = u8(data, at + 9), u32(data, at + 12), u32(data, at + 16)
    width = 2 if flags & FLAG_OFFSET16 and not flags & FLAG_SPARSE else 4
    if header + width * count > size or start > size:
        raise Malformed(f"type chunk at {at} claims {count} entries in {size} bytes")
    for i, offset in _offsets(data, at + header, count, flags):
        entry = at + start + offset
        if entry + 8 > at + size:
            raise Malformed(f"entry {i} of the type chunk at {at} lies outside it")
        _entry(data, entry, at + size, type_name, keys, table)


def _offsets(data: bytes, index: int, count: int, flags: int) -> Iterator[tuple[int, int]]:
    """(entry index, byte offset) of the entries present in a TYPE chunk's offset
    array of ``count`` items at ``index`` (already checked to lie inside the chunk),
    read in one call: most of its items say "no entry in this configuration"."""
    if flags & FLAG_SPARSE:  # (index, offset / 4) pairs
        pairs = struct.unpack_from(f"<{2 * count}H", data, index)
        yield from zip(pairs[0::2], (4 * o for o in pairs[1::2]), strict=True)
    elif flags & FLAG_OFFSET16:  # offset / 4, 0xFFFF for none
        half = struct.unpack_from(f"<{count}H", data, index)
        for i, o in compress(enumerate(half), map((0xFFFF).__ne__, half)):
            yield i, 4 * o
    else:
        full = struct.unpack_from(f"<{count}I", data, index)
        yield from compress(enumerate(full), map(NONE.__ne__, full))


def _entry(data: bytes, entry: int, end: int, type_name: str, keys: StringPool,
           table: _Table) -> None:  # fmt: skip
    """One entry (``entry + 8 <= end`` checked by the caller): its string values
    added under its name; other values (numbers, references, colours) are skipped."""
    size, flags, key = _ENTRY.unpack_from(data, entry)
    table.output.add(0)  # counts the record: the deadline is checked every few thousand
    if flags & ENTRY_COMPACT:  # key:2 flags:2 (type in the high byte) data:4
        if flags >> 8 == STRING_VALUE:
            table.add(_name(type_name, keys, size), key)
        return
    if flags & ENTRY_COMPLEX:  # a map: parent:4 count:4, then count × (name:4 value:8)
        count = u32(data, entry + 12)
        first = entry + size
        if first + 12 * count > end:
            raise Malformed(f"map entry {_name(type_name, keys, key)} runs past its chunk")
        for m in range(first, first + 12 * count, 12):
            _, _, _, kind, value = _MAP_VALUE.unpack_from(data, m)
            if kind == STRING_VALUE:
                table.add(_name(type_name, keys, key), value)
        return
    if entry + size + 8 > end:
        raise Malformed(f"entry {_name(type_name, keys, key)} runs past its chunk")
    _, _, kind, value = _VALUE.unpack_from(data, entry + size)
    if kind == STRING_VALUE:
        table.add(_name(type_name, keys, key), value)


def _name(type_name: str, keys: StringPool, key: int) -> str:
    """``string/storage_url``; the key's number when the key pool lacks it."""
    return f"{type_name}/{keys.get(key) or key}"


class ArscExpander(Expander):
    """``resources.arsc``: one member per resource with string values, by name."""

    name = "android-resources"
    first = MAGIC[:1]

    def claims(self, blob: Blob) -> bool:
        return bytes(blob.data[:4]) == MAGIC and len(blob.data) >= 12

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        try:
            members, problem = decode_arsc(blob.data, Output(len(blob.data), budget))
        except Malformed as exc:
            yield from emit(blob, budget, (), str(exc))
            return
        yield from emit(blob, budget, members, problem)
