"""TensorFlow SavedModel, binary (``saved_model.pb``) and text (``.pbtxt``): ops
that touch files, run Python or reach the network."""

from __future__ import annotations

from keyscope.modelfiles.formats.spec import ModelFormat
from keyscope.modelfiles.tf_graphs import (
    is_saved_model,
    is_saved_model_text,
    saved_model_issues,
    saved_model_text_issues,
)


def _saved_model(data: bytes, head: bytes, partial: bool) -> bool:
    return head[:1] == b"\x08" and is_saved_model(data, partial)


def _saved_model_text(data: bytes, head: bytes, partial: bool) -> bool:
    return head[:1] in (b"s", b"m", b"#", b"\n", b" ") and is_saved_model_text(data)


SAVED_MODEL = ModelFormat(
    "savedmodel", _saved_model, holds_pickles=False, check=saved_model_issues, first=b"\x08"
)
SAVED_MODEL_TEXT = ModelFormat(
    "savedmodel-text",
    _saved_model_text,
    holds_pickles=False,
    check=saved_model_text_issues,
    first=b"sm#\n ",
)
