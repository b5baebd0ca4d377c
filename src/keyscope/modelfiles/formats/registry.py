"""The one list of model formats keyscope knows. Its order decides sniff precedence;
``sniff``, the kinds without pickles and the structural checks all derive from it.
Adding a format: its module in this package, and one line in ``FORMATS``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyscope.modelfiles.formats import (
    archives,
    compressed,
    gguf,
    hdf5,
    onnx,
    pickles,
    safetensors,
    savedmodel,
    tflite,
)
from keyscope.modelfiles.formats.spec import HEAD, ModelFormat

if TYPE_CHECKING:
    from keyscope.modelfiles.structured import StructuredIssue

FORMATS: list[ModelFormat] = [
    archives.ZIP,
    archives.SEVEN_ZIP,
    archives.NPY,
    compressed.GZIP,
    compressed.BZ2,
    compressed.XZ,
    compressed.ZLIB,
    gguf.GGUF,
    hdf5.HDF5,
    tflite.TFLITE,
    pickles.PICKLE,
    archives.TAR,
    pickles.PICKLE0,  # no magic: after every format that has one
    savedmodel.SAVED_MODEL_TEXT,
    onnx.ONNX,
    savedmodel.SAVED_MODEL,
    safetensors.SAFETENSORS,
]


def sniff(data: bytes, partial: bool = False) -> str | None:
    """The format by content: the name of the first format in ``FORMATS`` whose sniff
    matches, None for anything else. With ``partial``, ``data`` is only the head of
    a larger file (the formats recognised by parsing, ONNX and SavedModel, then
    accept a message cut short)."""
    head = bytes(data[:HEAD])
    for fmt in _candidates(head[0] if head else None):
        if fmt.sniff(data, head, partial):
            return fmt.name
    return None


_by_first: tuple[tuple[ModelFormat, ...], dict[int | None, list[ModelFormat]]] = ((), {})


def _candidates(first: int | None) -> list[ModelFormat]:
    """The formats, in ``FORMATS`` order, whose sniff can match a file starting with
    this byte (None: an empty file). The table follows ``FORMATS`` when it changes."""
    global _by_first
    formats = tuple(FORMATS)
    if formats != _by_first[0]:
        table: dict[int | None, list[ModelFormat]] = {
            b: [f for f in formats if f.first is None or b in f.first] for b in range(256)
        }
        table[None] = [f for f in formats if f.first is None]
        _by_first = (formats, table)
    return _by_first[1][first]


def format_named(name: str | None) -> ModelFormat | None:
    """The registered format of that name (a ``sniff`` result), if any."""
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    return None


def holds_pickles(name: str | None) -> bool:
    """Whether a file of this kind may hold pickles (unknown kinds may)."""
    fmt = format_named(name)
    return fmt is None or fmt.holds_pickles


def structured_issues(name: str | None, data: bytes) -> list[StructuredIssue]:
    """The structural check of this kind on ``data``; [] for a kind without one."""
    fmt = format_named(name)
    return [] if fmt is None or fmt.check is None else fmt.check(data)


def format_names() -> frozenset[str]:
    """Every registered format (what ``sniff`` may return)."""
    return frozenset(fmt.name for fmt in FORMATS)


def structured_kinds() -> frozenset[str]:
    """The registered formats that hold no pickles: checked structurally only."""
    return frozenset(fmt.name for fmt in FORMATS if not fmt.holds_pickles)
