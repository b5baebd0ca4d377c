"""7z archives as an expander, read in memory with py7zr (as ``modelfiles`` reads them).

The sizes the archive declares are checked against the budget before anything is
decompressed: in a solid block reading one member decompresses the members before it,
so the whole archive's declared content must fit the budget (and, past ``RATIO_FLOOR``,
200 times the archive's size, as one compressed stream), not only the members read.
Members are then read in batches of at most ``MEMBER_BYTES`` (one member over it is a
skipped entry); nothing is written to disk, links are reported with their target.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from keyscope.model import Skipped
from keyscope.modelfiles.containers import escapes, seven_zip_damage, view_reader
from keyscope.sources.interface import Blob
from keyscope.unpack.archives import MEMBER_BYTES, RATIO_FLOOR, admit, member
from keyscope.unpack.interface import Budget, Expander, member_path

MAGIC = b"7z\xbc\xaf\x27\x1c"


class SevenZipExpander(Expander):
    """A 7z archive: its members, read through py7zr in memory, bounded by the budget."""

    name = "7z"
    first = MAGIC[:1]

    def claims(self, blob: Blob) -> bool:
        return bytes(blob.data[:6]) == MAGIC

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        if (damage := seven_zip_damage(blob.data)) is not None:
            yield Skipped(member_path(blob), f"{damage}: not scanned")
            return
        try:
            import py7zr
        except ImportError:
            yield Skipped(member_path(blob), "7z archive not scanned: py7zr is not installed")
            return
        # py7zr parses hostile bytes: any exception it raises means "cannot be read"
        try:
            with view_reader(blob.data) as raw, py7zr.SevenZipFile(raw, mode="r") as archive:
                yield from _members(blob, archive, budget)
        except Exception as exc:
            encrypted = isinstance(exc, py7zr.PasswordRequired) or "password" in str(exc).lower()
            why = "it is encrypted, names hidden" if encrypted else f"{type(exc).__name__}"
            yield Skipped(member_path(blob), f"7z archive cannot be read ({why}): not scanned")


def _members(blob: Blob, archive: Any, budget: Budget) -> Iterator[Blob | Skipped]:
    """Check, then read in batches, the members of the open py7zr ``archive``."""
    infos = [m for m in archive.list() if not m.is_directory]
    declared = sum(max(m.uncompressed or 0, 0) for m in infos)
    room = budget.limits.total_bytes - budget.unpacked
    bomb = budget.limits.ratio * len(blob.data)
    if declared > room or (declared > RATIO_FLOOR and declared > bomb):
        yield Skipped(
            member_path(blob),
            f"7z archive declares {declared} bytes in {len(blob.data)}: more than the "
            f"{room} bytes left of the budget or {budget.limits.ratio}x its size "
            "(a decompression bomb), not unpacked",
        )
        return
    encrypted = archive.needs_password()
    batches: list[list[str]] = [[]]
    size = 0
    for info in infos:
        name = info.filename
        if escapes(name):
            reason = "7z member name is absolute or climbs out with '..': not read (py7zr refuses)"
            yield Skipped(member_path(blob, name), reason)
            continue
        if encrypted:
            yield Skipped(member_path(blob, name), "encrypted 7z member: not scanned")
            continue
        skip, stop = admit(blob, name, max(info.uncompressed or 0, 0), budget)
        if skip is not None:
            yield skip
            if stop:
                break
            continue
        if size + info.uncompressed > MEMBER_BYTES and batches[-1]:
            batches.append([])
            size = 0
        batches[-1].append(name)
        size += info.uncompressed
    links = {m.filename for m in infos if m.is_symlink}
    for batch in batches:
        if not batch:
            continue
        if (late := budget.overtime()) is not None:
            yield Skipped(member_path(blob, batch[0]), late)
            return
        yield from _batch(blob, archive, batch, links)


class _Member:
    """Where py7zr writes one member (its ``Py7zIO`` interface): in memory, kept to
    ``MEMBER_BYTES + 1`` bytes (more: the member is larger than it says), and handed
    over without a copy (``BytesIO.getvalue`` shares its buffer)."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.written = 0

    def write(self, data: bytes) -> int:
        room = MEMBER_BYTES + 1 - self.written
        if room <= 0:
            return 0
        n = self.buffer.write(data if len(data) <= room else data[:room])
        self.written += n
        return n

    def read(self, size: int | None = None) -> bytes:
        return self.buffer.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.buffer.seek(offset, whence)

    def flush(self) -> None:
        pass

    def size(self) -> int:
        return self.written

    def close(self) -> None:  # py7zr closes each member: its bytes are read afterwards
        pass


class _Members:
    """py7zr's ``WriterFactory`` interface: one :class:`_Member` per name."""

    def __init__(self) -> None:
        self.products: dict[str, _Member] = {}

    def create(self, filename: str) -> _Member:
        self.products[filename] = product = _Member()
        return product


def _batch(blob: Blob, archive: Any, names: list[str], links: set[str]) -> Iterator[Blob | Skipped]:
    factory = _Members()
    archive.reset()
    archive.extract(targets=names, factory=factory)
    for name in names:
        product = factory.products.pop(name, None)
        if product is None:  # an empty member, or a duplicated name py7zr renamed
            continue
        data = product.buffer.getvalue()
        del product
        if name in links:
            target = data.decode("utf-8", "replace")
            reason = f"symbolic link member (to {target!r}): not followed"
            yield Skipped(member_path(blob, name), reason)
            continue
        if len(data) > MEMBER_BYTES:
            yield Skipped(member_path(blob, name), "7z member is larger than it says: not scanned")
            continue
        yield member(blob, name, data)
