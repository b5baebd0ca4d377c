"""Jupyter notebooks (``.ipynb``, nbformat 4 and 3) as containers of cells.

A notebook is recognised by its content (a JSON object with ``cells`` or
``worksheets`` and ``nbformat``), never by its name. Its members are what Jupyter
shows: each cell's source (``cell 14``), each output as text (``cell 14 output 2``:
stream text, ``text/plain``, ``text/html``, JSON, an error's traceback without its
colour codes), Base64 images and attachments decoded (``cell 14 output 2 image/png``,
``cell 3 attachment name.png``), and whatever else the JSON holds as metadata
(``cell 14 metadata``, ``cell 14 output 2 metadata``, ``metadata``). Cells are
numbered by their 1-based position in the notebook, so a finding's line is a line of
the cell as Jupyter shows it. A notebook that does not parse, nests too deep, is
over :data:`MAX_NOTEBOOK_BYTES` or has more cells and outputs than the unpack budget's
members is not claimed: its raw bytes are scanned as before.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Iterator
from typing import Any

from keyscope.model import Skipped
from keyscope.sources.interface import Blob
from keyscope.unpack.archives import spent_members
from keyscope.unpack.interface import Budget, Expander, UnpackLimits

MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024  # parsed whole: larger ones are scanned as text
_PEEK = 64 * 1024  # where '"nbformat"' is looked for, at each end
_BOM = b"\xef\xbb\xbf"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# keys whose values say nothing a scan could report (kinds, counters, ids)
_PLAIN_KEYS = frozenset(
    {"cell_type", "execution_count", "id", "output_type", "level", "prompt_number",
     "language", "collapsed"}
)
# nbformat 3 puts an output's representations beside its other keys, by short name
_V3_MIME = {
    "text": "text/plain", "html": "text/html", "latex": "text/latex", "json": "application/json",
    "javascript": "application/javascript", "svg": "image/svg+xml", "png": "image/png",
    "jpeg": "image/jpeg", "pdf": "application/pdf",
}

Member = tuple[str, bytes]


def looks_like_notebook(data: bytes) -> bool:
    """The cheap check: a JSON object that names ``"nbformat"`` near one of its ends."""
    start = 3 if data.startswith(_BOM) else 0
    if data[start : start + 256].lstrip()[:1] != b"{":
        return False
    return (
        data.find(b'"nbformat"', 0, _PEEK) >= 0
        or data.rfind(b'"nbformat"', max(0, len(data) - _PEEK)) >= 0
    )


def notebook_members(data: bytes) -> list[Member] | None:
    """The members of a notebook in ``data`` (name, bytes), or None when ``data`` is
    not a notebook this expander can read whole."""
    if len(data) > MAX_NOTEBOOK_BYTES or not looks_like_notebook(data):
        return None
    try:
        nb = json.loads(data)
        if not isinstance(nb, dict) or not isinstance(nb.get("nbformat"), int):
            return None
        if isinstance(nb.get("cells"), list):
            cells: list[Any] = nb["cells"]
            rest = _without(nb, ("cells", "nbformat", "nbformat_minor"))
            sheets: list[Any] = []
        elif isinstance(nb.get("worksheets"), list):  # nbformat 3
            sheets = [s for s in nb["worksheets"] if isinstance(s, dict)]
            cells = [c for s in sheets if isinstance(s.get("cells"), list) for c in s["cells"]]
            rest = _without(nb, ("worksheets", "nbformat", "nbformat_minor"))
        else:
            return None
        members: list[Member] = []
        for number, cell in enumerate(cells, 1):
            members.extend(_cell(f"cell {number}", cell))
        for extra in [rest, *(_without(s, ("cells",)) for s in sheets)]:
            if extra:
                members.append(("metadata", _dumped(extra)))
        # more members than a budget allows would leave the rest unscanned: as text
        return members if len(members) <= UnpackLimits().members else None
    except (ValueError, RecursionError, MemoryError):  # not JSON, or nested too deep
        return None


class NotebookExpander(Expander):
    """Jupyter notebooks: cells, outputs, attachments and metadata as members."""

    name = "notebook"
    first = b"{\t\n\x0b\x0c\r \xef"  # a JSON object, after white space or a BOM

    def __init__(self) -> None:
        self._read: tuple[Blob, list[Member]] | None = None  # claims' work, for expand

    def claims(self, blob: Blob) -> bool:
        self._read = None
        members = notebook_members(blob.data)
        if members is None:
            return False
        self._read = (blob, members)
        return True

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        read, self._read = self._read, None
        members = read[1] if read is not None and read[0] is blob else notebook_members(blob.data)
        yield from spent_members(blob, members or (), budget)


def _cell(where: str, cell: Any) -> Iterator[Member]:
    if not isinstance(cell, dict):
        yield where, _dumped(cell)
        return
    source = cell.get("source", cell.get("input"))
    if source is not None:
        yield where, _utf8(_text(source))
    outputs = cell.get("outputs")
    if isinstance(outputs, list):
        for number, output in enumerate(outputs, 1):
            yield from _output(f"{where} output {number}", output)
    attachments = cell.get("attachments")
    if isinstance(attachments, dict):
        for name, bundle in attachments.items():
            yield from _bundle(f"{where} attachment {name}", bundle, suffix=False)
    rest = _without(cell, ("source", "input", "outputs", "attachments"))
    if rest:
        yield f"{where} metadata", _dumped(rest)


def _output(where: str, output: Any) -> Iterator[Member]:
    if not isinstance(output, dict):
        yield where, _dumped(output)
        return
    handled = ["data", "text", "traceback", "ename", "evalue", "name", "stream"]
    if "text" in output:  # a stream (v3 and v4) or v3's text/plain
        yield where, _utf8(_ansi_free(_text(output["text"])))
    if "traceback" in output or "ename" in output:
        yield where, _utf8(_traceback(output))
    data = output.get("data")
    if isinstance(data, dict):
        yield from _bundle(where, data, suffix=True)
    else:  # nbformat 3: the representations are keys of the output itself
        v3 = {_V3_MIME[k]: v for k, v in output.items() if k in _V3_MIME and k != "text"}
        yield from _bundle(where, v3, suffix=True)
        handled.extend(_V3_MIME)
    rest = _without(output, handled)
    if rest:
        yield f"{where} metadata", _dumped(rest)


def _bundle(where: str, bundle: Any, *, suffix: bool) -> Iterator[Member]:
    """One member per representation in a MIME bundle; binary ones decoded from
    Base64 (named by their type when ``suffix``)."""
    if not isinstance(bundle, dict):
        yield where, _dumped(bundle)
        return
    for mime, value in bundle.items():
        if isinstance(value, (dict, int, float, bool)) or value is None:
            yield where, _dumped(value)
            continue
        text = _text(value)
        decoded = None if _is_text(str(mime)) else _unbase64(text)
        if decoded is not None:
            yield (f"{where} {mime}" if suffix else where), decoded
        elif mime == "text/plain":
            yield where, _utf8(_ansi_free(text))
        else:
            yield where, _utf8(text)


def _traceback(output: dict[str, Any]) -> str:
    """An error as Jupyter shows it: the traceback lines without colour codes, and
    ``ename: evalue`` when the traceback does not end with it."""
    lines = output.get("traceback")
    shown = _ansi_free("\n".join(_text(x) for x in lines)) if isinstance(lines, list) else ""
    if lines is not None and not isinstance(lines, list):
        shown = _dumped_text(lines)
    last = f"{_text(output.get('ename', ''))}: {_text(output.get('evalue', ''))}"
    if last != ": " and last not in shown:
        shown = f"{shown}\n{last}" if shown else last
    return shown


def _is_text(mime: str) -> bool:
    return (
        mime.startswith("text/")
        or mime.endswith(("+xml", "+json", "json", "javascript", "xml"))
    )


def _unbase64(text: str) -> bytes | None:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        pass
    try:  # older writers wrapped Base64 in lines
        return binascii.a2b_base64("".join(text.split()), strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def _text(value: Any) -> str:
    """A notebook's multiline string (a string or a list of lines) as one string."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return "".join(value)
    return _dumped_text(value)


def _ansi_free(text: str) -> str:
    return _ANSI.sub("", text) if "\x1b" in text else text


def _without(obj: dict[str, Any], keys: Any) -> dict[str, Any]:
    """What ``obj`` holds besides ``keys`` and plain bookkeeping (kinds, counters, ids),
    with empty metadata left out."""
    return {
        k: v
        for k, v in obj.items()
        if k not in keys
        and not (k in _PLAIN_KEYS and not isinstance(v, (dict, list)))
        and not (k == "metadata" and v == {})
    }


def _dumped_text(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False)


def _dumped(value: Any) -> bytes:
    return _utf8(_dumped_text(value))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # JSON may hold lone surrogates
