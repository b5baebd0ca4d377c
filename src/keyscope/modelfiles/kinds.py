"""Which blobs are model files, from one sniff: light enough to run on every blob
without loading the readers (``analyzer`` and what it imports are loaded for a model
file only)."""

from __future__ import annotations

from keyscope.modelfiles.formats.registry import sniff

# What model_kind calls a file that is no known format but may be a pickle without a
# magic number (it starts with an opcode, or is named like a checkpoint): the same
# header-less reading as a protocol 0/1 candidate.
HEADERLESS = "pickle0"
# Names a pickle checkpoint goes by: such a file that is no pickle is said so (info).
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib", ".dill")
# Every byte a pickle opcode can be: the emulator's dispatch table
# (``pickle_vm.OPCODES``, which a test holds equal to this).
OPCODES = frozenset(
    b"().012BCFGIJKLMNPQRSTUVX]abcdeghijlopqrstu}"
    b"\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f"
    b"\x90\x91\x92\x93\x94\x95\x96\x97\x98"
)


def model_kind(data: bytes, path: str = "", partial: bool = False) -> str | None:
    """The kind to judge ``data`` as, from one sniff: its format, ``HEADERLESS`` for
    anything that starts with a pickle opcode (pickle.load needs no magic number:
    only parsing tells) or is named like a pickle checkpoint, None when it is no
    model file. Hand the kind to ``analyze_model`` so it does not sniff again."""
    kind = sniff(data, partial)
    if kind is not None:
        return kind
    if (len(data) > 1 and data[0] in OPCODES) or path.lower().endswith(PICKLE_SUFFIXES):
        return HEADERLESS
    return None


def is_model_candidate(data: bytes, path: str = "") -> bool:
    """Worth handing to analyze_model (``model_kind`` says what as)."""
    return model_kind(data, path) is not None
