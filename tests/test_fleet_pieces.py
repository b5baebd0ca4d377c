"""Large web archives cut into byte ranges at record boundaries (``fleet/pieces.py``):
each piece is a web archive of its own, the pieces cover the file exactly, and a
plain (uncompressed) archive or a small one stays whole. Archives written by warcio."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

from keyscope.fleet.pieces import Piece, PieceUnit, warc_pieces
from keyscope.model import Skipped
from keyscope.sources.interface import Blob, WorkerContext
from keyscope.unpack.warc import is_warc


def _archive(path: Path, records: int, gzip: bool = True) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=gzip)
    for k in range(records):
        body = (f"page {k} " * 2000).encode() + bytes(range(256)) * 8
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        uri = f"https://example.com/{k}"
        writer.write_record(writer.create_warc_record(
            uri, "response", payload=io.BytesIO(body), http_headers=http))  # fmt: skip
    path.write_bytes(buf.getvalue())


def test_pieces_start_at_records_and_cover_the_file(tmp_path: Path) -> None:
    path = tmp_path / "crawl.warc.gz"
    _archive(path, 40)
    data = path.read_bytes()
    pieces = warc_pieces(str(path), 4096)
    assert pieces is not None and len(pieces) >= 3
    assert pieces[0].start == 0 and pieces[-1].end == len(data)
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))
    assert all(is_warc(data[p.start : p.start + 4096]) for p in pieces)
    assert [p.index for p in pieces] == list(range(len(pieces)))
    assert {p.count for p in pieces} == {len(pieces)}


def test_small_plain_and_other_files_stay_whole(tmp_path: Path) -> None:
    gz, plain, other = tmp_path / "a.warc.gz", tmp_path / "b.warc", tmp_path / "c.bin"
    _archive(gz, 40)
    _archive(plain, 40, gzip=False)
    other.write_bytes(b"\x1f\x8b\x08" + bytes(100_000))
    assert warc_pieces(str(gz), gz.stat().st_size) is None  # not larger than a piece
    assert warc_pieces(str(gz), 0) is None
    assert warc_pieces(str(plain), 4096) is None
    assert warc_pieces(str(other), 4096) is None
    assert warc_pieces(str(tmp_path / "missing.warc.gz"), 4096) is None


def test_a_piece_of_a_file_that_shrank_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "crawl.warc.gz"
    _archive(path, 40)
    pieces = warc_pieces(str(path), 4096)
    assert pieces is not None
    [blob] = PieceUnit(pieces[1]).read(WorkerContext(1 << 20))
    assert isinstance(blob, Blob) and blob.path == str(path)
    assert bytes(blob.data) == path.read_bytes()[pieces[1].start : pieces[1].end]
    path.write_bytes(path.read_bytes()[: pieces[1].start + 10])
    [skip] = PieceUnit(pieces[-1]).read(WorkerContext(1 << 20))
    assert isinstance(skip, Skipped) and "shorter" in skip.reason
    gone = Piece(str(tmp_path / "gone.warc.gz"), 0, 10, 0, 2)
    [skip] = PieceUnit(gone).read(WorkerContext(1 << 20))
    assert isinstance(skip, Skipped) and "could not be read" in skip.reason
