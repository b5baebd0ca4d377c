"""Matching engines: all rule anchors in one pass over a blob.

``HyperscanEngine`` compiles every anchor into one database (cached on disk) and scans
each blob once. ``ReEngine`` gives the same hits with the standard library; it is the
reference in tests and the fallback where Hyperscan is missing. Both report, per
rule, the end offsets of anchor matches; the capture stage (``capture.py``) does the
rest in Python, only around hits.
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


@dataclass(frozen=True, order=True)
class Hit:
    """A rule's anchor matched, ending at ``end`` (exclusive byte offset)."""

    end: int
    rule: int  # index into the engine's rules


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

    def hits(self, data: bytes) -> list[Hit]:
        out: list[Hit] = []
        lowered: bytes | None = None
        for i, (pattern, keywords) in enumerate(zip(self._compiled, self._keywords, strict=True)):
            if keywords:
                if lowered is None:
                    lowered = data.lower()
                if not any(k in lowered for k in keywords):
                    continue
            out.extend(Hit(end=m.end(), rule=i) for m in pattern.finditer(data))
        out.sort(key=_order)
        return out


class HyperscanEngine:
    """All anchors in one Hyperscan block-mode database."""

    name = "hyperscan"

    def __init__(self, rules: Sequence[Rule], cache_dir: Path | None = None) -> None:
        import hyperscan

        self._hs: Any = hyperscan
        self.rules = tuple(rules)
        self._db = self._load_or_compile(cache_dir)

    def hits(self, data: bytes) -> list[Hit]:
        if not data:
            return []
        found: set[Hit] = set()

        def on_match(rule: int, start: int, end: int, flags: int, ctx: object) -> None:
            found.add(Hit(end=end, rule=rule))

        self._db.scan(data, match_event_handler=on_match)
        return sorted(found, key=_order)

    def _compile(self, rules: Sequence[Rule] | None = None) -> Any:
        hs = self._hs
        rules = self.rules if rules is None else rules
        db = hs.Database(mode=hs.HS_MODE_BLOCK)
        try:
            db.compile(
                expressions=[r.pattern.encode() for r in rules],
                ids=list(range(len(rules))),
                elements=len(rules),
                flags=[hs.HS_FLAG_CASELESS if r.case_insensitive else 0 for r in rules],
            )
        except hs.error as exc:
            if len(rules) == 1:
                rule = rules[0]
                raise ConfigError(
                    f"{rule.source}: rule {rule.id!r}: Hyperscan cannot compile its pattern "
                    f"({exc}); write it without look-arounds or back-references, "
                    "or use --engine re"
                ) from None
            for rule in rules:  # name the rule: compile each alone
                self._compile([rule])
            raise ConfigError(f"Hyperscan cannot compile the rule patterns ({exc})") from None
        return db

    def _load_or_compile(self, cache_dir: Path | None) -> Any:
        hs = self._hs
        if cache_dir is None:
            return self._compile()
        digest = hashlib.sha256(
            "\0".join(f"{r.pattern}\1{r.case_insensitive}" for r in self.rules).encode()
        ).hexdigest()[:24]
        path = cache_dir / f"hs-{digest}.db"
        try:
            db = hs.loadb(path.read_bytes(), hs.HS_MODE_BLOCK)
            db.scratch = hs.Scratch(db)  # a loaded database has no scratch space yet
            return db
        except Exception:  # missing, stale or from another Hyperscan build: recompile
            pass
        db = self._compile()
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
