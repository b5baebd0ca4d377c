"""Matching engines: all rule anchors in one pass over a blob.

``HyperscanEngine`` compiles every anchor into one database (cached on disk) and scans
each blob once. ``ReEngine`` gives the same hits with the standard library; it is the
reference in tests and the fallback where Hyperscan is missing. Both report, per
rule, the end offsets of anchor matches; the capture stage (``capture.py``) does the
rest in Python, only around hits.

A rule's ``veto`` patterns are a second pass over a small window before each of its hits
(``VETO_WINDOW`` bytes): a hit where one of them ends is marked ``vetoed`` and reaches no
Python beyond being counted (a digest after ``sha512-`` has an account key's shape).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from keyscope.detect.rules import Rule
from keyscope.errors import ConfigError

VETO_WINDOW = 256  # bytes before a hit's end that its rule's veto patterns look at


@dataclass(frozen=True, order=True)
class Hit:
    """A rule's anchor matched, ending at ``end`` (exclusive byte offset)."""

    end: int
    rule: int  # index into the engine's rules
    vetoed: bool = False  # one of the rule's veto patterns ends here too


def _order(hit: Hit) -> tuple[int, int]:
    return hit.end, hit.rule  # as Hit's own order, without its slow generated __lt__


class Engine(Protocol):
    name: str
    rules: tuple[Rule, ...]

    def hits(self, data: bytes) -> list[Hit]:
        """Every anchor hit in ``data``, sorted by offset."""
        ...


class ReEngine:
    """Pure ``re``: one pattern per rule, skipped when none of its keywords occur."""

    name = "re"

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._compiled = [
            re.compile(r.pattern.encode(), re.IGNORECASE if r.case_insensitive else 0)
            for r in self.rules
        ]
        self._keywords = [tuple(k.encode() for k in r.keywords) for r in self.rules]
        self._vetoes = [
            tuple(
                re.compile(rb"(?:%s)\Z" % v.encode(), re.IGNORECASE if r.case_insensitive else 0)
                for v in r.veto
            )
            for r in self.rules
        ]

    def hits(self, data: bytes) -> list[Hit]:
        out: list[Hit] = []
        lowered: bytes | None = None
        for i, (pattern, keywords) in enumerate(zip(self._compiled, self._keywords, strict=True)):
            if keywords:
                if lowered is None:
                    lowered = data.lower()
                if not any(k in lowered for k in keywords):
                    continue
            vetoes = self._vetoes[i]
            for m in pattern.finditer(data):
                end = m.end()
                lo = max(0, end - VETO_WINDOW)
                vetoed = any(v.search(data, lo, end) for v in vetoes)
                out.append(Hit(end=end, rule=i, vetoed=vetoed))
        out.sort(key=_order)
        return out


class HyperscanEngine:
    """All anchors in one Hyperscan block-mode database."""

    name = "hyperscan"

    def __init__(self, rules: Sequence[Rule], cache_dir: Path | None = None) -> None:
        import hyperscan

        self._hs: Any = hyperscan
        self.rules = tuple(rules)
        anchors = [(i, r.pattern) for i, r in enumerate(self.rules)]
        self._db = self._load_or_compile(cache_dir, anchors)
        vetoes = [(i, v) for i, r in enumerate(self.rules) for v in r.veto]
        self._veto_db = self._load_or_compile(cache_dir, vetoes) if vetoes else None
        self._has_veto = [bool(r.veto) for r in self.rules]

    def hits(self, data: bytes) -> list[Hit]:
        if not data:
            return []
        found: set[Hit] = set()

        def on_match(rule: int, start: int, end: int, flags: int, ctx: object) -> None:
            found.add(Hit(end=end, rule=rule))

        self._db.scan(data, match_event_handler=on_match)
        if self._veto_db is not None and any(self._has_veto[h.rule] for h in found):
            found = {self._vetoed(data, h) if self._has_veto[h.rule] else h for h in found}
        return sorted(found, key=_order)

    def _vetoed(self, data: bytes, hit: Hit) -> Hit:
        """``hit``, marked when one of its rule's veto patterns ends where it ends."""
        window = data[max(0, hit.end - VETO_WINDOW) : hit.end]
        ends: list[bool] = []
        assert self._veto_db is not None

        def on_match(rule: int, start: int, end: int, flags: int, ctx: object) -> None:
            if rule == hit.rule and end == len(window):
                ends.append(True)

        self._veto_db.scan(window, match_event_handler=on_match)
        return Hit(end=hit.end, rule=hit.rule, vetoed=True) if ends else hit

    def _compile(self, patterns: Sequence[tuple[int, str]]) -> Any:
        hs = self._hs
        db = hs.Database(mode=hs.HS_MODE_BLOCK)
        try:
            db.compile(
                expressions=[p.encode() for _, p in patterns],
                ids=[i for i, _ in patterns],
                elements=len(patterns),
                flags=[
                    hs.HS_FLAG_CASELESS if self.rules[i].case_insensitive else 0
                    for i, _ in patterns
                ],
            )
        except hs.error as exc:
            if len(patterns) == 1:
                rule = self.rules[patterns[0][0]]
                raise ConfigError(
                    f"{rule.source}: rule {rule.id!r}: Hyperscan cannot compile its pattern "
                    f"{patterns[0][1]!r} ({exc}); write it without look-arounds or "
                    "back-references, or use --engine re"
                ) from None
            for one in patterns:  # name the rule: compile each alone
                self._compile([one])
            raise ConfigError(f"Hyperscan cannot compile the rule patterns ({exc})") from None
        return db

    def _load_or_compile(self, cache_dir: Path | None, patterns: list[tuple[int, str]]) -> Any:
        hs = self._hs
        if cache_dir is None:
            return self._compile(patterns)
        digest = hashlib.sha256(
            "\0".join(
                f"{i}\2{p}\1{self.rules[i].case_insensitive}" for i, p in patterns
            ).encode()
        ).hexdigest()[:24]
        path = cache_dir / f"hs-{digest}.db"
        try:
            db = hs.loadb(path.read_bytes(), hs.HS_MODE_BLOCK)
            db.scratch = hs.Scratch(db)  # a loaded database has no scratch space yet
            return db
        except Exception:  # missing, stale or from another Hyperscan build: recompile
            pass
        db = self._compile(patterns)
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(hs.dumpb(db))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache is not an error
        return db


def hyperscan_available() -> bool:
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return False
    return True


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "keyscope"


def make_engine(name: str, rules: Sequence[Rule], cache_dir: Path | None = None) -> Engine:
    """``auto`` picks Hyperscan when it is installed, else ``re``."""
    if name == "auto":
        name = "hyperscan" if hyperscan_available() else "re"
    if name == "hyperscan":
        return HyperscanEngine(rules, cache_dir)
    if name == "re":
        return ReEngine(rules)
    raise ValueError(f"unknown engine {name!r} (auto, hyperscan, re)")
