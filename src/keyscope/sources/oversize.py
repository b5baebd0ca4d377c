"""Large files as memory maps. Files over ``--max-file-size``: not scanned for
secrets, but a big checkpoint is exactly where a payload hides, so each is handed on
as a models-only blob over a read-only memory map (the model check reads only what a
loader would unpickle). Archives of ``MAP_BYTES`` or more within the limit are
mapped too: they are unpacked from the map, as a stream, never held whole."""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass

from keyscope.sources.interface import Blob, Skipped, WorkerContext

OVERSIZE_BATCH = 8  # files per unit
MAP_BYTES = 8 * 1024 * 1024  # archives from this size on are read as a memory map


# what the archive expanders read from a map as a stream or through their index (zip,
# gzip, bzip2, xz, zstd, 7z, ar, an uncompressed web archive); a tar by its magic at 257.
# Other large files (a notebook, a log) are read as bytes: their readers want bytes.
ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00",
                 b"\x28\xb5\x2f\xfd", b"7z\xbc\xaf\x27\x1c", b"!<arch>\n",
                 b"WARC/1.")  # fmt: skip


def is_archive(path: str) -> bool:
    """Whether the file at ``path`` starts as an archive an expander streams from a
    memory map."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return head.startswith(ARCHIVE_MAGIC) or head[257:262] == b"ustar"


def mapped(path: str, models_only: bool = False) -> Iterator[Blob]:
    """``path`` as a blob over a read-only memory map, open while the consumer looks
    at it; nothing when it cannot be opened or mapped."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            yield Blob(path=path, data=mm, models_only=models_only)  # type: ignore[arg-type]
    except (OSError, ValueError):
        return


def models_only(path: str) -> Iterator[Blob]:
    """``path`` as a models-only blob (see :func:`mapped`); nothing when it cannot be
    opened or mapped (it was already reported as too big)."""
    return mapped(path, models_only=True)


@dataclass(frozen=True)
class OversizeUnit:
    """Files the walk found over the size limit, judged as model files only."""

    paths: list[str]

    def read(self, ctx: WorkerContext) -> Iterator[Blob | Skipped]:
        for path in self.paths:
            yield from models_only(path)
