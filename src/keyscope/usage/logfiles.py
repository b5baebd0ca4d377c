"""Storage log files: which files, which format, read as a stream of blocks of whole
lines (gzip decompressed on the way), large plain files cut into byte ranges so that
several processes share them. Only lines holding a needle are parsed."""

from __future__ import annotations

import csv
import gzip
import json
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from keyscope.usage.records import Malformed, analytics_column

_np: Any = None
try:
    import numpy

    _np = numpy
except ImportError:  # an optional extra: bytes.count does the same, slower
    pass

CHUNK = 4 << 20  # bytes read at a time
MAX_LINE = 1 << 20  # a longer line is counted and skipped
RANGE = 64 << 20  # plain files are cut into ranges of about this size
SNIFF = 64 << 10
FORMS = ("jsonl", "json", "classic", "csv")


@dataclass(frozen=True)
class LogFile:
    """One file (or byte range of a plain file) to read, and its format."""

    path: str
    form: str  # jsonl | json | classic | csv
    gzip: bool = False
    columns: tuple[str, ...] = ()  # csv: the header's column names
    start: int = 0
    end: int | None = None  # None: to the end of the file


@dataclass
class Counts:
    """What was read: lines and bytes, lines parsed, and what could not be."""

    lines: int = 0
    bytes: int = 0
    candidates: int = 0  # lines that held a needle and were parsed
    malformed: int = 0  # of those, not a request in the file's format
    oversize: int = 0  # lines over MAX_LINE, skipped
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def merge(self, other: Counts) -> None:
        self.lines += other.lines
        self.bytes += other.bytes
        self.candidates += other.candidates
        self.malformed += other.malformed
        self.oversize += other.oversize
        self.skipped += other.skipped


def expand(paths: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files under ``paths`` (directories walked, sorted; symlinks not followed)."""
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_symlink():
            skipped.append((str(p), "a symbolic link: not followed"))
        elif p.is_dir():
            for root, dirs, names in os.walk(p):
                dirs.sort()
                for name in sorted(names):
                    full = Path(root, name)
                    if full.is_symlink() or not full.is_file():
                        continue
                    files.append(full)
        elif p.is_file():
            files.append(p)
        else:
            skipped.append((str(p), "no such file or directory"))
    return files, skipped


def _open(path: str, is_gzip: bool) -> IO[bytes]:
    raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by the caller
    if is_gzip:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def sniff(path: Path) -> LogFile | str:
    """The file's format from its first bytes, or why it is not a storage log."""
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF)
            is_gzip = head[:2] == b"\x1f\x8b"
            if is_gzip:  # the first bytes, even of a truncated stream
                head = head + f.read(SNIFF * 4)
                head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, SNIFF)
    except (OSError, zlib.error) as exc:
        return f"unreadable: {exc}"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    name = str(path)
    if text.startswith(b"{"):
        return LogFile(name, "jsonl", is_gzip)
    if text.startswith(b"["):
        return LogFile(name, "json", is_gzip)
    if text[:4] in (b"1.0;", b"2.0;"):
        return LogFile(name, "classic", is_gzip)
    first = text.split(b"\n", 1)[0].decode("utf-8", "replace")
    if "OperationName" in first and "TimeGenerated" in first and "," in first:
        columns = tuple(analytics_column(c) for c in _csv_header(first))
        return LogFile(name, "csv", is_gzip, columns)
    if not text:
        return "empty"
    return "not a storage log (resource-log JSON, Log Analytics CSV/JSON or $logs lines)"


def _csv_header(line: str) -> list[str]:
    return next(csv.reader([line.rstrip("\r")]))


def plan(paths: Iterable[str | Path], parts: int) -> tuple[list[LogFile], list[tuple[str, str]]]:
    """The files to read, large plain ones cut into ranges (when ``parts`` > 1)."""
    files, skipped = expand(paths)
    out: list[LogFile] = []
    for path in files:
        found = sniff(path)
        if isinstance(found, str):
            skipped.append((str(path), found))
            continue
        size = path.stat().st_size
        if parts > 1 and not found.gzip and found.form != "json" and size > RANGE:
            pieces = max(parts, -(-size // RANGE))
            step = -(-size // pieces)
            for start in range(0, size, step):
                out.append(LogFile(found.path, found.form, False, found.columns, start,
                                   min(start + step, size)))
        else:
            out.append(found)
    return out, skipped


def blocks(log: LogFile, counts: Counts) -> Iterator[tuple[bytes, int, int]]:
    """``(buffer, lo, hi)``: ``buffer[lo:hi]`` holds whole lines of ``log`` (of its range:
    the lines that start in it), read without copying the buffer; lines and bytes are
    counted here. A line over :data:`MAX_LINE` that has no end within a read is
    counted in ``counts.oversize`` and left out."""
    end = log.end
    with _open(log.path, log.gzip) as f:
        pos = log.start  # the file offset of the first byte not yet handed out
        if pos > 0:
            f.seek(pos - 1)
            if f.read(1) != b"\n":  # the line under way belongs to the range before
                pos = _skip_line(f, pos)
                if pos < 0:
                    return
        carry = b""  # the start of a line cut by the last read
        dropping = False  # inside an oversize line
        while end is None or pos < end:
            data = f.read(CHUNK)
            if not data:
                if carry and not dropping:
                    counts.lines += 1
                    counts.bytes += len(carry)
                    yield carry, 0, len(carry)
                return
            lo = 0
            if dropping or carry:
                nl = data.find(b"\n")
                if nl < 0:
                    if dropping:
                        counts.bytes += len(data)
                        pos += len(data)
                    else:
                        carry += data
                        if len(carry) > MAX_LINE:
                            dropping = _oversize(counts, len(carry))
                            pos, carry = pos + len(carry), b""
                    continue
                lo = nl + 1
                if dropping:
                    dropping = False
                    counts.bytes += lo
                    pos += lo
                else:
                    head = carry + data[:lo]
                    carry = b""
                    counts.lines += 1
                    counts.bytes += len(head)
                    yield head, 0, len(head)
                    pos += len(head)
                if end is not None and pos >= end:
                    return
            hi = data.rfind(b"\n") + 1
            if hi <= lo:
                carry = data[lo:]
                if len(carry) > MAX_LINE:
                    dropping = _oversize(counts, len(carry))
                    pos, carry = pos + len(carry), b""
                continue
            if end is not None and pos + (hi - lo) > end:
                # keep the lines that start before the range's end
                hi = data.find(b"\n", lo + max(end - pos - 1, 0)) + 1
                counts.lines += count_lines(data, lo, hi)
                counts.bytes += hi - lo
                yield data, lo, hi
                return
            counts.lines += count_lines(data, lo, hi)
            counts.bytes += hi - lo
            yield data, lo, hi
            pos += hi - lo
            carry = data[hi:]
            if len(carry) > MAX_LINE:
                dropping = _oversize(counts, len(carry))
                pos, carry = pos + len(carry), b""


def _oversize(counts: Counts, size: int) -> bool:
    counts.oversize += 1
    counts.lines += 1
    counts.bytes += size
    return True


def count_lines(data: bytes, lo: int, hi: int) -> int:
    """Newlines in ``data[lo:hi]``: NumPy when it is installed (several times faster),
    else ``bytes.count``."""
    if _np is None:
        return data.count(b"\n", lo, hi)
    return int(_np.count_nonzero(_np.frombuffer(data, _np.uint8, hi - lo, lo) == 10))


def _skip_line(f: IO[bytes], pos: int) -> int:
    """Read past the next newline; the offset after it, or -1 at the end."""
    while True:
        data = f.read(CHUNK)
        if not data:
            return -1
        nl = data.find(b"\n")
        if nl >= 0:
            f.seek(pos + nl + 1)
            return pos + nl + 1
        pos += len(data)


def json_records(log: LogFile, counts: Counts, on_record: Callable[[Any], None]) -> None:
    """Every element of a JSON array file (a Log Analytics JSON export), parsed as it
    streams. Invalid or truncated JSON ends the file, counted as malformed; so does an
    element over :data:`MAX_LINE`."""
    decoder = json.JSONDecoder()
    with _open(log.path, log.gzip) as f:
        chunks = _texts(f, counts)
        buf, i, eof, started = "", 0, False, False

        def more() -> bool:
            nonlocal buf, i, eof
            text = None if eof else next(chunks, None)
            if text is None:
                eof = True
                return False
            buf, i = buf[i:] + text, 0
            return True

        while True:
            n = len(buf)
            while i < n and buf[i] in " \t\r\n,":
                i += 1
            if i >= n:
                if more():
                    continue
                counts.malformed += 1  # no closing bracket
                return
            if not started:
                if buf[i] != "[":
                    counts.malformed += 1
                    return
                started, i = True, i + 1
                continue
            if buf[i] == "]":
                return
            try:
                obj, end = decoder.raw_decode(buf, i)
            except json.JSONDecodeError:
                if len(buf) - i < MAX_LINE and more():
                    continue
                counts.malformed += 1
                return
            i = end
            counts.candidates += 1
            try:
                on_record(obj)
            except Malformed:
                counts.malformed += 1


def _texts(f: IO[bytes], counts: Counts) -> Iterator[str]:
    """The file as UTF-8 text chunks (a character cut by a chunk is carried over)."""
    pending = b""
    while True:
        data = f.read(CHUNK)
        counts.bytes += len(data)
        if not data:
            if pending:
                yield pending.decode("utf-8", "replace")
            return
        raw = pending + data
        cut = len(raw)
        while cut > 0 and cut > len(raw) - 4 and (raw[cut - 1] & 0xC0) == 0x80:
            cut -= 1
        if cut > 0 and raw[cut - 1] >= 0xC0:
            cut -= 1
        text, pending = raw[:cut].decode("utf-8", "replace"), raw[cut:]
        counts.lines += text.count("\n")
        yield text
