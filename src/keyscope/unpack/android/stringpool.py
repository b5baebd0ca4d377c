"""``ResStringPool`` (chunk type 0x0001), the string table of Android binary XML and
of ``resources.arsc``: UTF-8 (flag 0x100) or UTF-16 strings, each bounds-checked.
A string that does not decode is left empty and counted, the others are kept."""

from __future__ import annotations

from dataclasses import dataclass

from keyscope.unpack.android.binary import Malformed, Output, u8, u16, u32

STRING_POOL = 0x0001
UTF8_FLAG = 0x100


@dataclass(frozen=True)
class StringPool:
    """The strings of one pool, in index order; ``bad``: how many did not decode."""

    strings: list[str]
    bad: int = 0

    def get(self, index: int) -> str | None:
        """String ``index``, or None when the pool has no such string."""
        return self.strings[index] if 0 <= index < len(self.strings) else None


def read_pool(data: bytes, start: int, output: Output) -> StringPool:
    """The pool whose chunk starts at ``start``; Malformed if its header is unusable."""
    if u16(data, start) != STRING_POOL:
        raise Malformed(f"no string pool at {start}")
    header, size = u16(data, start + 2), u32(data, start + 4)
    end = start + size
    if header < 28 or size < header or end > len(data):
        raise Malformed(f"string pool at {start} has a bad size ({header}, {size})")
    count, flags, strings_start = u32(data, start + 8), u32(data, start + 16), u32(data, start + 20)
    if count > (size - header) // 4:
        raise Malformed(f"string pool at {start} claims {count} strings in {size} bytes")
    utf8 = bool(flags & UTF8_FLAG)
    base = start + strings_start
    strings: list[str] = []
    bad = 0
    for i in range(count):
        offset = base + u32(data, start + header + 4 * i)
        try:
            if not start + header <= offset < end:
                raise Malformed(f"string {i} lies outside its pool")
            text = _utf8_at(data, offset, end) if utf8 else _utf16_at(data, offset, end)
        except Malformed:
            text, bad = "", bad + 1
        output.add(len(text))
        strings.append(text)
    return StringPool(strings, bad)


def _utf8_at(data: bytes, offset: int, end: int) -> str:
    _, pos = _length8(data, offset)  # the length in UTF-16 units
    length, pos = _length8(data, pos)
    stop = pos + length
    if stop > end or (stop < end and data[stop] != 0):
        # aapt wrote lengths of long strings modulo 0x8000: the terminator decides
        stop = data.find(b"\0", pos, end)
        if stop < 0:
            raise Malformed(f"string at {offset} has no end")
    return data[pos:stop].decode("utf-8", "replace")


def _utf16_at(data: bytes, offset: int, end: int) -> str:
    length = u16(data, offset)
    pos = offset + 2
    if length & 0x8000:
        length = ((length & 0x7FFF) << 16) | u16(data, pos)
        pos += 2
    stop = pos + 2 * length
    if stop > end:
        raise Malformed(f"string at {offset} runs past its pool")
    return data[pos:stop].decode("utf-16-le", "replace")


def _length8(data: bytes, offset: int) -> tuple[int, int]:
    first = u8(data, offset)
    if first & 0x80:
        return ((first & 0x7F) << 8) | u8(data, offset + 1), offset + 2
    return first, offset + 1
