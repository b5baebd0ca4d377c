"""The source contract: what every source yields, and how the orchestrator drives it.

A :class:`Source` claims roots (a path, a URL, ``-``) and turns them into
:class:`Unit`\\ s: small, picklable pieces of work that a worker process reads into
:class:`Blob`\\ s (or :class:`Skipped` entries). What comes back from a worker is a
:class:`Batch`; the source may hold part of it for a post-pass run in the parent
after the pool (git provenance). ``sources/registry.py`` lists the sources in order:
the first one that claims a root wins.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

from keyscope.model import ImageProvenance, ModelFinding, RawFinding, Skipped

if TYPE_CHECKING:
    from keyscope.sources.git import Selection

__all__ = [
    "WAIT",
    "Batch",
    "Blob",
    "BlobScan",
    "Deferred",
    "Skipped",
    "Source",
    "SourceOptions",
    "Unit",
    "WorkerContext",
    "merged",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Blob:
    """Bytes to scan and where they came from. ``origin`` is the chain inside ``path``
    (archive members, decoded layers) from outermost to innermost.

    ``models_only``: too big to scan for secrets, judged as a model file only;
    ``data`` is then a read-only memory map of the file, not ``bytes``.
    ``image``: the layer a container image's file came from (and what hid it).
    """

    path: str
    data: bytes
    origin: tuple[str, ...] = ()
    oid: str | None = None  # git blob id, for blobs read from a repository
    models_only: bool = False
    image: ImageProvenance | None = None  # a file read from a container image's layer
    # (first, end, parts): only members first..end-1 of this container, one of ``parts``
    # pieces that several workers read (a large zip; see ``Deferred``)
    part: tuple[int, int, int] | None = None
    # judged as a model file by a unit of its own (whose walk reads its members too):
    # this one scans and unpacks it only (a large file read by two workers at once)
    walked: bool = False
    captured: str | None = None  # a web page's capture time (``Location.captured``)


@dataclass(frozen=True)
class Deferred:
    """A file a worker hands back unread, for its source to plan again: a large zip in
    pieces (``cuts``: the member indexes where they start, then the end), or read
    whole (no ``cuts``: a large file for a worker of its own, or from a piece that
    exceeded its share of the unpack budget).
    ``findings``/``skipped``/``models``: where its results belong in the batch it
    came back in."""

    path: str
    cuts: tuple[int, ...] = ()
    findings: int = 0
    skipped: int = 0
    models: int = 0


class _Wait:
    """What a source yields to have the orchestrator take in a finished unit before it
    asks for the next: work that only finished units reveal (``Deferred``)."""

    def read(self, ctx: WorkerContext) -> Iterable[Blob | Skipped | Deferred]:
        return ()


WAIT = _Wait()


@dataclass(frozen=True)
class Batch:
    """What one unit gave: findings, model findings, skipped entries and counts."""

    findings: list[RawFinding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    model_findings: list[ModelFinding] = field(default_factory=list)
    deferred: list[Deferred] = field(default_factory=list)  # files handed back unread


def merged(batches: Iterable[Batch]) -> Batch:
    """Several batches as one, in order."""
    out = Batch()
    files = size = 0
    for b in batches:
        out.findings.extend(b.findings)
        out.skipped.extend(b.skipped)
        out.rejected.update(b.rejected)
        out.model_findings.extend(b.model_findings)
        files += b.files
        size += b.bytes
    return replace(out, files=files, bytes=size)


BlobScan = Callable[[Iterable["Blob | Skipped | Deferred"]], Batch]
"""Scans blobs in the calling process (a post-pass rescans through it)."""


class SourceOptions(Protocol):
    """The part of ``scan.ScanOptions`` that sources read."""

    @property
    def respect_gitignore(self) -> bool: ...
    @property
    def excludes(self) -> tuple[str, ...]: ...
    @property
    def follow_symlinks(self) -> bool: ...
    @property
    def max_file_size(self) -> int: ...
    @property
    def cache_dir(self) -> Path | None: ...
    @property
    def git(self) -> bool | None: ...
    @property
    def models(self) -> bool: ...
    @property
    def selection(self) -> Selection: ...
    @property
    def secrets(self) -> bool: ...
    @property
    def unpack_depth(self) -> int: ...
    @property
    def download_limit(self) -> int: ...


class WorkerContext:
    """What a worker process keeps between units: the size limit and long-lived
    resources (a ``git cat-file`` per repository, compiled ignore rules), closed when
    the worker ends."""

    def __init__(self, max_file_size: int) -> None:
        self.max_file_size = max_file_size
        self._kept: dict[Hashable, object] = {}

    def kept(self, key: Hashable, make: Callable[[], T]) -> T:
        """The resource stored under ``key``, made on first use."""
        if key not in self._kept:
            self._kept[key] = make()
        return self._kept[key]  # type: ignore[return-value]

    def close(self) -> None:
        """Close every kept resource that can be closed."""
        for resource in self._kept.values():
            close = getattr(resource, "close", None)
            if callable(close):
                close()
        self._kept.clear()


class Unit(Protocol):
    """A piece of work sent to a worker process: small and picklable."""

    def read(self, ctx: WorkerContext) -> Iterable[Blob | Skipped | Deferred]:
        """The blobs to scan (in the worker), or why an item was skipped, or a file
        handed back to be planned again; never raises for one unreadable item."""
        ...


class Source(ABC):
    """One kind of root. A new instance serves each scan, so it may keep state
    between its roots (the roots it took, findings held for the post-pass)."""

    name: ClassVar[str]
    in_parent: ClassVar[bool] = False  # read its units in the scanning process, first

    def __init__(self, options: SourceOptions) -> None:
        self.options = options

    @abstractmethod
    def claim(self, root: str) -> bool:
        """Take ``root`` when this source recognises it (cheap: no network, no walk)."""

    @abstractmethod
    def units(self, skipped: list[Skipped], jobs: int) -> Iterator[Unit]:
        """The work for every root taken, made lazily while workers read earlier units.
        Entries skipped while planning go to ``skipped``, in order. ``jobs``: how
        many workers will read the units."""

    def absorb(self, unit: Unit, batch: Batch) -> Batch:
        """The part of ``batch`` to report now; the rest waits for :meth:`finish`."""
        return batch

    def finish(self, scan: BlobScan) -> Batch:
        """The post-pass, in the parent after every unit was read."""
        return Batch()

    def history_cut(self) -> dict[str, list[str]]:
        """Shallow repositories among the roots: shown name → boundary commits."""
        return {}
