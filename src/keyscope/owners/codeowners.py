"""CODEOWNERS files, read as data: GitHub's syntax (the last matching pattern wins)
and GitLab's (sections, each with its own last match, ``^[optional]``, ``[name][N]``,
default owners on the header line, ``!exclusions``).

Patterns are gitignore-like: a leading ``/`` or an inner ``/`` anchors a pattern at
the top level, ``*`` and ``?`` stay within one path segment, ``**`` crosses them, a
trailing ``/`` matches a directory and everything below it. GitHub also lets a
pattern without a trailing ``/`` match a directory (``/apps/github``), except one
that ends in ``/*`` (``docs/*``: direct children only); GitLab matches a directory's
contents only with the trailing ``/``. A file with a section header, or in
``.gitlab/``, is read with GitLab's rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# GitHub's first, then GitLab's: the first one present is the repository's file.
LOCATIONS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS")
MAX_BYTES = 3 * 1024 * 1024  # GitHub ignores a larger file
MAX_RULES = 20_000  # lines with a pattern; the rest of a larger file is not read

_SECTION = re.compile(r"^(\^)?\[([^\]]+)\](?:\[(\d+)\])?(?:\s+(.*))?$")


Token = tuple[str, "re.Pattern[str] | str | None"]


@dataclass(frozen=True)
class Glob:
    """A compiled pattern, matched by walking its states over the path once: no
    backtracking, so a hostile pattern costs at most its length times the path's."""

    tokens: tuple[Token, ...]  # lit c | one | class re | star | any | dirs (``**/``)
    itself: bool  # matches a path that is the pattern (not only a directory above it)
    below: bool  # matches every path below a directory that is the pattern
    prefix: str = ""  # the literal start of an anchored pattern: a path must start so
    literals: tuple[str, ...] = ()  # every literal run: a path must hold each of them
    first: str | None = None  # the first path segment, when the pattern spells it out

    def matches(self, path: str) -> bool:
        if not path.startswith(self.prefix) or not all(x in path for x in self.literals):
            return False  # cheap, and true of every directory above it too
        states = self._closure({(0, False)})
        end = len(self.tokens)
        for i, c in enumerate(path):
            if c == "/" and self.below and i and any(s[0] == end for s in states):
                return True  # the directory path[:i] is the pattern
            states = self._closure(self._step(states, c))
            if not states:
                return False
        return self.itself and any(s[0] == end for s in states)

    def _closure(self, states: set[tuple[int, bool]]) -> set[tuple[int, bool]]:
        stack = list(states)
        while stack:
            i, inside = stack.pop()
            skips = i < len(self.tokens) and self.tokens[i][0] in ("star", "any", "dirs")
            if skips and not inside and (i + 1, False) not in states:
                states.add((i + 1, False))
                stack.append((i + 1, False))
        return states

    def _step(self, states: set[tuple[int, bool]], c: str) -> set[tuple[int, bool]]:
        out: set[tuple[int, bool]] = set()
        for i, _ in states:
            if i >= len(self.tokens):
                continue
            kind, arg = self.tokens[i]
            if kind == "lit":
                if c == arg:
                    out.add((i + 1, False))
            elif kind == "one":
                if c != "/":
                    out.add((i + 1, False))
            elif kind == "class":
                if c != "/" and isinstance(arg, re.Pattern) and arg.fullmatch(c):
                    out.add((i + 1, False))
            elif kind == "star":
                if c != "/":
                    out.add((i, False))
            elif kind == "any":
                out.add((i, False))
            else:  # dirs: nothing, or anything ending in "/"
                out.add((i, True))
                if c == "/":
                    out.add((i + 1, False))
        return out


@dataclass(frozen=True)
class Rule:
    """One pattern line: its owners (empty: the path is left unowned)."""

    line: int
    pattern: str
    owners: tuple[str, ...]
    glob: Glob
    exclusion: bool = False  # GitLab ``!path``


@dataclass(frozen=True)
class Section:
    name: str  # "" for the rules before any header
    rules: tuple[Rule, ...]
    # rule positions by the first path segment their pattern spells out (None: any)
    index: dict[str | None, tuple[int, ...]] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, name: str, rules: list[Rule]) -> Section:
        index: dict[str | None, list[int]] = {}
        for i, rule in enumerate(rules):
            index.setdefault(rule.glob.first, []).append(i)
        return cls(name, tuple(rules), {k: tuple(v) for k, v in index.items()})

    def candidates(self, path: str) -> list[Rule]:
        """The rules that may match ``path``, last first: those anchored at its first
        segment and those that are not anchored at one (so a file of thousands of
        rules costs a few of them per path)."""
        first = self.index.get(path.split("/", 1)[0], ())
        picked = sorted((*first, *self.index.get(None, ())), reverse=True)
        return [self.rules[i] for i in picked]


@dataclass(frozen=True)
class Match:
    """Who a CODEOWNERS file names for one path, and the line that decided it."""

    owners: tuple[str, ...]
    line: int
    pattern: str
    section: str


@dataclass(frozen=True)
class CodeOwners:
    file: str  # where it was read, e.g. ".github/CODEOWNERS"
    sections: tuple[Section, ...]
    gitlab: bool

    def match(self, path: str) -> list[Match]:
        """The owners of ``path`` (relative to the repository's top level, ``/``
        separated): one match, or one per GitLab section that matches."""
        path = path.lstrip("/")
        out: list[Match] = []
        for section in self.sections:
            rule = _last_match(section.candidates(path), path)
            if rule is not None and not rule.exclusion and rule.owners:
                out.append(Match(rule.owners, rule.line, rule.pattern, section.name))
        return out


def _last_match(rules: list[Rule], path: str) -> Rule | None:
    """``rules`` last first."""
    excluded = None
    for rule in rules:
        if not rule.glob.matches(path):
            continue
        if rule.exclusion:
            excluded = excluded or rule
            continue
        return excluded or rule
    return excluded


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def parse_codeowners(text: str, file: str) -> CodeOwners:
    """Read a CODEOWNERS file; lines that are not valid are skipped, as the forges do."""
    lines = text.splitlines()
    gitlab = file.startswith(".gitlab/") or any(
        _SECTION.match(line.strip()) for line in lines if line.strip().startswith(("[", "^["))
    )
    sections: list[tuple[str, tuple[str, ...], list[Rule]]] = [("", (), [])]
    by_name: dict[str, int] = {"": 0}
    count = current = 0
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = _SECTION.match(line) if gitlab else None
        if header:
            name = header[2].strip()
            defaults = _owners(header[4] or "")
            key = name.lower()
            if key in by_name:  # duplicate sections are one section
                old = sections[by_name[key]]
                sections[by_name[key]] = (old[0], old[1] or defaults, old[2])
            else:
                by_name[key] = len(sections)
                sections.append((name, defaults, []))
            current = by_name[key]
            continue
        count += 1
        if count > MAX_RULES:
            break
        rule = _rule(line, number, sections[current][1], gitlab)
        if rule is not None:
            sections[current][2].append(rule)
    return CodeOwners(
        file, tuple(Section.of(name, rules) for name, _, rules in sections if rules), gitlab
    )


def _rule(line: str, number: int, defaults: tuple[str, ...], gitlab: bool) -> Rule | None:
    tokens = _split(line)
    if not tokens:
        return None
    pattern, rest = tokens[0], tokens[1:]
    exclusion = pattern.startswith("!")
    if exclusion:
        if not gitlab:
            return None  # GitHub has no negation: an invalid line
        pattern = pattern[1:]
    owners = _owners(" ".join(rest)) if rest else ()
    if gitlab and not owners and not exclusion:
        owners = defaults
    glob = compile_pattern(pattern, gitlab=gitlab)
    if glob is None:
        return None
    return Rule(number, tokens[0], owners, glob, exclusion)


def _split(line: str) -> list[str]:
    """Whitespace-separated tokens; ``\\ `` is a space in a pattern, ``\\#`` a ``#``."""
    tokens: list[str] = []
    current = ""
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line) and line[i + 1] in " \t#":
            current += line[i + 1]
            i += 2
            continue
        if c in " \t":
            if current:
                tokens.append(current)
                current = ""
        elif c == "#" and not current:
            break  # a comment after the owners
        else:
            current += c
        i += 1
    if current:
        tokens.append(current)
    return tokens


def _owners(text: str) -> tuple[str, ...]:
    out: list[str] = []
    for token in text.split():
        if token.startswith("#"):
            break
        if token.startswith("@") or "@" in token:  # @user, @org/team, @@role, an address
            out.append(token)
    return tuple(out)


def compile_pattern(pattern: str, *, gitlab: bool = False) -> Glob | None:
    """A CODEOWNERS (or ``[owners.paths]``) pattern, compiled; ``None`` for a pattern
    that cannot be one."""
    if not pattern or len(pattern) > 4096:
        return None
    directory = pattern.endswith("/")
    body = pattern.rstrip("/")
    anchored = body.startswith("/") or "/" in body
    body = body.lstrip("/")
    if not body:  # "/": the whole repository
        return Glob((("any", None),), True, True)
    tokens: list[Token] = [] if anchored else [("dirs", None)]
    i = 0
    while i < len(body):
        if body.startswith("**/", i):
            tokens.append(("dirs", None))
            i += 3
        elif body.startswith("**", i):
            tokens.append(("any", None))
            i += 2
        elif body[i] == "*":
            tokens.append(("star", None))
            i += 1
        elif body[i] == "?":
            tokens.append(("one", None))
            i += 1
        elif body[i] == "[" and gitlab and "]" in body[i + 2 :]:
            end = body.index("]", i + 2)
            inner = body[i + 1 : end]
            neg = inner[:1] in ("!", "^")
            inner = re.sub(r"([\\\]\[^])", r"\\\1", inner[1:] if neg else inner)
            try:
                tokens.append(("class", re.compile(f"[{'^' if neg else ''}{inner}]")))
            except re.error:
                return None
            i = end + 1
        else:
            tokens.append(("lit", body[i]))
            i += 1
    if gitlab:
        below = directory or body.endswith("**")
    else:
        below = directory or (not body.endswith("/*") and body != "*")
    runs = "".join(str(a) if k == "lit" else "\0" for k, a in tokens)
    prefix = runs.split("\0", 1)[0] if anchored else ""
    literals = tuple(sorted({r for r in runs.split("\0") if r}, key=len, reverse=True))
    first = None
    if "/" in prefix:
        first = prefix.split("/", 1)[0]
    elif anchored and prefix == runs:  # no wildcard at all: "/README.md"
        first = prefix
    return Glob(tuple(tokens), not directory, below, prefix, literals, first)
