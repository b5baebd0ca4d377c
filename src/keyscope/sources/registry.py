"""Which sources a scan asks, in order: the first that claims a root takes it.

To add a source, write its module (a :class:`~keyscope.sources.interface.Source`
and its units) and add one line to :func:`make_sources`, before ``FilesSource``
(which takes every root left)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from keyscope.sources.download import DownloadSource
from keyscope.sources.files import FilesSource
from keyscope.sources.history import GitSource
from keyscope.sources.interface import Source, SourceOptions
from keyscope.sources.remote import RemoteSource
from keyscope.sources.stdin import StdinSource


def make_sources(options: SourceOptions, *, stdin: bytes | None, cache: Path) -> list[Source]:
    """One instance of each source for a scan, in claiming order."""
    git = GitSource(options)
    return [
        StdinSource(options, stdin),
        DownloadSource(options, cache),  # an http(s) URL of a web archive or artifact
        RemoteSource(options, git, cache),  # a mirrored remote is a git source's root
        git,
        FilesSource(options),
    ]


def claim(root: str, sources: Sequence[Source]) -> Source:
    """The first source that claims ``root``."""
    for source in sources:
        if source.claim(root):
            return source
    raise ValueError(f"no source takes {root!r}")  # FilesSource takes every root
