"""TFLite (a FlatBuffer, identifier ``TFL3``): Flex and custom operators."""

from __future__ import annotations

from keyscope.modelfiles.formats.spec import ModelFormat
from keyscope.modelfiles.tflite_graphs import is_tflite, tflite_issues


def _tflite(data: bytes, head: bytes, partial: bool) -> bool:
    return head[4:8] == b"TFL3" and is_tflite(data, partial)


TFLITE = ModelFormat("tflite", _tflite, holds_pickles=False, check=tflite_issues)
