"""Dalvik executables (``classes*.dex``): the string table as text.

Every ``string_ids`` entry points at a ULEB128 length and MUTF-8 bytes ending in NUL;
they are decoded (``C0 80`` as U+0000, surrogate pairs joined) and written one per
line, so line N of the member ``strings`` is ``string_ids[N-1]``: the constants of
the Java/Kotlin code (``static final String``, literals, BuildConfig fields) as a
file ``classes.dex!/strings`` whose findings have a line and a column."""

from __future__ import annotations

import re
from collections.abc import Iterator

from keyscope.model import Skipped
from keyscope.sources.interface import Blob
from keyscope.unpack.android.binary import Malformed, Output, cut_short, emit, text_lines, u32
from keyscope.unpack.interface import Budget, Expander

HEADER_SIZE = 0x70
_MAGIC = re.compile(rb"dex\n0[0-9][0-9]\0")
_SURROGATE = re.compile("[\ud800-\udfff]")


def is_dex(data: bytes) -> bool:
    """``dex\\n0NN\\0`` and room for a header."""
    return len(data) >= HEADER_SIZE and _MAGIC.match(bytes(data[:8])) is not None


def dex_strings(data: bytes, output: Output) -> tuple[list[str], str | None]:
    """The strings of the DEX file in ``data``, in index order, and why the rest
    was not read (None when all were). Malformed when none can be read."""
    if u32(data, 0x28) != 0x12345678:
        raise Malformed("DEX file is not little-endian (endian_tag): not decoded")
    count, ids = u32(data, 0x38), u32(data, 0x3C)
    if ids + 4 * count > len(data):
        raise Malformed(f"DEX string_ids ({count} at {ids}) run past the end")
    strings: list[str] = []
    bad = 0
    problem = None
    try:
        for i in range(count):
            text = _string_at(data, u32(data, ids + 4 * i), output)
            if text is None:
                text, bad = "", bad + 1
            strings.append(text)
    except Malformed as exc:
        problem = f"DEX string table: {exc}"
    if bad:
        problem = f"{bad} DEX strings could not be read" + (f"; {problem}" if problem else "")
    file_size = u32(data, 0x20)
    problem = problem or cut_short("DEX file", file_size, data)
    if problem is None and data[4:7] >= b"041" and file_size < len(data):
        problem = f"DEX container: only its first DEX file ({file_size} bytes) was read"
    return strings, problem


def _string_at(data: bytes, offset: int, output: Output) -> str | None:
    """The ``string_data_item`` at ``offset``, or None if it is not one; the bytes
    looked at are counted in ``output`` (so that hostile offsets cannot make the
    search for terminators quadratic)."""
    pos = offset
    for _ in range(5):  # the ULEB128 length in UTF-16 units: skipped, the NUL ends it
        if pos >= len(data):
            return None
        more = data[pos] & 0x80
        pos += 1
        if not more:
            break
    else:
        return None
    end = data.find(b"\0", pos, pos + output.limit - output.size + 1)
    output.add((len(data) if end < 0 else end) - pos)
    return None if end < 0 else mutf8(data[pos:end])


def mutf8(raw: bytes) -> str:
    """Modified UTF-8 as text: ``C0 80`` is U+0000, supplementary characters come as
    two encoded surrogates; what does not decode is replaced."""
    if raw.isascii():
        return raw.decode("ascii")
    try:
        text = raw.replace(b"\xc0\x80", b"\0").decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return raw.replace(b"\xc0\x80", b"\0").decode("utf-8", "replace")
    if _SURROGATE.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


class DexExpander(Expander):
    """``classes*.dex``: its string table as the member ``strings``, one per line."""

    name = "dex"
    first = b"d"

    def claims(self, blob: Blob) -> bool:
        return is_dex(blob.data)

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        try:
            strings, problem = dex_strings(blob.data, Output(len(blob.data), budget))
        except Malformed as exc:
            yield from emit(blob, budget, (), str(exc))
            return
        yield from emit(blob, budget, [("strings", text_lines(strings))], problem)
