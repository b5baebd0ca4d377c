"""Undo the escaping layers that credentials pick up when pasted into other text.

HTML (``&amp;``), JSON (``\\u0026``, ``\\/``), doubly-escaped JSON (``\\\\u0026``) and
percent-encoding of a whole URL or query. Each function is small and total: it
never raises, and returns its input unchanged when there is nothing to undo.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

_JSON_ESCAPES = re.compile(r"\\+(?:u([0-9a-fA-F]{4})|(/)|([nrt\"]))")
_CONTROL = {"n": "\n", "r": "\r", "t": "\t", '"': '"'}
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
MAX_LAYERS = 4
# A value continued on the next line: string-literal concatenation ("…" ⏎ "…",
# "…" + ⏎ "…", Java's "…" ⏎ + "…"; the next literal may carry a prefix: Python's f"…"
# r"…" b"…", C#'s $"…" @"…" $@"…"), or a plain line break with the next line's
# indentation and mail quote markers (a YAML block scalar, a hard-wrapped mail or
# terminal line).
STRING_OPEN = r"""(?:(?:[rRbBuUfF]{1,2}|[$@]{1,2})?["'])?"""
LINE_BREAK = (
    r"""(?:["'][ \t]*\+?)?[ \t]*\r?\n[ \t]*(?:>[ \t]*)*(?:\+[ \t]*)?"""
    + STRING_OPEN
)
_LINE_BREAK = re.compile(LINE_BREAK)


def unescape_json(text: str) -> str:
    """``\\u0026`` → ``&``, ``\\/`` → ``/``, ``\\n`` → newline, ``\\"`` → ``"``; any number
    of backslashes (doubly escaped JSON) counts as one escape."""

    def repl(m: re.Match[str]) -> str:
        if m.group(2):
            return "/"
        if m.group(3):
            return _CONTROL[m.group(3)]
        return chr(int(m.group(1), 16))

    out = _JSON_ESCAPES.sub(repl, text)
    try:  # rejoin surrogate pairs (\ud83d\ude00 is one character)
        return out.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeError:
        return out


def join_wrapped(text: str) -> str:
    """A value continued over line breaks, joined: the breaks, with the quotes, ``+``,
    indentation and ``>`` markers around them, removed."""
    return _LINE_BREAK.sub("", text) if "\n" in text else text


def unescape_html(text: str) -> str:
    if "&" not in text or ";" not in text:
        return text
    import html  # with its entity tables: loaded for the first text that has one

    return html.unescape(text)


def unescape_layers(text: str) -> str:
    """Apply JSON and HTML unescaping until the text stops changing."""
    for _ in range(MAX_LAYERS):
        new = unescape_html(unescape_json(text))
        if new == text:
            break
        text = new
    return text


def percent_decode(value: str, times: int = MAX_LAYERS) -> str:
    """Percent-decode repeatedly (values encoded once or twice). ``+`` stays ``+``."""
    for _ in range(times):
        if not _PERCENT.search(value):
            break
        value = unquote(value)
    return value


def looks_percent_encoded_query(text: str) -> bool:
    """A whole query encoded as one value: ``sv%3D…%26sig%3D…``."""
    lower = text.lower()
    return "=" not in text and ("%3d" in lower or "%253d" in lower)
