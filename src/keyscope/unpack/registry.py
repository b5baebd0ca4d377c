"""The expanders a scan applies, in order: the first that claims a blob unpacks it.
Adding one: its module in this package and one line in ``EXPANDERS``."""

from __future__ import annotations

from keyscope.sources.interface import Blob
from keyscope.unpack.android.arsc import ArscExpander
from keyscope.unpack.android.axml import AxmlExpander
from keyscope.unpack.android.dex import DexExpander
from keyscope.unpack.ar import ArExpander
from keyscope.unpack.archives import (
    CompressedExpander,
    PrefixedZipExpander,
    TarExpander,
    ZipExpander,
)
from keyscope.unpack.images import ImageExpander
from keyscope.unpack.interface import Expander
from keyscope.unpack.macho import MachOExpander
from keyscope.unpack.notebooks import NotebookExpander
from keyscope.unpack.plists import PlistExpander
from keyscope.unpack.sevenzip import SevenZipExpander
from keyscope.unpack.warc import WarcExpander

EXPANDERS: list[Expander] = [
    ZipExpander(),
    ImageExpander(),  # a saved image or OCI layout is a tar: before TarExpander
    TarExpander(),
    WarcExpander(),  # a .warc.gz is gzip: before CompressedExpander
    CompressedExpander(),
    SevenZipExpander(),
    ArExpander(),
    NotebookExpander(),
    PlistExpander(),
    MachOExpander(),
    DexExpander(),
    AxmlExpander(),
    ArscExpander(),
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
    for expander in _table()[index]:
        if expander.claims(blob):
            return expander
    return None


# How far from its end a binary container's NUL bytes are sure to be: a zip's end
# record and its comment, and the last central directory header before them.
TAIL = 65557 + 46
_cached: tuple[list[Expander], int, list[tuple[Expander, ...]]] | None = None


def _table() -> list[tuple[Expander, ...]]:
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
