"""Capture stage: from anchor hits to whole values, with ``re``, only around hits."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from keyscope.detect.engine import Hit
from keyscope.detect.rules import Rule

WINDOW = 4096


@dataclass(frozen=True)
class Match:
    """A rule's value in a blob: ``data[start:end] == value``."""

    rule: Rule
    start: int
    end: int
    value: bytes


class Capturer:
    """Turns hits into matches; compiled capture patterns are kept per rule."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._patterns: list[re.Pattern[bytes]] = [r.compiled_capture() for r in self.rules]

    def matches(self, data: bytes, hits: Sequence[Hit]) -> list[Match]:
        out: dict[tuple[int, int, int], Match] = {}
        covered: dict[int, int] = {}  # rule index -> end of its last match
        for hit in hits:
            if hit.end <= covered.get(hit.rule, -1):
                continue  # inside a value already taken
            m = self._capture(data, hit)
            if m is None:
                continue
            covered[hit.rule] = m.end
            out.setdefault((hit.rule, m.start, m.end), m)
        return sorted(out.values(), key=lambda m: (m.start, m.rule.id))

    def _capture(self, data: bytes, hit: Hit) -> Match | None:
        pattern = self._patterns[hit.rule]
        lo = max(0, hit.end - WINDOW)
        hi = min(len(data), hit.end + WINDOW)
        for m in pattern.finditer(data, lo, hi):
            start, end = m.span("value")
            if start < hit.end <= end:
                return Match(rule=self.rules[hit.rule], start=start, end=end, value=data[start:end])
            if start >= hit.end:
                break
        return None
