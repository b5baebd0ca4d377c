"""ONNX: a ``ModelProto`` (protobuf); external data paths and custom operator
domains are checked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyscope.modelfiles.formats.spec import ModelFormat

if TYPE_CHECKING:
    from keyscope.modelfiles.structured import StructuredIssue

# The graph reader is loaded when a file starts like ONNX, not at import time.


def _onnx(data: bytes, head: bytes, partial: bool) -> bool:
    if head[:1] != b"\x08":  # field 1 as a varint first
        return False
    from keyscope.modelfiles.onnx_graphs import is_onnx

    return is_onnx(data, partial)


def _check(data: bytes) -> list[StructuredIssue]:
    from keyscope.modelfiles.onnx_graphs import onnx_issues

    return onnx_issues(data)


ONNX = ModelFormat("onnx", _onnx, holds_pickles=False, check=_check, first=b"\x08")
