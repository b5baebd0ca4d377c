"""The expanders a scan applies, in order: the first that claims a blob unpacks it.
Adding one: its module in this package and one line in ``EXPANDERS`` (a ``Lazy``
entry, so that its module is imported only when a blob needs it)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from keyscope.sources.interface import Blob
from keyscope.unpack.archives import (
    CompressedExpander,
    PrefixedZipExpander,
    TarExpander,
    ZipExpander,
)
from keyscope.unpack.interface import Expander


@dataclass
class Lazy:
    """An expander named by ``module:Class``, imported when a blob whose first byte it
    admits first reaches it: a scan of text files never loads the readers of images,
    app packages or 7z. ``first`` and ``binary`` repeat the class's own (a test
    checks that they agree)."""

    target: str
    first: bytes | None = None
    binary: bool = False
    _loaded: Expander | None = field(default=None, repr=False)

    def load(self) -> Expander:
        if self._loaded is None:
            module, _, name = self.target.partition(":")
            self._loaded = getattr(importlib.import_module(module), name)()
        return self._loaded


EXPANDERS: list[Expander | Lazy] = [
    ZipExpander(),
    # a saved image or OCI layout is a tar: before TarExpander
    Lazy("keyscope.unpack.images:ImageExpander", binary=True),
    TarExpander(),
    # a .warc.gz is gzip: before CompressedExpander
    Lazy("keyscope.unpack.warc:WarcExpander", first=b"W\x1f"),
    CompressedExpander(),
    Lazy("keyscope.unpack.sevenzip:SevenZipExpander", first=b"7"),
    Lazy("keyscope.unpack.ar:ArExpander", first=b"!"),
    Lazy("keyscope.unpack.notebooks:NotebookExpander", first=b"{\t\n\x0b\x0c\r \xef"),
    Lazy("keyscope.unpack.plists:PlistExpander", first=b"b<\t\n\x0b\x0c\r \xef\xff\xfe"),
    Lazy("keyscope.unpack.macho:MachOExpander", first=b"\xca\xce\xcf\xfe"),
    Lazy("keyscope.unpack.android.dex:DexExpander", first=b"d"),
    Lazy("keyscope.unpack.android.axml:AxmlExpander", first=b"\x03"),
    Lazy("keyscope.unpack.android.arsc:ArscExpander", first=b"\x02"),
    PrefixedZipExpander(),  # a zip at the end of anything: last
]


def expander_for(blob: Blob) -> Expander | None:
    """The first registered expander that claims ``blob``, asking only those whose
    ``first`` admits its first byte, and, for a blob with no NUL byte at its head or
    its tail (text), none that is ``binary``."""
    data = blob.data
    index = data[0] if len(data) else 256
    if data.find(b"\0", 0, 512) < 0 and data.find(b"\0", max(0, len(data) - TAIL)) < 0:
        index += 257
    for entry in _table()[index]:
        expander = entry.load() if isinstance(entry, Lazy) else entry
        if expander.claims(blob):
            return expander
    return None


# How far from its end a binary container's NUL bytes are sure to be: a zip's end
# record and its comment, and the last central directory header before them.
TAIL = 65557 + 46
_cached: tuple[list[Expander | Lazy], int, list[tuple[Expander | Lazy, ...]]] | None = None


def _table() -> list[tuple[Expander | Lazy, ...]]:
    """For each first byte (and 256: an empty blob), the expanders to ask, in
    ``EXPANDERS`` order, then the same for text (257 on); made again when the list is
    replaced or changes length (a test, a plug-in)."""
    global _cached
    if _cached is None or _cached[0] is not EXPANDERS or _cached[1] != len(EXPANDERS):
        table = [
            tuple(e for e in EXPANDERS if e.first is None or (b < 256 and b in e.first))
            for b in range(257)
        ]
        table += [tuple(e for e in row if not e.binary) for row in table]
        _cached = (EXPANDERS, len(EXPANDERS), table)
    return _cached[2]


def expanders() -> list[Expander]:
    """Every registered expander, loaded (for tests and tools that ask each one)."""
    return [e.load() if isinstance(e, Lazy) else e for e in EXPANDERS]
