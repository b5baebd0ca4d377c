"""Bare pickles: with a PROTO opcode (protocol 2-5), or a protocol 0/1 candidate,
which has no magic number and is proven only by parsing."""

from __future__ import annotations

from keyscope.modelfiles.formats.spec import ModelFormat


def _pickle(data: bytes, head: bytes, partial: bool) -> bool:
    return head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")


def _pickle0(data: bytes, head: bytes, partial: bool) -> bool:
    # opens a tuple, global, dict or list and ends with STOP (a line break after it)
    return head[:1] in (b"(", b"c", b"}", b"]") and bytes(data[-4:]).rstrip(b"\r\n")[-1:] == b"."


# A raw pickle, or PyTorch's legacy format (pickles back to back).
PICKLE = ModelFormat("pickle", _pickle, holds_pickles=True, first=b"\x80")
# A candidate only: analyze_model reads it as a header-less pickle.
PICKLE0 = ModelFormat("pickle0", _pickle0, holds_pickles=True, first=b"(c}]")
