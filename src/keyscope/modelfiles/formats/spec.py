"""What one model format declares: how to recognise it, whether it can hold pickles,
and its structural check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keyscope.modelfiles.structured import StructuredIssue

HEAD = 16  # bytes of the file every sniff gets as ``head`` (most magic numbers fit)

Sniff = Callable[[bytes, bytes, bool], bool]
Check = Callable[[bytes], "list[StructuredIssue]"]


@dataclass(frozen=True)
class ModelFormat:
    """One entry of the registry (``registry.FORMATS``).

    ``sniff(data, head, partial)`` says whether ``data`` is this format, from its
    content only: ``head`` is ``bytes(data[:HEAD])``; with ``partial``, ``data`` is
    only the head of a larger file. The registry tries formats in order and the
    first that matches wins, so a sniff may assume every earlier one said no.

    ``holds_pickles``: a loader may unpickle something in it; the container walk
    (``containers.pickles_in``) then reads it. ``check(data)`` returns the structural
    issues of a file of this format (None: nothing to check beyond its pickles).

    ``first``: every byte a file of this format can start with, when its sniff only
    ever matches such files (None: any byte). The registry then skips the sniff for
    files that start otherwise: text, most of what a scan reads, meets only the few
    formats without a fixed first byte."""

    name: str
    sniff: Sniff
    holds_pickles: bool
    check: Check | None = None
    first: bytes | None = None
