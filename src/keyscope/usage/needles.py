"""Find the lines worth parsing: the byte offsets in a block where any watched
credential's needle (hash, expiry as logged) occurs. Hyperscan scans once for all
needles; without it (or for a few needles) ``bytes.find`` does."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

HYPERSCAN_FROM = 8  # needles; fewer are found faster one by one with bytes.find


class Finder:
    """Candidate lines of a block: {line start: (line end, watched indices)}."""

    def __init__(self, needles: Sequence[tuple[bytes, int]]) -> None:
        self.needles = list(needles)  # (needle, watched index)
        self._db: Any = None
        if len(self.needles) >= HYPERSCAN_FROM:
            try:
                import hyperscan
            except ImportError:
                return
            db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            db.compile(
                expressions=[re.escape(n) for n, _ in self.needles],
                ids=list(range(len(self.needles))),
                flags=[0] * len(self.needles),
            )
            self._db = db

    def lines(self, block: bytes, lo: int = 0,
              hi: int | None = None) -> dict[int, tuple[int, set[int]]]:
        """Each line of ``block[lo:hi]`` holding a needle: its start → (end, who may
        match), as offsets in ``block``."""
        hi = len(block) if hi is None else hi
        found: dict[int, tuple[int, set[int]]] = {}

        def hit(end_of_match: int, index: int) -> None:
            start = block.rfind(b"\n", lo, end_of_match) + 1 or lo
            entry = found.get(start)
            if entry is None:
                stop = block.find(b"\n", end_of_match, hi)
                found[start] = (hi if stop < 0 else stop, {index})
            else:
                entry[1].add(index)

        if self._db is not None:
            needles = self.needles

            def on_match(nid: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
                hit(lo + to, needles[nid][1])

            self._db.scan(memoryview(block)[lo:hi], match_event_handler=on_match)
            return found
        for needle, index in self.needles:
            i = block.find(needle, lo, hi)
            while i >= 0:
                hit(i + len(needle), index)
                i = block.find(needle, i + len(needle), hi)
        return found
