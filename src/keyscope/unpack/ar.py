"""ar archives as an expander: Debian packages (``.deb``, ``.udeb``: ``debian-binary``,
``control.tar.*``, ``data.tar.*``, each compressed tar unpacked in turn) and static
libraries (``.a``), recognised by the ``!<arch>`` magic. Read from memory; GNU (``//``
name table) and BSD (``#1/N``) long names are resolved; a header that does not parse
ends the archive with a skipped entry, keeping the members before it.
"""

from __future__ import annotations

from collections.abc import Iterator

from keyscope.model import Skipped
from keyscope.sources.interface import Blob
from keyscope.unpack.archives import OUTSIDE, admit, member, outside
from keyscope.unpack.interface import Budget, Expander, member_path

MAGIC = b"!<arch>\n"
HEADER = 60


class ArExpander(Expander):
    """An ar archive (Debian package, static library): its members, in order."""

    name = "ar"
    first = b"!"

    def claims(self, blob: Blob) -> bool:
        return bytes(blob.data[:8]) == MAGIC

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        data = blob.data
        pos = len(MAGIC)
        spans = [(0, pos)]
        long_names = b""
        while pos + HEADER <= len(data):
            header = bytes(data[pos : pos + HEADER])
            try:
                if header[58:60] != b"`\n":
                    raise ValueError("no header terminator")
                size = int(header[48:58].decode("ascii").strip() or "0")
                raw_name = header[:16].decode("utf-8", "replace").rstrip(" ")
            except ValueError as exc:
                yield Skipped(member_path(blob), f"ar archive cannot be read any further ({exc})")
                return
            start, end = pos + HEADER, pos + HEADER + size
            spans.append((pos, end + (end % 2)))
            pos = end + (end % 2)
            if end > len(data):
                reason = f"ar member declares {size} bytes past the end of the archive"
                yield Skipped(member_path(blob, raw_name), reason)
                return
            if raw_name == "//":  # GNU: the table of long names
                long_names = bytes(data[start:end])
                continue
            name, start = _name(raw_name, long_names, data, start)
            skip, stop = admit(blob, name, max(0, end - start), budget)
            if skip is not None:
                yield skip
                if stop:
                    return
                continue
            yield member(blob, name, bytes(data[start:end]))
        if (rest := outside(blob, spans)) is not None:
            if (spent := budget.spend(len(rest.data))) is not None:
                yield Skipped(member_path(blob, OUTSIDE), spent)
            else:
                yield rest


def _name(raw: str, long_names: bytes, data: bytes, start: int) -> tuple[str, int]:
    """A member's name and where its data starts: GNU ``name/`` and ``/123`` (an offset
    into the long-name table), BSD ``#1/N`` (the name is the data's first N bytes)."""
    if raw in ("/", "/SYM64/"):
        return "(symbol table)", start
    if raw.startswith("#1/") and raw[3:].isdigit():
        n = int(raw[3:])
        return bytes(data[start : start + n]).rstrip(b"\0").decode("utf-8", "replace"), start + n
    if raw.startswith("/") and raw[1:].isdigit():
        offset = int(raw[1:])
        end = long_names.find(b"/\n", offset)
        text = long_names[offset : end if end >= 0 else len(long_names)]
        return text.decode("utf-8", "replace"), start
    return raw[:-1] if raw.endswith("/") else raw, start
