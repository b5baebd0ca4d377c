"""Detection rules are data: TOML files with patterns, references and examples.

The built-in files live in ``detect/rules/``; ``--rules DIR`` adds a user's. The
loader validates every rule and fails with a message naming the file and rule.
"""

from __future__ import annotations

import base64
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from keyscope.detect.guard import check_capture
from keyscope.errors import ConfigError
from keyscope.providers.registry import parser_names

# Parsers the pipeline runs itself: decode and scan again. Every other parser name
# belongs to a provider (``providers/registry.py``).
LAYER_PARSERS = frozenset({"base64"})
_ID = re.compile(r"^[a-z0-9][a-z0-9.-]{2,80}$")
_REQUIRED = ("id", "name", "description", "parser", "capture", "examples")


@dataclass(frozen=True)
class Rule:
    """One detection rule. ``pattern`` is the anchor (Hyperscan and ``re`` syntax);
    ``capture`` takes the whole value around an anchor hit."""

    id: str
    name: str
    description: str
    parser: str
    pattern: str
    case_insensitive: bool
    keywords: tuple[str, ...]
    capture: str
    references: tuple[str, ...]
    examples: tuple[str, ...]
    negative_examples: tuple[str, ...]
    source: str
    # A value that does not contain this regex is continued over line breaks (a SAS
    # split over string literals or wrapped by a mail client); None: never.
    complete: str | None = None
    builtin: bool = False  # a user's rule (--rules) runs its capture under a guard
    # Patterns of contexts in which an anchor hit cannot be a credential (a digest after
    # `sha512-`): a hit where one of them ends is dropped by the engine, before any Python
    # runs on it, and counted under ``veto_reason``.
    veto: tuple[str, ...] = ()
    veto_reason: str = ""
    # Rules whose values can hold this rule's whole value as their credential's secret (a
    # key inside its connection string): a match inside such a match, with that secret,
    # is the same credential at the same place, and is not parsed a second time.
    seen_inside: tuple[str, ...] = ()

    def compiled_capture(self) -> re.Pattern[bytes]:
        return re.compile(self.capture.encode(), re.MULTILINE)


def known_parsers() -> frozenset[str]:
    """The parser names a rule may give: the pipeline's layers and every registered
    provider's parsers, as they stand when the rules are loaded."""
    return LAYER_PARSERS | parser_names()


def builtin_rule_files() -> list[Path]:
    """The rule files shipped in the package (installed as files, next to this module)."""
    return sorted(Path(__file__).parent.joinpath("rules").glob("*.toml"))


def load_rules(extra_dirs: tuple[Path, ...] = ()) -> tuple[Rule, ...]:
    """The built-in rules plus every ``*.toml`` in ``extra_dirs``. Ids must be unique."""
    paths = builtin_rule_files()
    builtin = set(paths)
    for d in extra_dirs:
        if not d.is_dir():
            raise ConfigError(f"--rules {d}: not a directory")
        found = sorted(d.glob("*.toml"))
        if not found:
            raise ConfigError(f"--rules {d}: no *.toml rule files in it")
        paths.extend(found)
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for path in paths:
        for rule in load_rule_file(path, builtin=path in builtin):
            if rule.id in seen:
                raise ConfigError(f"{path}: rule id {rule.id!r} already defined in {seen[rule.id]}")
            seen[rule.id] = str(path)
            rules.append(rule)
    for rule in rules:
        unknown = [rid for rid in rule.seen_inside if rid not in seen]
        if unknown:
            raise ConfigError(f"{rule.source}: rule {rule.id!r}: seen_inside names no rule "
                              f"{', '.join(map(repr, unknown))}")  # fmt: skip
    return tuple(rules)


def load_rule_file(path: Path, builtin: bool = False) -> list[Rule]:
    """The rules of one file; a user's file (``builtin=False``) has its captures checked
    for catastrophic backtracking."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read rules ({exc})") from None
    entries = data.get("rules")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected one or more [[rules]] tables")
    return [_rule(entry, path, builtin) for entry in entries]


def _rule(entry: object, path: Path, builtin: bool) -> Rule:
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: each [[rules]] entry must be a table")
    rid = entry.get("id", "?")
    where = f"{path}: rule {rid!r}"
    for key in _REQUIRED:
        if not entry.get(key):
            raise ConfigError(f"{where}: missing {key!r}")
    if not _ID.match(str(rid)):
        raise ConfigError(f"{where}: id must be lower-case letters, digits, '.' and '-'")
    known = known_parsers()
    if entry["parser"] not in known:
        raise ConfigError(
            f"{where}: unknown parser {entry['parser']!r} (known: {', '.join(sorted(known))})"
        )
    pattern = entry.get("pattern")
    if "base64_of" in entry:
        pattern = base64_anchor(list(entry["base64_of"]))
    if not pattern:
        raise ConfigError(f"{where}: missing 'pattern' (or 'base64_of')")
    complete = entry.get("complete")
    veto = entry.get("veto", [])
    if not isinstance(veto, list) or not all(isinstance(v, str) and v for v in veto):
        raise ConfigError(f"{where}: veto must be a list of patterns")
    seen_inside = entry.get("seen_inside", [])
    if not isinstance(seen_inside, list) or not all(isinstance(v, str) for v in seen_inside):
        raise ConfigError(f"{where}: seen_inside must be a list of rule ids")
    if veto and not entry.get("veto_reason"):
        raise ConfigError(f"{where}: a veto needs a veto_reason (what is set aside, and why)")
    checked = [("pattern", pattern), ("capture", entry["capture"]), ("complete", complete)]
    # a user's regexes are checked here; the built-in ones by the tests (every example
    # runs through both engines), not at every start
    for key, text in [*checked, *(("veto", v) for v in veto)] if not builtin else ():
        if text is None:
            continue
        try:
            re.compile(str(text).encode())
        except re.error as exc:
            raise ConfigError(f"{where}: {key} is not a valid regex ({exc})") from None
    if "(?P<value>" not in entry["capture"]:
        raise ConfigError(f"{where}: capture needs a named group (?P<value>…)")
    if not builtin:
        for key in ("capture", "complete"):
            problem = check_capture(str(entry[key])) if entry.get(key) else None
            if problem:
                raise ConfigError(f"{where}: {key} {problem}")
    return Rule(
        id=str(rid),
        name=str(entry["name"]),
        description=" ".join(str(entry["description"]).split()),
        parser=str(entry["parser"]),
        pattern=str(pattern),
        case_insensitive=bool(entry.get("case_insensitive", False)),
        keywords=tuple(str(k).lower() for k in entry.get("keywords", ())),
        capture=str(entry["capture"]),
        references=tuple(entry.get("references", ())),
        examples=tuple(entry["examples"]),
        negative_examples=tuple(entry.get("negative_examples", ())),
        source=str(path),
        complete=str(complete) if complete else None,
        builtin=builtin,
        veto=tuple(veto),
        veto_reason=" ".join(str(entry.get("veto_reason", "")).split()),
        seen_inside=tuple(seen_inside),
    )


def base64_anchor(texts: list[str]) -> str:
    """A regex matching any of ``texts`` Base64-encoded at any of the three alignments."""
    variants: list[str] = []
    for text in texts:
        raw = text.encode()
        for pad in range(3):
            enc = base64.b64encode(b"\0" * pad + raw).decode()
            start = (0, 2, 3)[pad]
            end = (pad + len(raw)) // 3 * 4
            body = enc[start:end]
            if len(body) >= 8:
                variants.append(re.escape(body))
    return "(" + "|".join(variants) + ")"
