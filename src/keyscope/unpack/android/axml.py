"""Android binary XML (``AndroidManifest.xml``, compiled ``res/**/*.xml``) as XML text.

The ``RES_XML_TYPE`` chunk holds a string pool (UTF-8 or UTF-16) and a stream of
namespace, element and text chunks; they are written back as the member ``decoded``:
one start tag per line, each attribute on a line of its own, so a finding in
``<meta-data android:value="…">`` points at its line. Typed values are shown as
aapt shows them (``@0x7f020001`` for a resource reference). When the chunk stream is
damaged, what was decoded is kept and the pool's strings follow as the member
``strings`` (one per line), with a Skipped entry saying why."""

from __future__ import annotations

import struct
from collections.abc import Iterator

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
    u16,
    u32,
)
from keyscope.unpack.android.stringpool import STRING_POOL, StringPool, read_pool
from keyscope.unpack.interface import Budget, Expander

MAGIC = b"\x03\x00\x08\x00"
START_NAMESPACE, END_NAMESPACE = 0x0100, 0x0101
START_ELEMENT, END_ELEMENT, CDATA = 0x0102, 0x0103, 0x0104
NONE = 0xFFFFFFFF
MAX_INDENT = 32  # levels shown as indentation; deeper elements stay at this one


class _Document:
    """The XML text being written, its size counted in ``output``."""

    def __init__(self, output: Output) -> None:
        self.lines = ['<?xml version="1.0" encoding="utf-8"?>']
        self.output = output
        self.pool = StringPool([])
        self.prefixes: dict[str, str] = {}  # namespace URI → prefix
        self.pending: list[tuple[str, str]] = []  # xmlns declarations for the next tag
        self.depth = 0

    def line(self, text: str) -> None:
        indent = "  " * min(self.depth, MAX_INDENT)
        self.output.add(len(indent) + len(text))
        self.lines.append(indent + text)

    def string(self, index: int) -> str:
        if index == NONE:
            return ""
        found = self.pool.get(index)
        return f"#{index}" if found is None else found

    def qualified(self, ns: int, name: int) -> str:
        local = self.string(name) or f"attr{name}"
        prefix = self.prefixes.get(self.string(ns)) if ns != NONE else None
        return f"{prefix}:{local}" if prefix else local



_TEXT = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_ATTR = {**_TEXT, "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def escape(text: str) -> str:
    """Text escaped for an XML text node (as ``xml.sax.saxutils.escape``, whose module
    pulls in urllib and http at import: too much for every scan's start)."""
    return "".join(_TEXT.get(c, c) for c in text) if any(c in text for c in "&<>") else text


def quoteattr(value: str) -> str:
    """``value`` escaped and quoted as an XML attribute value (as
    ``xml.sax.saxutils.quoteattr``)."""
    value = "".join(_ATTR.get(c, c) for c in value)
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    return '"' + value.replace('"', "&quot;") + '"'


def decode_axml(data: bytes, output: Output) -> tuple[str, StringPool, str | None]:
    """The XML text of the binary XML in ``data``, its string pool, and why the rest
    of the tree was not decoded (None when all was). Malformed when not even the
    pool reads."""
    if bytes(data[:4]) != MAGIC:
        raise Malformed("not Android binary XML")
    declared = u32(data, 4)
    end = min(declared, len(data))  # a size past the end: read what is there
    doc = _Document(output)
    problem = cut_short("binary XML", declared, data)
    try:
        for pos, kind, header, size in chunks(data, 8, end):
            if kind == STRING_POOL and not doc.pool.strings:
                doc.pool = read_pool(data, pos, output)
            elif kind == START_NAMESPACE:
                prefix, uri = doc.string(u32(data, pos + 16)), doc.string(u32(data, pos + 20))
                doc.prefixes[uri] = prefix
                doc.pending.append((prefix, uri))
            elif kind == START_ELEMENT:
                _start(data, pos + header, pos + size, doc)
            elif kind == END_ELEMENT:
                doc.depth = max(doc.depth - 1, 0)
                tag = doc.qualified(u32(data, pos + header), u32(data, pos + header + 4))
                doc.line(f"</{tag}>")
            elif kind == CDATA:
                doc.line(escape(doc.string(u32(data, pos + header))))
    except Malformed as exc:
        problem = f"binary XML: {exc}"
    if not doc.pool.strings and problem is not None:
        raise Malformed(problem)
    return "\n".join(doc.lines) + "\n", doc.pool, problem


def _start(data: bytes, body: int, end: int, doc: _Document) -> None:
    """One start tag (``ResXMLTree_attrExt`` at ``body``) and its attributes."""
    tag = doc.qualified(u32(data, body), u32(data, body + 4))
    first, step, count = u16(data, body + 8), u16(data, body + 10), u16(data, body + 12)
    if count and (step < 20 or body + first + step * count > end):
        raise Malformed(f"element <{tag}> has attributes past its chunk")
    doc.line(f"<{tag}")
    doc.depth += 1
    for prefix, uri in doc.pending:
        doc.line(f"xmlns:{prefix}={quoteattr(uri)}" if prefix else f"xmlns={quoteattr(uri)}")
    doc.pending = []
    for i in range(count):
        at = body + first + i * step
        name = doc.qualified(u32(data, at), u32(data, at + 4))
        raw = u32(data, at + 8)
        value = doc.string(raw) if raw != NONE else typed_value(data, at + 12, doc.pool)
        doc.line(f"{name}={quoteattr(value)}")
    doc.lines[-1] += ">"


def typed_value(data: bytes, at: int, pool: StringPool) -> str:
    """The ``Res_value`` at ``at`` as aapt shows it."""
    kind, value = u8(data, at + 3), u32(data, at + 4)
    if kind == 0x03:
        found = pool.get(value)
        return f"#{value}" if found is None else found
    if kind in (0x01, 0x07):
        return f"@0x{value:08x}"
    if kind == 0x02:
        return f"?0x{value:08x}"
    if kind == 0x04:
        return repr(struct.unpack("<f", struct.pack("<I", value))[0])
    if kind == 0x10:
        return str(value - (1 << 32) if value & 0x80000000 else value)
    if kind == 0x12:
        return "true" if value else "false"
    if 0x1C <= kind <= 0x1F:
        return f"#{value:08x}"
    if kind == 0x00:
        return ""
    return f"0x{value:08x}"


class AxmlExpander(Expander):
    """Android binary XML: decoded to XML text, the member ``decoded``."""

    name = "android-xml"
    first = MAGIC[:1]

    def claims(self, blob: Blob) -> bool:
        return bytes(blob.data[:4]) == MAGIC and len(blob.data) >= 16

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        try:
            text, pool, problem = decode_axml(blob.data, Output(len(blob.data), budget))
        except Malformed as exc:
            yield from emit(blob, budget, (), str(exc))
            return
        members = [("decoded", text.encode("utf-8", "replace"))]
        if problem is not None:  # the tree broke off: every string of the pool too
            members.append(("strings", text_lines(pool.strings)))
        if pool.bad:
            bad = f"{pool.bad} strings of its pool could not be read"
            problem = f"{problem}; {bad}" if problem else f"binary XML: {bad}"
        yield from emit(blob, budget, members, problem)
