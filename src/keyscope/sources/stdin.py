"""Standard input (the root ``-``): one blob, read in the scanning process, first."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from keyscope.sources.interface import Blob, Skipped, Source, SourceOptions, Unit, WorkerContext

STDIN = "-"


@dataclass(frozen=True)
class StdinUnit:
    data: bytes

    def read(self, ctx: WorkerContext) -> Iterator[Blob | Skipped]:
        yield Blob(path="<stdin>", data=self.data)


class StdinSource(Source):
    """``-``, once (a second ``-`` is a file of that name); ``data`` is what was read."""

    name = "stdin"
    in_parent = True

    def __init__(self, options: SourceOptions, data: bytes | None = None) -> None:
        super().__init__(options)
        self.data = data
        self._taken = False

    def claim(self, root: str) -> bool:
        if root != STDIN or self._taken:
            return False
        self._taken = True
        return True

    def units(self, skipped: list[Skipped], jobs: int) -> Iterator[Unit]:
        if self._taken:
            yield StdinUnit(self.data or b"")
