"""ONNX: a ``ModelProto`` (protobuf); external data paths and custom operator
domains are checked."""

from __future__ import annotations

from keyscope.modelfiles.formats.spec import ModelFormat
from keyscope.modelfiles.onnx_graphs import is_onnx, onnx_issues


def _onnx(data: bytes, head: bytes, partial: bool) -> bool:
    return head[:1] == b"\x08" and is_onnx(data, partial)  # field 1 as a varint first


ONNX = ModelFormat("onnx", _onnx, holds_pickles=False, check=onnx_issues, first=b"\x08")
