"""Compressed wrappers (joblib, ``.pkl.gz``, …): no structure of their own; the
container walk decompresses them, within budget, and sniffs what is inside."""

from __future__ import annotations

from keyscope.modelfiles.formats.spec import ModelFormat


def _gzip(data: bytes, head: bytes, partial: bool) -> bool:
    return head.startswith(b"\x1f\x8b")


def _bz2(data: bytes, head: bytes, partial: bool) -> bool:
    return head.startswith(b"BZh")


def _xz(data: bytes, head: bytes, partial: bool) -> bool:
    return head.startswith((b"\xfd7zXZ\x00", b"\x5d\x00\x00"))  # xz, or raw LZMA (alone)


def _zlib(data: bytes, head: bytes, partial: bool) -> bool:
    # "ZF": joblib's own zlib header; else a zlib stream header (CMF 0x78, FLG check)
    return head.startswith(b"ZF") or (
        len(head) > 1 and head[0] == 0x78 and head[1] in (1, 0x5E, 0x9C, 0xDA)
    )


GZIP = ModelFormat("gzip", _gzip, holds_pickles=True, first=b"\x1f")
BZ2 = ModelFormat("bz2", _bz2, holds_pickles=True, first=b"B")
XZ = ModelFormat("xz", _xz, holds_pickles=True, first=b"\xfd\x5d")
ZLIB = ModelFormat("zlib", _zlib, holds_pickles=True, first=b"Zx")
