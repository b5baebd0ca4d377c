"""Archives and arrays that hold pickles: zip (PyTorch checkpoints, ``.npz``, Keras
v3), 7z, tar (PyTorch's legacy checkpoint) and NumPy ``.npy``. The container walk
(``containers.pickles_in``) reads their members; a zip is also checked as a Keras
archive."""

from __future__ import annotations

from keyscope.modelfiles.formats.keras import keras_zip_issues
from keyscope.modelfiles.formats.spec import ModelFormat

SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"


def _zip(data: bytes, head: bytes, partial: bool) -> bool:
    return head.startswith((b"PK\x03\x04", b"PK\x05\x06"))  # a member, or an empty archive


def _seven_zip(data: bytes, head: bytes, partial: bool) -> bool:
    return head.startswith(SEVEN_ZIP_MAGIC)


def _npy(data: bytes, head: bytes, partial: bool) -> bool:
    return head.startswith(b"\x93NUMPY")


def _tar(data: bytes, head: bytes, partial: bool) -> bool:
    return len(data) > 262 and data[257:262] == b"ustar"


ZIP = ModelFormat("zip", _zip, holds_pickles=True, check=keras_zip_issues, first=b"P")
SEVEN_ZIP = ModelFormat("7z", _seven_zip, holds_pickles=True, first=SEVEN_ZIP_MAGIC[:1])
NPY = ModelFormat("npy", _npy, holds_pickles=True, first=b"\x93")
TAR = ModelFormat("tar", _tar, holds_pickles=True)
