"""Web archives (WARC 1.0/1.1, as ``wget --warc-file``, warcio and Common Crawl write
them), plain or gzip-compressed record by record, recognised by content.

Records are read as a stream, one at a time (never the whole archive in memory):
each ``response`` record is two members, its headers (the WARC header block, which
names the target URI, and the HTTP status line and headers) and its body, with the
transfer and content encodings undone (chunked, gzip, deflate, br, zstd); members are
named by the target URI and the capture date (``https://x/app.js @ 2024-05-01T…Z``).
Every other record (request, resource, metadata, warcinfo, revisit) is one member
with its block and headers. Each record is a document of its own: the worker unpacks
it with a budget of its own (``independent``); the archive's decompressed stream may
grow to at most ``ratio`` times its size past the unpack budget's bytes (1 GiB).
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import replace
from typing import IO, Any

from keyscope.model import Skipped
from keyscope.modelfiles.containers import view_reader
from keyscope.sources.interface import Blob
from keyscope.unpack.archives import (
    DAMAGED,
    GZIP,
    MEMBER_BYTES,
    RATIO_FLOOR,
    OutOfTime,
    member,
    too_big,
)
from keyscope.unpack.httpbody import HEAD_BYTES, dechunk, decode, split_response
from keyscope.unpack.interface import Budget, Expander, member_path

MAGIC = b"WARC/1."
HEADER_LINES = 512  # lines in one record's WARC header block
SKIP_CHUNK = 1024 * 1024
# compressed bytes read at once: each gzip member's leftover is copied to start the
# next one, so it stays small
INPUT_CHUNK = 64 * 1024


def is_warc(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts a WARC file, plain or with its
    first record gzip-compressed."""
    if head.startswith(MAGIC):
        return True
    if not head.startswith(GZIP):
        return False
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head[:4096], 16).startswith(
            MAGIC
        )
    except zlib.error:
        return False


class WarcExpander(Expander):
    """A WARC file: each record's headers and (decoded) body as members."""

    name = "warc"
    first = b"W\x1f"
    independent = True

    def claims(self, blob: Blob) -> bool:
        return is_warc(bytes(blob.data[:4096]))

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        compressed = bytes(blob.data[:2]) == GZIP[:2]
        # a stream is linear work: a whole unpack budget's bytes, or the ratio past it
        floor = max(RATIO_FLOOR, budget.limits.total_bytes)
        limit = max(floor, budget.limits.ratio * len(blob.data)) if compressed else None
        try:
            with view_reader(blob.data) as raw:
                inner: Any = _Inflated(raw) if compressed else raw
                stream = io.BufferedReader(inner, SKIP_CHUNK)
                yield from _records(blob, _Counted(stream, limit))
        except _TooLarge:
            yield Skipped(
                member_path(blob),
                f"web archive decompresses to more than {limit} bytes "
                f"({budget.limits.ratio}x its size): the rest is not scanned",
            )
        except OutOfTime as exc:
            yield Skipped(member_path(blob), str(exc))
        except DAMAGED as exc:
            reason = f"web archive cannot be read any further ({type(exc).__name__}: {exc})"
            yield Skipped(member_path(blob), reason)


class _TooLarge(Exception):
    pass


class _Inflated(io.RawIOBase):
    """gzip members one after the other (a WARC compresses each record alone), inflated
    from 64 KiB reads of ``raw``; bytes after the last member that are no gzip member
    raise ``zlib.error``, a member cut short ``EOFError``."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._fresh = True  # the current member has not started
        self._input = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        if not len(out):  # max_length 0 would mean no limit
            return 0
        while True:
            if self._inflate.eof:  # the next member starts in what this one left over
                # (zlib repeats it in unconsumed_tail: unused_data alone holds it once)
                self._input = self._inflate.unused_data
                self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._fresh = True
            if not self._input:
                self._input = self._raw.read(INPUT_CHUNK)
                if not self._input:
                    if not self._fresh:
                        raise EOFError("the last gzip member is cut short")
                    return 0
            if self._fresh and self._input[:1] == b"\0" and not self._input.strip(b"\0"):
                self._input = b""  # zero padding after the last member
                continue
            data = self._inflate.decompress(self._input, len(out))
            self._input = self._inflate.unconsumed_tail
            self._fresh = False
            if data:
                out[: len(data)] = data
                return len(data)


class _Counted:
    """The decompressed stream, counting what it gives against ``limit``."""

    def __init__(self, stream: IO[bytes], limit: int | None) -> None:
        self.stream = stream
        self.limit = limit
        self.read_bytes = 0

    def _count(self, data: bytes) -> bytes:
        self.read_bytes += len(data)
        if self.limit is not None and self.read_bytes > self.limit:
            raise _TooLarge
        return data

    def readline(self, size: int) -> bytes:
        return self._count(self.stream.readline(size))

    def read(self, size: int) -> bytes:
        return self._count(self.stream.read(size))

    def skip(self, size: int) -> int:
        """Read and drop ``size`` bytes; how many there were."""
        left = size
        while left > 0:
            chunk = self.read(min(SKIP_CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
        return size - left


# a WARC-Date (W3C-ISO8601 in UTC, seconds and fractions optional)
_ISO_DATE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?Z"
)


def _records(blob: Blob, stream: _Counted) -> Iterator[Blob | Skipped]:
    number = 0
    while True:
        line = stream.readline(HEAD_BYTES)
        while line in (b"\r\n", b"\n"):  # the two line breaks after each block
            line = stream.readline(HEAD_BYTES)
        if not line:
            return
        number += 1
        if not line.startswith(b"WARC/"):
            reason = "not a WARC record header: the rest of the archive is not scanned"
            yield Skipped(member_path(blob, f"record {number}"), reason)
            return
        head = _header_block(stream, line)
        if isinstance(head, str):
            yield Skipped(member_path(blob, f"record {number}"), head)
            return
        fields, raw_head = head
        kind = fields.get("warc-type", "").lower() or "record"
        uri = fields.get("warc-target-uri", "").strip("<>")
        date = fields.get("warc-date", "")
        name = f"{uri} @ {date}" if uri else f"record {number} ({kind})"
        try:
            length = int(fields.get("content-length", ""))
        except ValueError:
            reason = "WARC record without a Content-Length: the rest is not scanned"
            yield Skipped(member_path(blob, name), reason)
            return
        if (refusal := too_big(length)) is not None:
            stream.skip(length)
            yield Skipped(member_path(blob, name), f"WARC record: {refusal}")
            continue
        block = stream.read(length)
        if len(block) < length:
            reason = f"WARC record cut short ({len(block)} of {length} bytes): scanned as read"
            yield Skipped(member_path(blob, name), reason)
        # the record's WARC-Date, the page's capture time (kept only when it is one)
        dated = replace(blob, captured=date) if _ISO_DATE.fullmatch(date) else blob
        yield from _members(dated, kind, name, raw_head, block)
        if len(block) < length:
            return


def _header_block(stream: _Counted, first: bytes) -> tuple[dict[str, str], bytes] | str:
    """The record's named fields (lower-case names) and its header block as read."""
    lines = [first]
    size = len(first)
    while True:
        line = stream.readline(HEAD_BYTES)
        if not line:
            return "WARC header block cut short: the rest is not scanned"
        lines.append(line)
        size += len(line)
        if line in (b"\r\n", b"\n"):
            break
        if len(lines) > HEADER_LINES or size > HEAD_BYTES:
            return f"WARC header block of more than {HEADER_LINES} lines or {HEAD_BYTES} bytes"
    fields: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.decode("utf-8", "replace").partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields, b"".join(lines)


def _members(
    blob: Blob, kind: str, name: str, raw_head: bytes, block: bytes
) -> Iterator[Blob | Skipped]:
    """A response's headers and decoded body; any other record whole."""
    # the block first (its lines are the record's), the WARC header block after it
    # (it names the target URI): a member never starts as a WARC file itself
    message = split_response(block) if kind == "response" else None
    if message is None or isinstance(message, str) or message.status is None:
        label = name if kind == "response" else f"{name} ({kind})"
        yield member(blob, label, block + b"\r\n\r\n" + raw_head)
        return
    yield member(blob, f"{name} (headers)", message.head + b"\r\n\r\n" + raw_head)
    body: bytes | str = message.body
    if "chunked" in (message.header("transfer-encoding") or "").lower():
        body = dechunk(message.body, MEMBER_BYTES)
    if isinstance(body, bytes):
        body = decode(body, message.header("content-encoding"), MEMBER_BYTES)
    if isinstance(body, str):
        yield Skipped(member_path(blob, name), f"{body}: the stored bytes are scanned")
        body = message.body
    if body:
        yield member(blob, name, body)
