"""Helpers shared by the benchmark scripts (run.py, history.py, models.py, outputs.py):
logging, the machine's load, waiting for a quiet machine, medians, number formatting."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime


def logger(name: str, *, clock: bool = True) -> Callable[[str], None]:
    """A ``log(message)`` writing ``[name HH:MM:SS] message`` (or ``[name] message``) to
    standard error, flushed."""

    def log(message: str) -> None:
        stamp = f" {datetime.now().strftime('%H:%M:%S')}" if clock else ""
        print(f"[{name}{stamp}] {message}", file=sys.stderr, flush=True)

    return log
