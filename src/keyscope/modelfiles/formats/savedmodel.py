"""TensorFlow SavedModel, binary (``saved_model.pb``) and text (``.pbtxt``): ops
that touch files, run Python or reach the network."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from keyscope.modelfiles.formats.spec import ModelFormat

if TYPE_CHECKING:
    from keyscope.modelfiles.structured import StructuredIssue

# The text format starts with the schema version or the first meta graph (after
# optional comments and blank lines). The graph reader (tf_graphs) is loaded only
# for a file that is one of the two formats.
_TEXT_START = re.compile(
    rb"(?:[ \t\r\n]*#[^\n]*\n)*[ \t\r\n]*(?:saved_model_schema_version|meta_graphs)\b"
)


def _saved_model(data: bytes, head: bytes, partial: bool) -> bool:
    if head[:1] != b"\x08":
        return False
    from keyscope.modelfiles.tf_graphs import is_saved_model

    return is_saved_model(data, partial)


def _saved_model_text(data: bytes, head: bytes, partial: bool) -> bool:
    if head[:1] not in (b"s", b"m", b"#", b"\n", b" "):
        return False
    return _TEXT_START.match(bytes(data[:4096])) is not None


def _check(data: bytes) -> list[StructuredIssue]:
    from keyscope.modelfiles.tf_graphs import saved_model_issues

    return saved_model_issues(data)


def _check_text(data: bytes) -> list[StructuredIssue]:
    from keyscope.modelfiles.tf_graphs import saved_model_text_issues

    return saved_model_text_issues(data)


SAVED_MODEL = ModelFormat(
    "savedmodel", _saved_model, holds_pickles=False, check=_check, first=b"\x08"
)
SAVED_MODEL_TEXT = ModelFormat(
    "savedmodel-text",
    _saved_model_text,
    holds_pickles=False,
    check=_check_text,
    first=b"sm#\n ",
)
