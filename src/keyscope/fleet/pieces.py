"""Large web archives in pieces: a WARC file whose records are gzip-compressed one by
one (Common Crawl's) is cut at record boundaries into byte ranges of about
``split_bytes`` each, and each range is a task of its own. A range starts with a
record's gzip member, so it is itself a web archive: the worker reads it as one blob
named after the whole file, and its findings carry the same path and record origins
as the whole file's would. Plain (uncompressed) WARC files are not cut."""

from __future__ import annotations

import itertools
import mmap
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from keyscope.sources.interface import Blob, Skipped, Source, SourceOptions, Unit, WorkerContext
from keyscope.unpack.warc import MAGIC, is_warc

DEFAULT_SPLIT_BYTES = 128 << 20  # compressed: about eight tasks per Common Crawl file
WINDOW = 1 << 20  # bytes searched for a record's start at a time
GZIP_MEMBER = b"\x1f\x8b\x08"


@dataclass(frozen=True)
class Piece:
    """Bytes ``start``..``end`` of the web archive ``target`` (``index`` of ``count``)."""

    target: str
    start: int
    end: int
    index: int
    count: int

    @property
    def name(self) -> str:
        return f"{self.target}#bytes={self.start}-{self.end}"


def warc_pieces(target: str, split_bytes: int) -> list[Piece] | None:
    """``target`` cut into pieces when it is a gzip-per-record web archive larger than
    ``split_bytes``; None otherwise (it is scanned whole)."""
    if split_bytes <= 0:
        return None
    try:
        size = os.path.getsize(target)
        if size <= split_bytes or not os.path.isfile(target):
            return None
        with open(target, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data[:3] != GZIP_MEMBER or not is_warc(data[:4096]):
                return None
            cuts = [0]
            while cuts[-1] + split_bytes < size:
                start = _record_start(data, cuts[-1] + split_bytes)
                if start is None:
                    break
                cuts.append(start)
    except (OSError, ValueError):
        return None  # scanned whole: the scan says what is wrong with it
    cuts.append(size)
    count = len(cuts) - 1
    if count < 2:
        return None
    return [Piece(target, a, b, i, count) for i, (a, b) in enumerate(itertools.pairwise(cuts))]


def _record_start(data: mmap.mmap, offset: int) -> int | None:
    """The first offset at or after ``offset`` where a gzip member holding a WARC
    record's start begins; None when there is none before the end."""
    at = offset
    while at < len(data):
        found = data.find(GZIP_MEMBER, at, at + WINDOW)
        if found < 0:
            at += WINDOW - len(GZIP_MEMBER)
            continue
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(
                data[found : found + 65536], len(MAGIC))  # fmt: skip
        except zlib.error:
            head = b""
        if head == MAGIC:
            return found
        at = found + 1
    return None


@dataclass(frozen=True)
class PieceUnit:
    """One piece read in the worker: the range's bytes as a blob named after the file."""

    piece: Piece

    def read(self, ctx: WorkerContext) -> Iterator[Blob | Skipped]:
        p = self.piece
        try:
            with open(p.target, "rb") as f:
                f.seek(p.start)
                data = f.read(p.end - p.start)
        except OSError as exc:
            yield Skipped(p.name, f"could not be read ({exc.strerror or type(exc).__name__})")
            return
        if len(data) != p.end - p.start:
            yield Skipped(p.name, "the file is shorter than when it was cut (changed?)")
            return
        yield Blob(path=p.target, data=data)


class PieceSource(Source):
    """Claims the piece's file (asked before the registry's sources): one unit."""

    name = "warc-piece"

    def __init__(self, options: SourceOptions, piece: Piece) -> None:
        super().__init__(options)
        self.piece = piece
        self.taken = False

    def claim(self, root: str) -> bool:
        if root != self.piece.target or self.taken:
            return False
        self.taken = True
        return True

    def units(self, skipped: list[Skipped], jobs: int) -> Iterator[Unit]:
        if self.taken:
            yield PieceUnit(self.piece)
