"""Source maps (revision 3): the original files a bundle was built from
(``sourcesContent``) and where a bundle's line and column came from (``mappings``,
Base64 VLQ, decoded here). Read from untrusted JSON, within caps."""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field

MAP_BYTES = 64 * 1024 * 1024
MAX_SEGMENTS = 10_000_000
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64 = {c: i for i, c in enumerate(_ALPHABET)}


@dataclass(frozen=True)
class Original:
    """A place in an original source file: its name, 1-based line and column."""

    source: str
    line: int
    column: int


@dataclass
class SourceMap:
    """A parsed map: source names (``sourceRoot`` applied), their contents where the
    map has them, and the mappings, decoded when first asked."""

    sources: list[str]
    contents: list[str | None]
    mappings: str
    _lines: list[tuple[list[int], list[tuple[int, int, int]]]] | None = field(
        default=None, repr=False
    )

    def original(self, line: int, column: int) -> Original | None:
        """Where 1-based ``line`` and 0-based ``column`` of the generated file came from
        (the nearest mapped segment at or before it on that line)."""
        lines = self._decoded()
        if not 0 < line <= len(lines):
            return None
        columns, targets = lines[line - 1]
        i = bisect.bisect_right(columns, column) - 1
        if i < 0:
            return None
        source, orig_line, orig_column = targets[i]
        if not 0 <= source < len(self.sources):
            return None
        return Original(self.sources[source], orig_line + 1, orig_column + 1 + column - columns[i])

    def _decoded(self) -> list[tuple[list[int], list[tuple[int, int, int]]]]:
        if self._lines is None:
            self._lines = decode_mappings(self.mappings)
        return self._lines


def parse_map(data: bytes) -> SourceMap | str:
    """The map in ``data``, or why it is not one keyscope reads."""
    if len(data) > MAP_BYTES:
        return f"source map of more than {MAP_BYTES} bytes: not read"
    text = data.lstrip()
    if text.startswith(b")]}'"):  # the XSSI guard some servers put first
        text = text.split(b"\n", 1)[-1]
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return "source map is not JSON"
    if not isinstance(doc, dict):
        return "source map is not a JSON object"
    if "sections" in doc:
        return "indexed source maps (sections) are not read: the bundle is scanned as it is"
    sources = doc.get("sources")
    mappings = doc.get("mappings", "")
    if not isinstance(sources, list) or not isinstance(mappings, str):
        return "source map without sources or mappings"
    root = doc.get("sourceRoot") if isinstance(doc.get("sourceRoot"), str) else ""
    names = [f"{root.rstrip('/')}/{s}" if root and isinstance(s, str) else str(s) for s in sources]
    raw = doc.get("sourcesContent")
    contents: list[str | None] = [None] * len(names)
    if isinstance(raw, list):
        for i, c in enumerate(raw[: len(names)]):
            contents[i] = c if isinstance(c, str) else None
    return SourceMap(names, contents, mappings)


def decode_mappings(mappings: str) -> list[tuple[list[int], list[tuple[int, int, int]]]]:
    """Per generated line: the segments' generated columns (sorted) and, for each, the
    (source index, original line, original column), all 0-based. Fields are relative
    to the previous segment, the generated column to the previous one on its line;
    segments of one field (unmapped) and malformed ones are passed over."""
    out: list[tuple[list[int], list[tuple[int, int, int]]]] = []
    source = orig_line = orig_column = 0
    count = 0
    for line_text in mappings.split(";"):
        column = 0
        pairs: list[tuple[int, tuple[int, int, int]]] = []
        for segment in line_text.split(","):
            if not segment:
                continue
            count += 1
            if count > MAX_SEGMENTS:
                break
            values = vlq(segment)
            if not values:
                continue
            column += values[0]
            if len(values) >= 4:
                source += values[1]
                orig_line += values[2]
                orig_column += values[3]
                pairs.append((column, (source, orig_line, orig_column)))
        pairs.sort(key=lambda p: p[0])
        out.append(([p[0] for p in pairs], [p[1] for p in pairs]))
    return out


def vlq(segment: str) -> list[int]:
    """The signed integers of one Base64 VLQ segment (empty when malformed)."""
    values: list[int] = []
    value = shift = 0
    for char in segment:
        digit = _B64.get(char)
        if digit is None or shift > 60:
            return []
        value += (digit & 31) << shift
        if digit & 32:
            shift += 5
            continue
        values.append(-(value >> 1) if value & 1 else value >> 1)
        value = shift = 0
    return values if shift == 0 else []
