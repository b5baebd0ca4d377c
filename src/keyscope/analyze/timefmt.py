"""Readable durations and dates for sentences; ISO-8601 times read strictly."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from keyscope.errors import ParseError

_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?(Z|[+-]\d{2}:\d{2})?)?$"
)


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


def parse_datetime(value: str, name: str) -> datetime:
    """Parse the ISO-8601 forms Azure accepts (§4): date, minutes, seconds, 7 fraction
    digits; ``name`` (the field) starts any error message."""
    m = _DATETIME.match(value.strip())
    if not m:
        raise ParseError(
            f"{name}: {value!r} is not a date or time in ISO-8601 form (e.g. 2051-10-06T07:09:59Z)"
        )
    y, mo, d, hh, mm, ss, frac, tz = m.groups()
    if hh is not None and tz is None:
        raise ParseError(f"{name}: {value!r} has a time but no time zone (Z or ±hh:mm)")
    try:
        micro = int((frac or "0").ljust(7, "0")[:6])
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0), micro)
    except ValueError as exc:
        raise ParseError(f"{name}: {value!r} is not a valid date ({exc})") from None
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])) * sign
        if int(tz[1:3]) > 23 or int(tz[4:6]) > 59:
            raise ParseError(f"{name}: {value!r} has an invalid time zone offset")
        try:
            return dt.replace(tzinfo=timezone(offset)).astimezone(UTC)
        except OverflowError:
            raise ParseError(f"{name}: {value!r} is out of range") from None
    return dt.replace(tzinfo=UTC)
