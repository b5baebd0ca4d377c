"""Large zips read by several workers: one archive, several units.

A worker that meets a zip of at least :data:`SPLIT_BYTES` hands it back unread
(``Deferred``) with the cuts of its central directory: pieces of about equal
compressed size. The source then plans one unit per piece (:class:`ZipPartUnit`,
whose blob is the whole file, memory-mapped, restricted by ``Blob.part``) and one
that judges the whole file as a model file (the model walk reads a container whole:
duplicate names and overlaps are properties of the archive). Each piece spends an
equal share of the unpack budget; a piece that exceeds its share is handed back
again, and the file is read whole, by one worker, as with ``-j 1``. The results
are put back where the file was met (:class:`ZipPieces`), so reports are the same
as with one worker. A tar (gzip or not) is a stream and is never cut: any other file
of :data:`ALONE_BYTES` or more (a tar.gz, an image, a zip not worth cutting) is
handed back without cuts, to be read whole by a unit of its own while others read
the rest of the folder (an archive, with the model check on: by two units, one that
judges it as a model file, one that unpacks it, ``Blob.walked``); its results too are
put back where it was met.
"""

from __future__ import annotations

import mmap
import os
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from keyscope.sources.interface import Batch, Blob, Deferred, Skipped, Unit, WorkerContext, merged
from keyscope.sources.oversize import is_archive

SPLIT_BYTES = 8 * 1024 * 1024  # zips from this size on are cut (by content: "PK\3\4")
ALONE_BYTES = SPLIT_BYTES  # other files from this size on are read by a unit of their own
PIECE_MEMBERS = 16  # members a piece holds at least
# more members than an unpack budget allows (unpack.interface.UnpackLimits): the zip
# stops at its budget whoever reads it, so it is read whole
MAX_CUT_MEMBERS = 100_000
ZIP_HEAD = b"PK\x03\x04"


def zip_cuts(path: str, size: int, parts: int) -> tuple[int, ...] | None:
    """Where to cut the zip at ``path`` into at most ``parts`` pieces of about equal
    compressed size (member indexes, first 0, last the member count); None when it is
    no zip of ``SPLIT_BYTES`` or more, cannot be read, or is not worth cutting."""
    if size < SPLIT_BYTES or parts < 2:
        return None
    try:
        with open(path, "rb") as f:
            if f.read(4) != ZIP_HEAD:
                return None
            f.seek(0)
            infos = zipfile.ZipFile(f).infolist()
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        return None  # read whole: the expander reports what is wrong with it
    parts = min(parts, len(infos) // PIECE_MEMBERS)
    if parts < 2 or len(infos) > MAX_CUT_MEMBERS:
        return None
    weights = [info.compress_size + 512 for info in infos]  # a member costs beyond its bytes
    total = sum(weights)
    cuts = [0]
    running = 0
    for index, weight in enumerate(weights):
        running += weight
        if running * parts >= total * len(cuts) and index + 1 < len(infos):
            cuts.append(index + 1)
            if len(cuts) == parts:
                break
    cuts.append(len(infos))
    return tuple(cuts)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


@dataclass(frozen=True)
class ZipPartUnit:
    """Members ``first``..``end - 1`` of the zip at ``path``, one of ``parts`` pieces."""

    path: str
    first: int
    end: int
    parts: int

    def read(self, ctx: WorkerContext) -> Iterator[Blob | Skipped]:
        try:
            with open(self.path, "rb") as f, mmap.mmap(
                f.fileno(), 0, access=mmap.ACCESS_READ
            ) as mm:
                part = (self.first, self.end, self.parts)
                yield Blob(path=self.path, data=mm, part=part)  # type: ignore[arg-type]
        except (OSError, ValueError) as exc:
            yield Skipped(self.path, f"could not be read ({exc})")


@dataclass
class _Split:
    """One handed-back file: its units in report order and what they gave."""

    where: Deferred  # where in the batch of the unit that met it
    units: list[Unit]
    batches: dict[int, Batch] = field(default_factory=dict)

    def done(self) -> bool:
        return all(id(u) in self.batches for u in self.units)

    def batch(self) -> Batch:
        return merged(self.batches[id(u)] for u in self.units)


class ZipPieces:
    """The pieces of the files a source's units handed back: the units to hand out
    (``ready``), and the batches put back in the batch of the unit that met each file."""

    def __init__(
        self, whole: Callable[..., Unit], models: Callable[[list[str]], Unit] | None
    ) -> None:
        self.ready: deque[Unit] = deque()
        # the unit that reads these paths whole (with True: not judging them as models)
        self._whole = whole
        self._models = models  # the unit that judges these paths as model files, if any
        self._splits: dict[int, list[_Split]] = {}  # id(unit that met them) -> files
        self._owner: dict[int, _Split] = {}  # id(piece unit) -> its file

    def owns(self, unit: Unit) -> bool:
        return id(unit) in self._owner

    def hand_back(self, unit: Unit, batch: Batch) -> None:
        """Plan the pieces of every file ``batch`` (of ``unit``) handed back; they are
        handed out largest first (a worker that took a large file last would finish
        alone), their results still put back in order."""
        splits = []
        planned: list[tuple[float, Unit]] = []
        for where in batch.deferred:
            size = _size(where.path)
            if not where.cuts:  # a large file, read whole by a unit of its own
                alone: list[Unit] = [self._whole([where.path])]
                # an archive is judged as a model file by another unit (by content, as
                # the whole file's unit would: its magic is in its head)
                if self._models is not None and is_archive(where.path):
                    alone = [self._models([where.path]), self._whole([where.path], True)]
                    planned.append((size / 2, alone[0]))
                planned.append((size, alone[-1]))
                splits.append(self._plan(_Split(where, []), alone, queue=False))
                continue
            pieces: list[Unit] = []
            if self._models is not None:
                pieces.append(self._models([where.path]))
                planned.append((size / 2, pieces[-1]))  # the walk reads, scans nothing
            parts = len(where.cuts) - 1
            for first, end in zip(where.cuts, where.cuts[1:], strict=False):
                pieces.append(ZipPartUnit(where.path, first, end, parts))
                planned.append((size / parts, pieces[-1]))
            splits.append(self._plan(_Split(where, []), pieces, queue=False))
        planned.sort(key=lambda item: -item[0])  # stable: ties keep their order
        self.ready.extend(u for _, u in planned)
        if splits:
            self._splits[id(unit)] = splits

    def _plan(self, split: _Split, units: list[Unit], queue: bool = True) -> _Split:
        split.units = units
        split.batches.clear()
        for u in units:
            self._owner[id(u)] = split
            if queue:
                self.ready.append(u)
        return split

    def absorb(self, unit: Unit, batch: Batch) -> None:
        split = self._owner.pop(id(unit))
        if unit not in split.units:
            return  # a piece of a file since read whole
        if batch.deferred:
            # a piece exceeded its share of the budget: the file is read whole
            self._plan(split, [self._whole([split.where.path])])
            return
        split.batches[id(unit)] = batch

    def done(self, unit: Unit) -> bool:
        """Whether every file ``unit`` handed back has been read."""
        return all(s.done() for s in self._splits.get(id(unit), ()))

    def spliced(self, unit: Unit, batch: Batch) -> Batch:
        """``unit``'s batch with each handed-back file's results where it was met."""
        splits = self._splits.pop(id(unit), [])
        if not splits:
            return batch
        out = Batch()
        at = Deferred("")
        files, size = batch.files, batch.bytes
        for split in splits:
            w, got = split.where, split.batch()
            out.findings.extend(batch.findings[at.findings : w.findings] + got.findings)
            out.skipped.extend(batch.skipped[at.skipped : w.skipped] + got.skipped)
            out.model_findings.extend(batch.model_findings[at.models : w.models])
            out.model_findings.extend(got.model_findings)
            out.rejected.update(got.rejected)
            files, size, at = files + got.files, size + got.bytes, w
        out.findings.extend(batch.findings[at.findings :])
        out.skipped.extend(batch.skipped[at.skipped :])
        out.model_findings.extend(batch.model_findings[at.models :])
        out.rejected.update(batch.rejected)
        return Batch(out.findings, out.skipped, files, size, out.rejected, out.model_findings)
