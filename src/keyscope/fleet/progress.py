"""``--cluster`` progress on stderr: targets done / running / failed of all, bytes
read and secrets found; rewritten in place on a terminal, else a line every
``PLAIN_SECONDS`` and one at the end."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TextIO

from keyscope.redact import terminal_safe
from keyscope.report.progress import _StatusLine
from keyscope.report.text import human_bytes

PLAIN_SECONDS = 5.0


@dataclass
class Tally:
    """Running totals of a many-target scan."""

    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    bytes: int = 0
    findings: int = 0

    def line(self) -> str:
        return (
            f"targets: {self.done}/{self.total} done, {self.running} running, "
            f"{self.failed} failed; {human_bytes(self.bytes)}, {self.findings} findings"
        )


class TargetsLine:
    """Shows a :class:`Tally` on ``stream``."""

    def __init__(self, stream: TextIO, *, terminal: bool) -> None:
        self.stream = stream
        self.status = _StatusLine(stream) if terminal else None
        self._last = 0.0
        self._shown = ""

    def announce(self, cluster: str, dashboard: str | None) -> None:
        where = f"; dashboard {dashboard}" if dashboard else ""
        self.stream.write(terminal_safe(f"keyscope: cluster {cluster}{where}") + "\n")
        self.stream.flush()

    def update(self, tally: Tally, *, last: bool = False) -> None:
        if self.status is not None:
            self.status.show(tally.line())
            return
        now = time.monotonic()
        text = tally.line()
        if (last and text != self._shown) or now - self._last >= PLAIN_SECONDS:
            self._last, self._shown = now, text
            self.stream.write(terminal_safe(f"keyscope: {text}") + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.status is not None:
            self.status.close()
