"""TFLite (a FlatBuffer, identifier ``TFL3``): Flex and custom operators."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyscope.modelfiles.formats.spec import ModelFormat

if TYPE_CHECKING:
    from keyscope.modelfiles.structured import StructuredIssue

# The FlatBuffers reader is loaded when a file says TFL3, not at import time.


def _tflite(data: bytes, head: bytes, partial: bool) -> bool:
    if head[4:8] != b"TFL3":
        return False
    from keyscope.modelfiles.tflite_graphs import is_tflite

    return is_tflite(data, partial)


def _check(data: bytes) -> list[StructuredIssue]:
    from keyscope.modelfiles.tflite_graphs import tflite_issues

    return tflite_issues(data)


TFLITE = ModelFormat("tflite", _tflite, holds_pickles=False, check=_check)
