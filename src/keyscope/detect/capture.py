"""Capture stage: from anchor hits to whole values, with ``re``, only around hits.

Work per hit is bounded: a capture runs on a window of ``WINDOW`` bytes either side
of its hit (``guard.USER_WINDOW`` for a user's rule), starts no earlier than the end
of the rule's previous value (so a run of repeated anchors is one left-to-right pass,
not a window per hit), and a value is continued over at most ``MAX_WRAPS`` breaks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from keyscope.analyze.textforms import LINE_BREAK, STRING_OPEN
from keyscope.detect.engine import Hit
from keyscope.detect.guard import USER_WINDOW
from keyscope.detect.rules import Rule

WINDOW = 4096
MAX_WRAPS = 8
_BREAK_AFTER = re.compile(LINE_BREAK.encode())  # see textforms.LINE_BREAK
_LINE_HEAD = re.compile(rb"""[ \t]*(?:>[ \t]*)*(?:\+[ \t]*)?""" + STRING_OPEN.encode())
_TAIL = re.compile(rb"""(?:["'][ \t]*\+?)?[ \t]*\r?\Z""")


@dataclass(frozen=True)
class Match:
    """A rule's value in a blob: ``data[start:end] == value``. A value continued over
    line breaks still holds them: the parser removes them (``textforms.join_wrapped``)."""

    rule: Rule
    start: int
    end: int
    value: bytes


class Capturer:
    """Turns hits into matches; compiled capture patterns are kept per rule."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._patterns: list[re.Pattern[bytes]] = [r.compiled_capture() for r in self.rules]
        self._windows = [WINDOW if r.builtin else USER_WINDOW for r in self.rules]
        self._complete: list[re.Pattern[bytes] | None] = [
            re.compile(r.complete.encode()) if r.complete else None for r in self.rules
        ]

    def matches(self, data: bytes, hits: Sequence[Hit]) -> list[Match]:
        out: dict[tuple[int, int, int], Match] = {}
        covered: dict[int, int] = {}  # rule index -> end of its last match
        for hit in hits:
            floor = covered.get(hit.rule, 0)
            if hit.end <= floor:
                continue  # inside a value already taken
            m = self._capture(data, hit, floor)
            if m is None:
                continue
            covered[hit.rule] = m.end
            out.setdefault((hit.rule, m.start, m.end), m)
        return sorted(out.values(), key=lambda m: (m.start, m.rule.id))

    def _capture(self, data: bytes, hit: Hit, floor: int) -> Match | None:
        pattern = self._patterns[hit.rule]
        window = self._windows[hit.rule]
        lo = max(floor, hit.end - window)
        hi = min(len(data), hit.end + window)
        for m in pattern.finditer(data, lo, hi):
            start, end = m.span("value")
            if start < hit.end <= end:
                return self._unwrap(data, hit.rule, start, end, floor)
            if start >= hit.end:
                break
        return None

    def _unwrap(self, data: bytes, index: int, start: int, end: int, floor: int) -> Match:
        """Continue a wrapping rule's value over line breaks: back while the line above
        ends in the unfinished URL it belongs to, forward while it is incomplete."""
        rule = self.rules[index]
        complete = self._complete[index]
        if complete is not None:
            pattern = self._patterns[index]
            for _ in range(MAX_WRAPS):
                if b"://" in data[start:end]:
                    break
                back = _previous_part(data, pattern, start, floor)
                if back is None:
                    break
                start = back
            for _ in range(MAX_WRAPS):
                if complete.search(_joined(data[start:end])):
                    break
                nxt = _next_part(data, pattern, end)
                if nxt is None:
                    break
                end = nxt
        return Match(rule=rule, start=start, end=end, value=data[start:end])


def _joined(value: bytes) -> bytes:
    return _BREAK_AFTER.sub(b"", value) if b"\n" in value else value


def _next_part(data: bytes, pattern: re.Pattern[bytes], end: int) -> int | None:
    """The end of the value's continuation on the next line, if the value stops at a line
    break and the next line goes on with more of it."""
    brk = _BREAK_AFTER.match(data, end, end + 256)
    if brk is None or brk.end() >= len(data):
        return None
    m = pattern.match(data, brk.end(), min(len(data), brk.end() + WINDOW))
    if m is None or m.start("value") != brk.end() or m.end("value") == brk.end():
        return None
    if b"://" in data[brk.end() : m.end("value")]:
        return None  # a new URL, not the rest of this one
    return m.end("value")


def _previous_part(data: bytes, pattern: re.Pattern[bytes], start: int, floor: int) -> int | None:
    """The start of an unfinished URL (one with a ``?`` query) ending the line above the
    value, when the value begins its line."""
    line_start = data.rfind(b"\n", max(0, start - 64), start) + 1  # the head is short
    if line_start == 0 or not _LINE_HEAD.fullmatch(data, line_start, start):
        return None
    prev_start = max(data.rfind(b"\n", 0, line_start - 1) + 1, line_start - WINDOW, floor)
    tail = _TAIL.search(data, prev_start, line_start - 1)
    tail_start = tail.start() if tail else line_start - 1
    before = None
    for m in pattern.finditer(data, prev_start, tail_start):
        before = m
    if before is None or before.end("value") != tail_start:
        return None
    token = data[before.start("value") : tail_start]
    unfinished = b"?" in token or (b"://" in token and data[start : start + 1] == b"?")
    return before.start("value") if unfinished else None
