"""Just enough DER to read a private key's structure offline: tag-length-value items,
object identifiers, integer sizes. Strict: a length that runs past its parent fails."""

from __future__ import annotations

from keyscope.errors import ParseError

SEQUENCE, INTEGER, OCTET_STRING, OID, NULL = 0x30, 0x02, 0x04, 0x06, 0x05


def item(data: bytes, at: int = 0) -> tuple[int, bytes, int]:
    """The DER item at ``at``: its tag, its content, and where the next item starts."""
    if at + 2 > len(data):
        raise ParseError("DER: truncated")
    tag, first = data[at], data[at + 1]
    at += 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or at + count > len(data):
            raise ParseError("DER: bad length")
        size = int.from_bytes(data[at : at + count], "big")
        at += count
    else:
        size = first
    if at + size > len(data):
        raise ParseError("DER: content runs past its container")
    return tag, data[at : at + size], at + size


def items(data: bytes) -> list[tuple[int, bytes]]:
    """Every item of a constructed value's content, in order."""
    out: list[tuple[int, bytes]] = []
    at = 0
    while at < len(data):
        tag, content, at = item(data, at)
        out.append((tag, content))
    return out


def sequence(data: bytes) -> list[tuple[int, bytes]]:
    """``data`` as exactly one SEQUENCE: its items."""
    tag, content, end = item(data)
    if tag != SEQUENCE or end != len(data):
        raise ParseError("DER: not one SEQUENCE")
    return items(content)


def oid(content: bytes) -> str:
    """An object identifier's content in dotted form."""
    if not content:
        raise ParseError("DER: empty OID")
    parts = [str(min(content[0] // 40, 2)), str(content[0] - 40 * min(content[0] // 40, 2))]
    value = 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(str(value))
            value = 0
    return ".".join(parts)


def bits(integer: bytes) -> int:
    """The bit length of a positive INTEGER's content."""
    return int.from_bytes(integer, "big").bit_length()
