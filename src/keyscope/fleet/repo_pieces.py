"""Large repositories in pieces: on a cluster, a repository whose history holds more
than ``--split-size`` of blob content (each blob counted as at least ``BLOB_WEIGHT``
bytes, so that many small blobs count too) is scanned as several tasks, each over
one range of the object-id space.

Object ids are hashes, spread evenly, so the space (the first ``KEY_DIGITS`` hex
digits of an id) is cut into ``n`` equal, contiguous ranges: every blob falls in
exactly one, pieces hold about the same number of blobs, and the same repository cut
the same way on a resumed run gives the same pieces. Each piece lists the blobs
itself (``git cat-file --batch-all-objects``, as a whole-history scan does) and
keeps those in its range. Provenance is computed per piece as for the whole
history, with one addition: the other versions of the files where a piece found a
secret are read again (as a scan of part of the history does) so that a secret
present in blobs of several pieces gets the same introduction and removal in each,
and a location is reported only by the piece holding the blob it is shown from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from keyscope.model import RawFinding
from keyscope.sources.git import Selection, find_repository, list_blobs
from keyscope.sources.history import GitSource
from keyscope.sources.interface import BlobScan, SourceOptions
from keyscope.sources.remote import is_remote, remote_label

KEY_DIGITS = 8  # hex digits of an object id that place it in a range
KEY_SPACE = 16**KEY_DIGITS
BLOB_WEIGHT = 4096  # a blob costs at least this many bytes' worth of work
MAX_PIECES = 1024


@dataclass(frozen=True)
class RepoPiece:
    """The blobs of repository ``target`` whose ids start (as a number of
    ``KEY_DIGITS`` hex digits) from ``lo`` up to ``hi`` (exclusive); ``index`` of
    ``count``. ``token``: the scan's, so that a machine fetches a remote once."""

    target: str
    lo: int
    hi: int
    index: int
    count: int
    token: str

    @property
    def name(self) -> str:
        return f"{self.target}#blobs={self.lo:0{KEY_DIGITS}x}-{self.hi - 1:0{KEY_DIGITS}x}"

    def holds(self, oid: str) -> bool:
        """Is blob ``oid`` in this piece's range?"""
        try:
            key = int(oid[:KEY_DIGITS], 16)
        except ValueError:
            return self.index == 0  # never from git: kept by one piece
        return self.lo <= key < self.hi


def repo_pieces(target: str, n: int, token: str) -> list[RepoPiece]:
    """``target``'s blobs in ``n`` contiguous ranges covering the whole id space."""
    cuts = [i * KEY_SPACE // n for i in range(n)] + [KEY_SPACE]
    return [RepoPiece(target, cuts[i], cuts[i + 1], i, n, token) for i in range(n)]


def pieces_for(blobs: int, size: int, split_bytes: int) -> int:
    """How many pieces a history of ``blobs`` unique blobs and ``size`` bytes of
    content is cut into (1: it is scanned whole)."""
    if split_bytes <= 0:
        return 1
    work = max(size, blobs * BLOB_WEIGHT)
    return max(1, min(MAX_PIECES, math.ceil(work / split_bytes)))


def splittable(options: SourceOptions) -> bool:
    """Can a scan with these options cut a repository? (the whole history only)"""
    return options.git is not False and options.selection in (
        Selection(), Selection(all_objects=True))  # fmt: skip


def history_size(repo: Path, options: SourceOptions) -> tuple[int, int]:
    """(unique blobs, bytes of content) of the history a scan reads, blobs over the
    size limit aside (they are not read)."""
    blobs = size = 0
    for ref in list_blobs(repo, options.selection):
        if ref.size <= options.max_file_size:
            blobs += 1
            size += ref.size
    return blobs, size


def locate(target: str, options: SourceOptions, cache: Path, token: str) -> Path | None:
    """The repository ``target`` names on this machine (a remote's shared mirror,
    fetched once per scan), or None when it is no repository."""
    if is_remote(target):
        from keyscope.fleet.mirrors import shared_mirror

        return find_repository(shared_mirror(target, cache, token))
    if not os.path.isdir(target):
        return None
    return find_repository(Path(target))


class RepoSource(GitSource):
    """Claims the repository ``target``, found at ``repo`` on this machine: all its
    blobs (``piece`` None), or one piece's."""

    name = "git-piece"

    def __init__(self, options: SourceOptions, target: str, repo: Path,
                 piece: RepoPiece | None = None) -> None:  # fmt: skip
        super().__init__(options)
        self.target = target
        self.repo = repo
        self.piece = piece
        self.taken = False

    def claim(self, root: str) -> bool:
        if root != self.target or self.taken:
            return False
        self.taken = True
        shown = remote_label(root) if is_remote(root) else root
        self.take(root, lambda: (self.repo, shown), shown)
        return True

    def _wants(self, oid: str) -> bool:
        return self.piece is None or self.piece.holds(oid)

    def _worktree(self) -> bool:
        return self.piece is None or self.piece.index == 0

    def _rescan_for(self, scan: BlobScan) -> Callable[[str, list[str]], list[RawFinding]] | None:
        if self.piece is None:
            return super()._rescan_for(scan)
        rescan = self._rescanner(scan)
        piece = self.piece

        def outside(repo: str, oids: list[str]) -> list[RawFinding]:
            """Versions in other pieces (those in this one were scanned already)."""
            return rescan(repo, [oid for oid in oids if not piece.holds(oid)])

        return outside
