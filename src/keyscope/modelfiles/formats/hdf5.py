"""HDF5 (Keras ``.h5``): the model config is a JSON attribute, read in place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyscope.modelfiles.formats.spec import ModelFormat

if TYPE_CHECKING:
    from keyscope.modelfiles.structured import StructuredIssue


def _hdf5(data: bytes, head: bytes, partial: bool) -> bool:
    return head.startswith(b"\x89HDF\r\n\x1a\n")


def _check(data: bytes) -> list[StructuredIssue]:
    from keyscope.modelfiles.structured import h5_keras_issues  # for an HDF5 file only

    return h5_keras_issues(data)


HDF5 = ModelFormat("hdf5", _hdf5, holds_pickles=False, check=_check, first=b"\x89")
