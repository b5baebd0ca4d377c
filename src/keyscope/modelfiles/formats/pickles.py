"""Bare pickles: with a PROTO opcode (protocol 2-5), or a protocol 0/1 candidate,
which has no magic number and is proven only by parsing.

``may_start_pickle`` is the cheap test a blob without a magic number passes before
the emulator reads it: it follows the first opcode as ``pickle.load`` would and says
no only where the load fails there, before anything could run. Most text starts with
a letter that is an opcode (``import`` is INST), and would otherwise go to the
emulator."""

from __future__ import annotations

from collections.abc import Callable

from keyscope.modelfiles.formats.spec import ModelFormat

# Every byte a pickle opcode can be: the emulator's dispatch table
# (``pickle_vm.OPCODES``, which a test holds equal to this).
OPCODES = frozenset(
    b"().012BCFGIJKLMNPQRSTUVX]abcdeghijlopqrstu}"
    b"\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f"
    b"\x90\x91\x92\x93\x94\x95\x96\x97\x98"
)
# The opcodes that read nothing from the stack, a MARK or the memo. Every other one
# fails on an empty unpickler (stack underflow, no MARK, no memo entry), so a stream
# that starts with it breaks at its first byte with nothing done; a test runs each
# through pickle.loads and the emulator.
STARTS = frozenset(
    b"()]}BCFGIJKLMNPSTUVXc"
    b"\x80\x82\x83\x84\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x95\x96\x97"
)
# The first opcode's argument: a fixed size, or a count of this many bytes followed by
# that many bytes (the count little-endian and unsigned, as _pickle's calc_binsize;
# a negative LONG4 count is refused there, and does not fit here either).
_FIXED = {
    **dict.fromkeys(b"()]}N\x88\x89\x8f", 0),
    ord("K"): 1,
    ord("M"): 2,
    ord("J"): 4,
    ord("G"): 8,
}
_COUNTED = {
    **dict.fromkeys(b"UC\x8c\x8a", 1),
    **dict.fromkeys(b"TXB\x8b", 4),
    **dict.fromkeys(b"\x8d\x8e\x96", 8),
}
_DIGITS = frozenset(b"0123456789")
LINE_LOOK = 4096  # bytes looked at for a text argument's newline; a longer line passes


def _number(line: bytes) -> bool:
    # INT and LONG parse with strtol or int(s, 0), FLOAT with PyOS_string_to_double:
    # none reads a number without a digit (INT reads "\0…" as 0: C stops at the NUL)
    if not _DIGITS.isdisjoint(line) or line[:1] == b"\0":
        return True
    lower = line.lower()
    return b"inf" in lower or b"nan" in lower


def _any(line: bytes) -> bool:
    return True


def _quoted(line: bytes) -> bool:
    return len(line) >= 2 and line[:1] == line[-1:] and line[:1] in (b"'", b'"')


def dotted(name: str) -> bool:
    """A name an import can resolve: identifiers joined by dots."""
    return all(part.isidentifier() for part in name.split("."))


def _name(line: bytes) -> bool:
    # GLOBAL's module and name without a magic number: the emulator ends the stream
    # at a name that is no dotted identifier (the import would fail; text is no pickle)
    try:
        return bool(line) and dotted(line.decode("utf-8"))
    except UnicodeDecodeError:
        return False


# The first opcode's text lines (each up to a newline), and what each must be.
_LINES: dict[int, tuple[Callable[[bytes], bool], ...]] = {
    ord("I"): (_number,),
    ord("L"): (_number,),
    ord("F"): (_number,),
    ord("S"): (_quoted,),
    ord("V"): (_any,),  # raw-unicode-escape
    ord("P"): (_any,),  # a persistent id
    ord("c"): (_name, _name),
}


def may_start_pickle(data: bytes, partial: bool = False) -> bool:
    """Whether ``pickle.load`` can read past the first opcode of ``data``: its first
    byte is an opcode that needs nothing on the stack, its argument is all there and
    of the right form, and the byte after it is an opcode. When not, the load fails
    at the first opcode, before it could import or call anything, so ``data`` is no
    pickle. With ``partial``, ``data`` is only the head of a larger file: an argument
    that runs past it is given the benefit of the doubt. Opcodes whose reading is
    subtler (PROTO, FRAME, EXT, buffers) are left to the emulator."""
    if not len(data) or data[0] not in STARTS:
        return False
    if len(data) < 2:  # an opcode with nothing after it: pickle.load reads on
        return partial
    op = data[0]
    pos = 1
    if op in _FIXED:
        pos += _FIXED[op]
    elif op in _COUNTED:
        width = _COUNTED[op]
        if 1 + width > len(data):
            return partial
        pos += width + int.from_bytes(data[1 : 1 + width], "little")
    elif op in _LINES:
        for check in _LINES[op]:
            nl = data.find(b"\n", pos, pos + LINE_LOOK)
            if nl < 0:  # no newline: truncated, unless the line is only long
                return partial or len(data) > pos + LINE_LOOK
            if not check(bytes(data[pos:nl])):
                return False
            pos = nl + 1
    else:
        return True
    if pos >= len(data):
        return partial
    return data[pos] in OPCODES


def _pickle(data: bytes, head: bytes, partial: bool) -> bool:
    return head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")


def _pickle0(data: bytes, head: bytes, partial: bool) -> bool:
    # opens a tuple, global, dict or list and ends with STOP (a line break after it)
    return (
        head[:1] in (b"(", b"c", b"}", b"]")
        and bytes(data[-4:]).rstrip(b"\r\n")[-1:] == b"."
        and may_start_pickle(data, partial)
    )


# A raw pickle, or PyTorch's legacy format (pickles back to back).
PICKLE = ModelFormat("pickle", _pickle, holds_pickles=True, first=b"\x80")
# A candidate only: analyze_model reads it as a header-less pickle.
PICKLE0 = ModelFormat("pickle0", _pickle0, holds_pickles=True, first=b"(c}]")
