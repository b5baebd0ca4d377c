"""GGUF (llama.cpp): its chat template is Jinja that inference servers render."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyscope.modelfiles.formats.spec import ModelFormat

if TYPE_CHECKING:
    from keyscope.modelfiles.structured import StructuredIssue


def _gguf(data: bytes, head: bytes, partial: bool) -> bool:
    return head.startswith(b"GGUF")


def _check(data: bytes) -> list[StructuredIssue]:
    from keyscope.modelfiles.structured import gguf_issues  # loaded for a GGUF file only

    return gguf_issues(data)


GGUF = ModelFormat("gguf", _gguf, holds_pickles=False, check=_check, first=b"G")
