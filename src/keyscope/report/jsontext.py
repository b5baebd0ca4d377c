"""JSON text with two-space indentation, written fast.

``json.dumps(value, indent=2, ensure_ascii=False)`` runs Python's pure-Python encoder
(the C one does not indent): about a tenth of a millisecond per finding of a scan
document. ``indented`` writes the same text, byte for byte, in one recursive pass that
appends pieces to a list, with the C string encoder.
"""

from __future__ import annotations

from collections.abc import Iterator
from json.encoder import encode_basestring
from typing import Any

_INDENT = "  "


class Text(str):
    """JSON text already written for the place it goes (its lines indented for it, as
    :func:`written` gives): written as it is."""

    __slots__ = ()


def written(value: Any, newline: str) -> str:
    """The text of ``value`` as :func:`indented` writes it where a new line is
    ``newline`` (``"\n    "``: an item of an array that is a member of the document)."""
    out: list[str] = []
    _write(value, out, newline)
    return "".join(out)


def indented(value: Any) -> str:
    """The text ``json.dumps(value, indent=2, ensure_ascii=False)`` gives."""
    out: list[str] = []
    _write(value, out, "\n")
    return "".join(out)


def chunks(value: Any, depth: int = 2) -> Iterator[str]:
    """The text of :func:`indented` in pieces, one per member of an object or array down
    to ``depth`` levels, so that a large document is written while it is made. An
    iterator stands for an array there: its items are made, written and let go one by
    one."""
    yield from _chunks(value, "\n", depth)


def _chunks(value: Any, newline: str, depth: int) -> Iterator[str]:
    cls = type(value)
    if depth > 0 and cls is dict:
        inner = newline + _INDENT
        sep = "{" + inner
        for key, item in value.items():
            yield sep + encode_basestring(_key(key)) + ": "
            yield from _chunks(item, inner, depth - 1)
            sep = "," + inner
        yield "{}" if sep[0] == "{" else newline + "}"
    elif depth > 0 and (cls is list or isinstance(value, Iterator)):
        inner = newline + _INDENT
        sep = "[" + inner
        for item in value:
            yield sep
            yield from _chunks(item, inner, depth - 1)
            sep = "," + inner
        yield "[]" if sep[0] == "[" else newline + "]"
    else:
        out: list[str] = []
        _write(value, out, newline)
        yield "".join(out)


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "Infinity"
    if value == -float("inf"):
        return "-Infinity"
    return float.__repr__(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, float):
        return _float(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _write(value: Any, out: list[str], newline: str) -> None:
    cls = type(value)
    if cls is str:
        out.append(encode_basestring(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif cls is int:
        out.append(int.__repr__(value))
    elif cls is float:
        out.append(_float(value))
    elif cls is dict:
        _object(value, out, newline)
    elif cls is list or cls is tuple:
        _array(value, out, newline)
    elif cls is Text:
        out.append(value)
    # subclasses, in the order json's encoder tries them
    elif isinstance(value, str):
        out.append(encode_basestring(value))
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_float(value))
    elif isinstance(value, (list, tuple)):
        _array(value, out, newline)
    elif isinstance(value, dict):
        _object(value, out, newline)
    else:
        raise TypeError(f"Object of type {cls.__name__} is not JSON serializable")


def _object(value: dict[Any, Any], out: list[str], newline: str) -> None:
    if not value:
        out.append("{}")
        return
    inner = newline + _INDENT
    sep = "{" + inner
    for key, item in value.items():
        out.append(sep)
        out.append(encode_basestring(_key(key)))
        out.append(": ")
        _write(item, out, inner)
        sep = "," + inner
    out.append(newline + "}")


def _array(value: list[Any] | tuple[Any, ...], out: list[str], newline: str) -> None:
    if not value:
        out.append("[]")
        return
    inner = newline + _INDENT
    sep = "[" + inner
    for item in value:
        out.append(sep)
        _write(item, out, inner)
        sep = "," + inner
    out.append(newline + "]")
