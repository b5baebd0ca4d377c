"""Readable durations and dates for sentences."""

from __future__ import annotations

from datetime import datetime


def duration(seconds: int) -> str:
    """``90061`` → ``1 day, 1 hour``: the two largest non-zero units."""
    seconds = abs(seconds)
    units = (("year", 365 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
    parts: list[str] = []
    for name, size in units:
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n} {name}{'s' if n != 1 else ''}")
        if len(parts) == 2:
            break
    return ", ".join(parts) or "0 seconds"


def day(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d")


def instant(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def join_words(words: list[str]) -> str:
    """``['a', 'b', 'c']`` → ``a, b and c``."""
    if not words:
        return ""
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]
