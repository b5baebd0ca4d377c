"""Which blobs are model files, from one sniff: light enough to run on every blob
without loading the readers (``analyzer`` and what it imports are loaded for a model
file only)."""

from __future__ import annotations

from keyscope.modelfiles.formats.pickles import OPCODES as OPCODES  # re-exported
from keyscope.modelfiles.formats.pickles import may_start_pickle
from keyscope.modelfiles.formats.registry import sniff

# What model_kind calls a file that is no known format but may be a pickle without a
# magic number (pickle.load can read past its first opcode, or it is named like a
# checkpoint): the same header-less reading as a protocol 0/1 candidate.
HEADERLESS = "pickle0"
# Names a pickle checkpoint goes by: such a file that is no pickle is said so (info).
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib", ".dill")


def model_kind(data: bytes, path: str = "", partial: bool = False) -> str | None:
    """The kind to judge ``data`` as, from one sniff: its format, ``HEADERLESS`` for
    anything pickle.load can read past the first opcode of (it needs no magic number:
    only parsing tells; ``may_start_pickle``) or named like a pickle checkpoint, None
    when it is no model file. Hand the kind to ``analyze_model`` so it does not sniff
    again. ``partial``: ``data`` is only the head of a larger file."""
    kind = sniff(data, partial)
    if kind is not None:
        return kind
    if may_start_pickle(data, partial) or path.lower().endswith(PICKLE_SUFFIXES):
        return HEADERLESS
    return None


def is_model_candidate(data: bytes, path: str = "") -> bool:
    """Worth handing to analyze_model (``model_kind`` says what as)."""
    return model_kind(data, path) is not None
