"""GGUF (llama.cpp): its chat template is Jinja that inference servers render."""

from __future__ import annotations

from keyscope.modelfiles.formats.spec import ModelFormat
from keyscope.modelfiles.structured import gguf_issues


def _gguf(data: bytes, head: bytes, partial: bool) -> bool:
    return head.startswith(b"GGUF")


GGUF = ModelFormat("gguf", _gguf, holds_pickles=False, check=gguf_issues, first=b"G")
