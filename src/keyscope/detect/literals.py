"""Whether any of a few byte strings occurs in a blob, in one pass: a small Hyperscan
database when Hyperscan is installed (a multi-literal matcher, several times faster
than one ``in`` per string on binaries full of NUL bytes), else ``in``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class AnyLiteral:
    """``found_in(data)``: does any of ``literals`` occur in ``data``? The database is
    compiled on first use, in the process that uses it (workers compile their own)."""

    def __init__(self, literals: Sequence[bytes]) -> None:
        if not literals or not all(literals):
            raise ValueError("AnyLiteral needs non-empty literals")
        self.literals = tuple(literals)
        self._db: Any = None
        self._stop: type[BaseException] | None = None
        self._compiled = False

    def found_in(self, data: bytes) -> bool:
        if not self._compiled:
            self._compile()
        if self._db is None:
            return any(lit in data for lit in self.literals)
        assert self._stop is not None
        try:
            # the callback returns True to stop at the first match: the scan raises
            self._db.scan(data, match_event_handler=_stop_at_first)
        except self._stop:
            return True
        return False

    def _compile(self) -> None:
        self._compiled = True
        try:
            import hyperscan
        except ImportError:
            return
        # every byte escaped: a pattern is a C string, a NUL would end it
        expressions = [b"".join(b"\\x%02x" % c for c in lit) for lit in self.literals]
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(
            expressions=expressions,
            ids=list(range(len(expressions))),
            elements=len(expressions),
            flags=[hyperscan.HS_FLAG_SINGLEMATCH] * len(expressions),
        )
        self._db, self._stop = db, hyperscan.ScanTerminated


def _stop_at_first(rule: int, start: int, end: int, flags: int, ctx: object) -> bool:
    return True
