"""What every source yields: bytes with an origin, or a reason they were skipped."""

from __future__ import annotations

from dataclasses import dataclass

from keyscope.model import Skipped

__all__ = ["Blob", "Skipped"]



@dataclass(frozen=True)
class Blob:
    """Bytes to scan and where they came from. ``origin`` is the chain inside ``path``
    (archive members, decoded layers) from outermost to innermost."""

    path: str
    data: bytes
    origin: tuple[str, ...] = ()
    oid: str | None = None  # git blob id, for blobs read from a repository
