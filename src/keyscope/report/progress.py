"""A one-line progress display on a terminal: files, bytes, findings, rate."""

from __future__ import annotations

import time
from typing import TextIO

from keyscope.report.text import human_bytes
from keyscope.scan import Progress

MIN_INTERVAL = 0.1


class ProgressLine:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._last = 0.0
        self._shown = False

    def update(self, p: Progress) -> None:
        now = time.monotonic()
        if now - self._last < MIN_INTERVAL:
            return
        self._last = now
        rate = p.bytes / p.seconds if p.seconds > 0 else 0.0
        line = (
            f"\r\033[Kscanning: {p.files} files, {human_bytes(p.bytes)}, "
            f"{p.findings} findings, {human_bytes(rate)}/s"
        )
        self.stream.write(line)
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


class CountLine:
    """``checking: 3/12 credentials`` on one terminal line."""

    def __init__(self, stream: TextIO, what: str) -> None:
        self.stream = stream
        self.what = what
        self._shown = False

    def update(self, done: int, total: int) -> None:
        self.stream.write(f"\r\033[K{self.what}: {done}/{total}")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
