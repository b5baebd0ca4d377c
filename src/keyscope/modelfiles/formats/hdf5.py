"""HDF5 (Keras ``.h5``): the model config is a JSON attribute, read in place."""

from __future__ import annotations

from keyscope.modelfiles.formats.spec import ModelFormat
from keyscope.modelfiles.structured import h5_keras_issues


def _hdf5(data: bytes, head: bytes, partial: bool) -> bool:
    return head.startswith(b"\x89HDF\r\n\x1a\n")


HDF5 = ModelFormat("hdf5", _hdf5, holds_pickles=False, check=h5_keras_issues, first=b"\x89")
