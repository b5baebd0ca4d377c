"""A bound on the work of a user's capture regex (``--rules``), checked before any scan.

Python's ``re`` has no timeout, so a user's capture must be cheap by construction. It
runs on a window of ``USER_WINDOW`` bytes either side of its anchor hit, and is
accepted only when its backtracking is bounded by its shape: no quantifier inside a
repeated group (``(a+)+``, ``(a|ab)*``: exponential), no back-references, and at most
``MAX_PATHS`` ways to match from one position (the product of the choices of each
quantifier, ``*`` counting as the window's length; ``\\s*\\s*\\s*x`` is rejected).
"""

from __future__ import annotations

import importlib
import re
from typing import Any

# the standard library's own regex parser (typeshed has no stubs for these modules)
sre_parse: Any = importlib.import_module("re._parser")
sre: Any = importlib.import_module("re._constants")

USER_WINDOW = 256
MAX_PATHS = 1 << 14
_SPAN = 2 * USER_WINDOW  # the longest value a user's capture can match


class _Unsafe(Exception):
    pass


def check_capture(pattern: str) -> str | None:
    """Why ``pattern`` could backtrack catastrophically, or None when it is bounded."""
    try:
        tree = sre_parse.parse(pattern)
    except re.error as exc:
        return f"is not a valid regex ({exc})"
    try:
        paths = _paths(list(tree))
    except _Unsafe as exc:
        return f"can backtrack catastrophically: {exc}"
    if paths > MAX_PATHS:
        return (
            f"can backtrack catastrophically: {paths} ways to match from one position "
            f"(at most {MAX_PATHS}; use fewer or bounded quantifiers)"
        )
    return None


def _paths(items: list[Any]) -> int:
    total = 1
    for op, arg in items:
        total *= _node(op, arg)
        total = min(total, MAX_PATHS * _SPAN)  # enough to reject; keeps numbers small
    return total


def _node(op: Any, arg: Any) -> int:
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        lo, hi, inner = arg
        inner_paths = _paths(list(inner))
        if inner_paths > 1 and hi > 1:
            raise _Unsafe("a repeated group holds a quantifier or an alternation")
        return int(max(1, min(hi, _SPAN) - lo + 1))
    if op is sre.POSSESSIVE_REPEAT or op is sre.ATOMIC_GROUP:
        return 1  # never backtracked into
    if op is sre.SUBPATTERN:
        return _paths(list(arg[3]))
    if op is sre.BRANCH:
        return sum(_paths(list(b)) for b in arg[1])
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return _paths(list(arg[1]))
    if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
        raise _Unsafe("back-references are not allowed")
    return 1
