"""Property lists (``Info.plist``, ``GoogleService-Info.plist``, compiled ``.strings``,
any ``.plist``) as text that names each value's key.

A plist is recognised by its content: ``bplist00`` (read by the bounded reader in
``bplist.py``) or an XML document whose root is ``<plist>`` (read by ``plistlib``,
which refuses entity declarations, after a size cap). Its member ``<plist>`` is one
line per value, ``Root/Sub/0/Key = value``, so a finding's snippet names the key.
XML plists are presented this way too, not only scanned as text: their ``<data>``
values are Base64 wrapped over lines, which the byte scanner cannot read, and the
text scan would show ``<string>…</string>`` without its key; their comments are kept
as ``<comment> = …`` lines (the text scan's line numbers are lost: the snippet
names the key instead). Binary ``<data>`` values (a nested plist, an archive) are
members of their own, named by their key path, and unpacked in turn.

Hostile plists are bounded: each container is expanded once (a second reference, a
cycle included, is a ``(same as PATH)`` line), a path longer than :data:`MAX_PATH`
keeps its last steps (``…/d/d/Key``), the text stops at :data:`MAX_TEXT` bytes and
the values at :data:`MAX_VALUES`; each limit is a Skipped entry and what was written
before it is scanned. Objects of a binary plist that the tree does not reach are
listed after it (``<object N> = …``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keyscope.model import Skipped
from keyscope.sources.interface import Blob
from keyscope.unpack.archives import MEMBER_BYTES, spent_members
from keyscope.unpack.bplist import UID, BinaryPlist, Container, PlistError, Scalar
from keyscope.unpack.interface import Budget, Expander, member_path

TEXT_MEMBER = "<plist>"
MAX_XML_BYTES = 16 * 1024 * 1024  # parsed whole by plistlib: larger ones are scanned as text
MAX_TEXT = MEMBER_BYTES  # the rendered text of one plist
MAX_VALUES = 1_000_000
MAX_PATH = 512  # characters of a key path; a longer one keeps its last steps
KEY_SHOWN = 128  # a longer key is cut in paths and written whole on a line of its own
SHARED = 64  # strings and data longer than this are written once, then "(same as …)"
OWN_MEMBER = 256  # binary data from this size (or a nested plist) is a member of its own
_XML_HEAD = 1024


class _Stop(Exception):
    """A limit was reached: the reason, and the text so far is kept."""


@dataclass
class Branch:
    """A container as the renderer walks it: its children, labelled, one at a time."""

    children: Iterator[tuple[str, Any]]


@dataclass
class Rendered:
    """A plist as text, the data values that are members of their own, and why the
    text stops early (if it does)."""

    text: bytearray = field(default_factory=bytearray)
    data: list[tuple[str, bytes]] = field(default_factory=list)
    problem: str | None = None


class PlistExpander(Expander):
    """Binary and XML property lists: one ``<plist>`` member of ``key/path = value``
    lines, plus binary data values as members."""

    name = "plist"
    first = b"b<\t\n\x0b\x0c\r \xef\xff\xfe"  # bplist, or XML (white space, BOMs)

    def __init__(self) -> None:
        self._read: tuple[Blob, Any] | None = None  # claims' parse of an XML plist

    def claims(self, blob: Blob) -> bool:
        self._read = None
        data = blob.data
        if bytes(data[:6]) == b"bplist":
            try:
                BinaryPlist(data)
            except PlistError:
                return False
            return True
        if not looks_like_xml_plist(data):
            return False
        parsed = parse_xml_plist(data)
        if parsed is None:
            return False
        self._read = (blob, parsed)
        return True

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        read, self._read = self._read, None
        if bytes(blob.data[:6]) == b"bplist":
            rendered = render_binary(BinaryPlist(blob.data))
        else:
            parsed = read[1] if read is not None and read[0] is blob else None
            parsed = parsed if parsed is not None else parse_xml_plist(blob.data)
            rendered = render_xml(parsed, _utf8(blob.data)) if parsed is not None else Rendered()
        members = [(TEXT_MEMBER, bytes(rendered.text)), *rendered.data]
        yield from spent_members(blob, members, budget)
        if rendered.problem is not None:
            yield Skipped(member_path(blob, TEXT_MEMBER), rendered.problem)


def looks_like_xml_plist(data: bytes) -> bool:
    """The cheap check: an XML document (UTF-8, or UTF-16 with a byte-order mark)
    whose head declares a ``plist`` root."""
    head = _utf8(bytes(data[: 2 * _XML_HEAD]))[:_XML_HEAD].lstrip()
    return head.startswith((b"<?xml", b"<!DOCTYPE plist", b"<plist")) and (
        b"<!DOCTYPE plist" in head or b"<plist" in head
    )


def parse_xml_plist(data: bytes) -> Any | None:
    """An XML plist's value (plistlib; entity declarations are refused), or None when
    it is too big or does not parse."""
    if len(data) > MAX_XML_BYTES:
        return None
    import plistlib  # with its XML parser: loaded for the first XML plist
    import xml.parsers.expat

    try:
        return plistlib.loads(bytes(data), fmt=plistlib.FMT_XML)
    except (plistlib.InvalidFileException, xml.parsers.expat.ExpatError, ValueError,
            LookupError, TypeError, AttributeError, OverflowError,
            RecursionError, MemoryError):  # fmt: skip
        return None


def render_binary(plist: BinaryPlist) -> Rendered:
    """A binary plist as lines: the tree from its top object, then every string or
    data object the tree did not show."""
    seen: set[int] = set()

    def open_(index: int) -> Scalar | Branch:
        seen.add(index)
        value = plist.value(index)
        if not isinstance(value, Container):
            return value
        if value.kind != "dict":
            return Branch((str(i), ref) for i, ref in enumerate(plist.refs(value)))
        return Branch((key(k), ref) for k, ref in plist.entries(value))

    labels: dict[int, str] = {}  # a dict's keys are shared objects: read each once

    def key(index: int) -> str:
        label = labels.get(index)
        if label is None:
            try:
                name = plist.value(index)
            except PlistError as exc:
                walker.damaged(exc)
                name = f"<unreadable key {index}>"
            if not (isinstance(name, str) and len(name) > KEY_SHOWN):
                seen.add(index)  # a long key is cut in paths: written whole after the tree
            label = labels[index] = _label(name)
        return label

    walker = _Walker(open_, identity=lambda index: index)
    try:
        walker.walk(plist.top)
    except _Stop as exc:
        walker.problems.append(str(exc))
    try:  # what the tree did not show (unreferenced, or past the point it stopped)
        for index in range(plist.objects):
            if index not in seen:
                value = _value_or_none(plist, index)
                if isinstance(value, (str, bytes)):
                    walker.line(f"<object {index}>", value)
    except _Stop as exc:
        walker.problems.append(str(exc))
    return walker.finish("binary plist")


def _value_or_none(plist: BinaryPlist, index: int) -> Scalar | Container:
    try:
        return plist.value(index)
    except PlistError:
        return None


def render_xml(value: Any, raw: bytes) -> Rendered:
    """A parsed XML plist as lines, then its comments."""

    long_keys: list[str] = []

    def open_(node: Any) -> Scalar | Branch:
        if isinstance(node, dict):
            long_keys.extend(k for k in node if len(k) > KEY_SHOWN)
            return Branch((_label(k), v) for k, v in node.items())
        if isinstance(node, list):
            return Branch((str(i), v) for i, v in enumerate(node))
        return node  # type: ignore[no-any-return]

    walker = _Walker(open_, identity=lambda node: None)
    try:
        walker.walk(value)
        for name in long_keys:
            walker.line("<key>", name)
        for comment in _comments(raw):
            walker.line("<comment>", comment)
    except _Stop as exc:
        walker.problems.append(str(exc))
    return walker.finish("XML plist")


class _Walker:
    """Writes ``path = value`` lines for a tree, iteratively, within the limits."""

    def __init__(
        self, open_: Callable[[Any], Scalar | Branch], identity: Callable[[Any], int | None]
    ) -> None:
        self.open = open_
        self.identity = identity
        self.first: dict[int, str] = {}  # object → the path it was first written at
        self.values = 0
        self.out = Rendered()
        self.problems: list[str] = []
        self.unreadable = 0

    def damaged(self, exc: PlistError) -> None:
        """An object that cannot be read: noted (the first few reasons), walk on."""
        self.unreadable += 1
        if self.unreadable <= 3:
            self.problems.append(str(exc))

    def finish(self, kind: str) -> Rendered:
        """The text, with why it is incomplete (if it is)."""
        if self.unreadable > 3:
            self.problems.append(f"{self.unreadable} unreadable objects in all")
        if self.problems:
            self.out.problem = f"{kind} not read to the end: {'; '.join(self.problems)}"
        return self.out

    def walk(self, top: Any) -> None:
        stack: list[tuple[str, Iterator[tuple[str, Any]]]] = []
        self._visit("", top, stack)
        while stack:
            path, children = stack[-1]
            step = next(children, None)
            if step is None:
                stack.pop()
                continue
            label, child = step
            self._visit(_joined(path, label), child, stack)

    def _visit(self, path: str, node: Any, stack: list[tuple[str, Iterator[Any]]]) -> None:
        ident = self.identity(node)
        if ident is not None and ident in self.first:
            self.line(path, f"(same as {self.first[ident] or '(root)'})")
            return
        try:
            value = self.open(node)
        except PlistError as exc:
            self.damaged(exc)
            self.line(path, "(unreadable)")
            return
        if isinstance(value, Branch):
            if ident is not None:
                self.first[ident] = path
            stack.append((path, value.children))
            return
        if ident is not None and isinstance(value, (str, bytes)) and len(value) > SHARED:
            self.first[ident] = path
        self.line(path, value)

    def line(self, path: str, value: Scalar) -> None:
        """One ``path = value`` line; binary data big enough is a member instead."""
        self.values += 1
        if self.values > MAX_VALUES:
            raise _Stop(f"more than {MAX_VALUES} values")
        if isinstance(value, bytes) and _own_member(value):
            self.out.data.append((path or "<data>", value))
            text = f"<{len(value)} bytes of data>".encode()
        else:
            text = _value_bytes(value)
        label = path or "(root)"
        self.out.text += label.encode("utf-8", "surrogatepass") + b" = " + text + b"\n"
        if len(self.out.text) > MAX_TEXT:
            del self.out.text[MAX_TEXT:]
            raise _Stop(f"its text is longer than {MAX_TEXT} bytes")


def _joined(path: str, label: str) -> str:
    """``path/label``, its first steps dropped (``…/``) once longer than MAX_PATH:
    nesting has no limit of its own, each line's length has."""
    joined = f"{path}/{label}" if path else label
    if len(joined) <= MAX_PATH:
        return joined
    cut = joined.find("/", len(joined) - MAX_PATH // 2)
    return "…/" + (joined[cut + 1 :] if cut >= 0 else label)


def _own_member(data: bytes) -> bool:
    if data.startswith(b"bplist"):
        return True
    if len(data) < OWN_MEMBER:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _value_bytes(value: Scalar) -> bytes:
    if isinstance(value, bytes):
        return value  # text or small binary data, as the scanner would read it
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, bool) or value is None:
        return {True: b"true", False: b"false", None: b"null"}[value]
    if isinstance(value, datetime):
        return value.isoformat().encode()
    if isinstance(value, UID):
        return f"UID({value.value})".encode()
    return repr(value).encode()


def _label(key: Scalar | Container) -> str:
    """A dict key as a path step: control characters escaped, cut after KEY_SHOWN."""
    if isinstance(key, str):
        text = key
    elif isinstance(key, Container):
        text = f"<{key.kind}>"
    else:
        text = f"<{_value_bytes(key)[: KEY_SHOWN + 1].decode('utf-8', 'replace')}>"
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= KEY_SHOWN else text[:KEY_SHOWN] + "…"


def _utf8(data: bytes) -> bytes:
    """XML text as UTF-8: UTF-16 with a byte-order mark transcoded, a UTF-8 mark dropped
    (plistlib itself reads either)."""
    for bom, codec in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return data[2:].decode(codec, "replace").encode("utf-8")
    return bytes(data).removeprefix(b"\xef\xbb\xbf")


def _comments(raw: bytes) -> Iterator[str]:
    """The text of each ``<!-- … -->`` in an XML document, found in one pass."""
    at = raw.find(b"<!--")
    while at >= 0:
        end = raw.find(b"-->", at + 4)
        if end < 0:
            return
        yield bytes(raw[at + 4 : end]).decode("utf-8", "replace").strip()
        at = raw.find(b"<!--", end + 3)
