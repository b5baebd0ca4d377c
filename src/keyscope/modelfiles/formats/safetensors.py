"""safetensors: an 8-byte header length, then a JSON header that must describe only
tensors."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from keyscope.modelfiles.formats.spec import ModelFormat

if TYPE_CHECKING:
    from keyscope.modelfiles.structured import StructuredIssue


def _safetensors(data: bytes, head: bytes, partial: bool) -> bool:
    if len(data) >= 10 and data[8:9] == b"{":
        n: int = struct.unpack("<Q", data[:8])[0]
        # a head (``partial``) cannot hold the whole header of a larger file
        return n >= 2 and (partial or n <= len(data) - 8)
    return False


def _check(data: bytes) -> list[StructuredIssue]:
    from keyscope.modelfiles.structured import safetensors_issues  # for safetensors only

    return safetensors_issues(data)


SAFETENSORS = ModelFormat("safetensors", _safetensors, holds_pickles=False, check=_check)
