"""The unpack contract: blobs that hold other blobs (archives, app packages, notebooks).

An :class:`Expander` recognises a blob by its content and yields what is inside it as
blobs of their own, each with one more step in ``origin`` (an archive member's path,
a notebook cell), or :class:`Skipped` entries for what it would not read (a budget
exceeded, a hostile member). The worker scans the members instead of the container's
raw bytes, to the depth the scan allows; the container itself is still judged as a
model file (``modelfiles/`` walks model containers on its own).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from keyscope.model import Skipped
from keyscope.sources.interface import Blob

DEFAULT_DEPTH = 8


def member_path(blob: Blob, *names: str) -> str:
    """How a skipped container or member is named: ``outer.zip!/inner.tar!/a.txt``."""
    return "!/".join((blob.path, *blob.origin, *names))


@dataclass(frozen=True)
class UnpackLimits:
    """What one outermost container may cost; each exceeded limit is a Skipped entry."""

    depth: int = DEFAULT_DEPTH  # containers inside containers
    total_bytes: int = 1024 * 1024 * 1024  # unpacked, over all members of one blob
    members: int = 100_000  # members of one blob, all levels
    ratio: int = 200  # unpacked bytes per packed byte, once past 64 MiB
    seconds: float = 60.0  # of unpacking per outermost blob

    def share(self, parts: int) -> UnpackLimits:
        """One of ``parts`` equal shares (depth and ratio unchanged): pieces of one
        container that each stay within their share stay within these limits together."""
        return replace(
            self,
            total_bytes=self.total_bytes // parts,
            members=self.members // parts,
            seconds=self.seconds / parts,
        )


@dataclass
class Budget:
    """The limits being spent while one outermost blob is unpacked."""

    limits: UnpackLimits
    packed: int  # the outermost blob's size
    unpacked: int = 0
    members: int = 0
    started: float = field(default_factory=time.monotonic)
    stopped: str | None = None  # the first limit hit

    def spend(self, size: int) -> str | None:
        """Count one member of ``size`` bytes; the reason to stop, if a limit is hit
        (with what was scanned before it)."""
        before = f"stopped after {self.members} members, {self.unpacked} bytes"
        self.members += 1
        self.unpacked += size
        reason = self._exceeded(before)
        if reason is not None and self.stopped is None:
            self.stopped = reason
        return reason

    def _exceeded(self, before: str) -> str | None:
        lim = self.limits
        if self.members > lim.members:
            return f"more than {lim.members} members ({before})"
        if self.unpacked > lim.total_bytes:
            return f"more than {lim.total_bytes} bytes unpacked ({before})"
        if self.unpacked > 64 * 1024 * 1024 and self.unpacked > lim.ratio * max(self.packed, 1):
            return f"unpacks to more than {lim.ratio}x its size ({before})"
        if (late := self.overtime()) is not None:
            return f"{late} ({before})"
        return None

    def overtime(self) -> str | None:
        """Why unpacking stops now, if its time is up."""
        if time.monotonic() - self.started >= self.limits.seconds:
            return f"took more than {self.limits.seconds:g} s to unpack"
        return None


class Expander(ABC):
    """One kind of container. ``claims`` is cheap (content only, never the name alone);
    ``expand`` never raises for hostile input: it yields a Skipped with the reason and
    stops, keeping what it yielded before."""

    name: str
    # Every byte a blob this expander claims can start with (None: any). The registry
    # asks only the expanders whose ``first`` admits a blob's first byte: text, most of
    # what a scan reads, meets the few without one.
    first: bytes | None = None
    # Claims only blobs with a NUL byte in their first 512 bytes or their last 64 KiB
    # (a tar header, a zip's central directory): the registry does not ask it for text.
    binary: bool = False
    # Members are separate documents (a web archive's records): the worker unpacks
    # each with a budget of its own, and the expander bounds the container itself.
    independent: bool = False

    @abstractmethod
    def claims(self, blob: Blob) -> bool:
        """Whether ``blob`` is a container of this kind."""

    @abstractmethod
    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        """The members of ``blob``, each with ``origin`` extended by its name."""
