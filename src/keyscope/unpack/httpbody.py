"""HTTP messages as stored bytes: a response split into its status, headers and body,
a chunked body joined, a compressed body (gzip, deflate, br, zstd) decoded, each
within a byte cap. Shared by the web-archive reader (``unpack/warc.py``) and the
crawler (``crawl/fetch.py``): every function answers a reason string instead of
raising for hostile bytes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

HEAD_BYTES = 64 * 1024  # status line and headers of one message
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class HttpMessage:
    """A stored HTTP response: its status (None when the head is not a status
    line), headers (lower-case names, in order) and the body as stored."""

    status: int | None
    headers: tuple[tuple[str, str], ...]
    head: bytes  # the status line and headers as stored
    body: bytes

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` (lower case), if any."""
        found = None
        for key, value in self.headers:
            if key == name:
                found = value
        return found


def split_response(data: bytes) -> HttpMessage | str:
    """``data`` (an HTTP response as a WARC stores it) split at its empty line; the
    reason when it has no head within ``HEAD_BYTES``."""
    end = data.find(b"\r\n\r\n", 0, HEAD_BYTES)
    cut = 4
    if end < 0:
        end, cut = data.find(b"\n\n", 0, HEAD_BYTES), 2
    if end < 0:
        return f"no HTTP header block within {HEAD_BYTES} bytes"
    head = bytes(data[:end])
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    status = None
    first = lines[0].split(" ", 2)
    if len(first) >= 2 and first[0].startswith("HTTP/") and first[1].isdigit():
        status = int(first[1])
    headers = tuple(
        (key.strip().lower(), value.strip())
        for key, sep, value in (line.partition(":") for line in lines[1:])
        if sep
    )
    return HttpMessage(status, headers, head, bytes(data[end + cut :]))


def dechunk(body: bytes, cap: int) -> bytes | str:
    """A ``Transfer-Encoding: chunked`` body joined (at most ``cap`` bytes); a body
    cut short keeps what its whole chunks held."""
    out = bytearray()
    pos = 0
    while pos < len(body):
        eol = body.find(b"\n", pos, pos + 1024)
        if eol < 0:
            break
        size_text = body[pos:eol].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return "chunked body with a malformed chunk size"
        if size == 0:
            break
        start = eol + 1
        if len(out) + size > cap:
            return f"chunked body of more than {cap} bytes"
        out += body[start : start + size]
        pos = start + size
        pos += 2 if body[pos : pos + 2] == b"\r\n" else 1 if body[pos : pos + 1] == b"\n" else 0
    return bytes(out)


def decode(body: bytes, encodings: str | None, cap: int) -> bytes | str:
    """``body`` with its ``Content-Encoding`` (``gzip``, ``deflate``, ``br``, ``zstd``,
    several in the order applied) undone, to at most ``cap`` bytes; the reason when
    it cannot be (unknown coding, damaged, or more than ``cap``)."""
    codings = [c.strip().lower() for c in (encodings or "").split(",") if c.strip()]
    for coding in reversed(codings):
        if coding in ("identity", ""):
            continue
        decoded = _decode_one(body, coding, cap)
        if isinstance(decoded, str):
            return decoded
        body = decoded
    return body


def _decode_one(body: bytes, coding: str, cap: int) -> bytes | str:
    try:
        if coding in ("gzip", "x-gzip"):
            out = _inflate(body, 16 + zlib.MAX_WBITS, cap)
        elif coding == "deflate":  # zlib-wrapped, as the RFC says, or raw, as servers send
            wrapped = body[:1] and (body[0] & 0x0F) == 8 and int.from_bytes(body[:2]) % 31 == 0
            out = _inflate(body, zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS, cap)
        elif coding == "br":
            out = _brotli(body, cap)
        elif coding == "zstd":
            out = _zstd(body, cap)
        else:
            return f"content encoding {coding!r} is not one keyscope decodes"
    except (zlib.error, EOFError, ValueError, OSError) as exc:
        return f"{coding} body does not decode ({type(exc).__name__})"
    except Exception as exc:  # brotli.error, ZstdError: not importable here to name
        return f"{coding} body does not decode ({type(exc).__name__})"
    if out is None:
        return f"{coding} body decodes to more than {cap} bytes: not scanned"
    return out


def _inflate(body: bytes, wbits: int, cap: int) -> bytes | None:
    """Every gzip member (or the one zlib/raw stream) of ``body``, None past ``cap``."""
    out = bytearray()
    data = body
    while data:
        d = zlib.decompressobj(wbits)
        out += d.decompress(data, cap + 1 - len(out))
        while d.unconsumed_tail and len(out) <= cap:
            out += d.decompress(d.unconsumed_tail, cap + 1 - len(out))
        if len(out) > cap:
            return None
        if not d.eof:
            break  # cut short: keep what decoded
        data = d.unused_data if wbits > 16 else b""
        if data.strip(b"\0") == b"":
            break
    return bytes(out)


def _brotli(body: bytes, cap: int) -> bytes | None:
    try:
        import brotli  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise ValueError("no brotli module: install brotli") from None
    d: Any = brotli.Decompressor()
    out = bytearray(d.process(body, output_buffer_limit=CHUNK))
    while not d.is_finished() and len(out) <= cap:
        more = d.process(b"", output_buffer_limit=CHUNK)
        if not more:
            break
        out += more
    return None if len(out) > cap else bytes(out)


def _zstd(body: bytes, cap: int) -> bytes | None:
    from keyscope.unpack.archives import _zstd as zstd_module

    zstd = zstd_module()
    if zstd is None:
        raise ValueError("no zstd module: install backports.zstd")
    d = zstd.ZstdDecompressor()
    out = d.decompress(body, max_length=cap + 1)
    return None if len(out) > cap else bytes(out)
