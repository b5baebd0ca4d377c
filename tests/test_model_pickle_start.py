"""A blob without a magic number is read as a pickle only when ``pickle.load`` can
read past its first opcode (``formats/pickles.may_start_pickle``): text that merely
starts with an opcode letter is refused before the emulator, and nothing the real
unpickler would run is refused.

The real unpickler runs only on fixtures whose one global is a recorder module
(``keyscope_probe.run``) that this file puts in ``sys.modules``: nothing is imported
from disk and nothing runs but the recorder.
"""

from __future__ import annotations

import pickle
import sys
import types
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keyscope.modelfiles.analyzer import analyze_model
from keyscope.modelfiles.formats.pickles import OPCODES, STARTS, may_start_pickle
from keyscope.modelfiles.kinds import HEADERLESS, model_kind
from keyscope.modelfiles.pickle_vm import analyze_pickle

PROBE = "keyscope_probe"
CALL = f"c{PROBE}\nrun\n(S'x'\ntR".encode()  # protocol 0: keyscope_probe.run('x')
RUN = f"{PROBE}\nrun\n".encode()  # GLOBAL's argument
EVIL = b"cos\nsystem\n(S'echo x'\ntR."  # judged only, never loaded


class _Probe(types.ModuleType):
    def __init__(self) -> None:
        super().__init__(PROBE)
        self.calls = 0

    def run(self, *args: object) -> str:
        self.calls += 1
        return "ran"


@pytest.fixture(scope="module")
def probe() -> Iterator[_Probe]:
    module = _Probe()
    sys.modules[PROBE] = module
    try:
        yield module
    finally:
        del sys.modules[PROBE]


def _loader_runs(data: bytes, probe: _Probe) -> tuple[bool, int]:
    """(pickle.loads read to a STOP, how often it called the probe)."""
    before = probe.calls
    try:
        pickle.loads(data)
    except Exception:  # every refusal of the C unpickler counts as one
        return False, probe.calls - before
    return True, probe.calls - before


def _no_pickle(data: bytes) -> bool:
    """The emulator's verdict on a header-less stream: no STOP reached, nothing run."""
    report = analyze_pickle(data, headerless=True)
    return not report.parsed and not report.runs_code()


TEXT = [
    b"import os\nimport sys\n",
    b"def main():\n    pass\n",
    b"r'''Docstring.'''\n",
    b"class X(object):\n    pass\n",
    b"MIME-Version: 1.0\nContent-Type: text/plain\n",
    b"From: someone@example.org\n",
    b"Certificate:\n    Data:\n",
    b"The quick brown fox\n",
    b"INSTALL notes\n",
    b"Long text\n",
    b"Summary line\n",
    b"copyright.c\n",  # GLOBAL: a dotted name, but no second line
    b"copyright (c) 2026\nAll rights reserved.\n",  # GLOBAL: not a dotted name
    b"N/A\n",
]


@pytest.mark.parametrize("data", TEXT)
def test_text_that_starts_with_an_opcode_letter_is_no_candidate(
    data: bytes, probe: _Probe
) -> None:
    assert data[0] in OPCODES
    assert not may_start_pickle(data)
    assert model_kind(data, "notes.txt") is None
    assert _loader_runs(data, probe) == (False, 0)
    assert _no_pickle(data)
    assert analyze_model("notes.txt", data) == []


def test_a_checkpoint_name_is_still_a_candidate_and_told_it_is_no_pickle() -> None:
    assert model_kind(b"import os\n", "model.pkl") == HEADERLESS
    (f,) = analyze_model("model.pkl", b"import os\n")
    assert f.verdict == "not-a-pickle"


@pytest.mark.parametrize("op", sorted(OPCODES - STARTS))
def test_an_opcode_that_needs_the_stack_ends_the_load_at_its_first_byte(
    op: int, probe: _Probe
) -> None:
    """Whatever follows it, a stream that starts with one of these is refused by the
    real unpickler before it calls anything, and by the emulator."""
    for rest in (CALL + b".", b"N" + CALL + b".", b"(" + CALL + b".", b"1\n" + CALL + b"."):
        data = bytes([op]) + rest
        assert not may_start_pickle(data)
        assert _loader_runs(data, probe) == (False, 0), data
        assert _no_pickle(data), data


@pytest.mark.parametrize("op", sorted(STARTS))
def test_every_opcode_that_can_start_a_stream_is_a_candidate(op: int, probe: _Probe) -> None:
    """A stream that starts with it and then runs the probe: some of them the real
    unpickler reads to the call; each is handed to the emulator."""
    args = {
        b"I": b"1\n", b"L": b"1\n", b"F": b"1.5\n", b"S": b"'x'\n", b"V": b"x\n",
        b"P": b"x\n", b"c": b"builtins\nlen\n", b"K": b"\x01", b"M": b"\x01\x00",
        b"J": b"\x01\x00\x00\x00", b"G": b"\x3f\xf8" + bytes(6), b"U": b"\x01x",
        b"C": b"\x01x", b"\x8c": b"\x01x", b"\x8a": b"\x01\x01", b"T": b"\x01\x00\x00\x00x",
        b"X": b"\x01\x00\x00\x00x", b"B": b"\x01\x00\x00\x00x", b"\x8b": b"\x01\x00\x00\x00\x01",
        b"\x8d": b"\x01" + bytes(7) + b"x", b"\x8e": b"\x01" + bytes(7) + b"x",
        b"\x96": b"\x01" + bytes(7) + b"x", b"\x80": b"\x01", b"\x95": b"\x20" + bytes(7),
        b"\x82": b"\x01", b"\x83": b"\x01\x00", b"\x84": b"\x01\x00\x00\x00",
    }  # fmt: skip
    data = bytes([op]) + args.get(bytes([op]), b"") + b"0" + CALL + b"."
    assert may_start_pickle(data), data
    assert model_kind(data) is not None


# The first opcode's argument, well formed or not, and what may follow it.
ARGS = [
    b"", b"\x01", b"\x02\x00", b"\x05\x00\x00\x00", b"\xff\xff\xff\xff", b"1\n", b" 0x1f\n",
    b"\x00\n", b"inf\n", b"x\n", b"'x'\n", b'"x\'\n', b"builtins\nlen\n", RUN, b"a b\nc\n",
    b"\xff\n",
]  # fmt: skip
ATOMS = [
    b"(", b")", b"N", b"0", b"1", b"t", b"R", b".", b"S'x'\n", CALL, b"(S'x'\ntR", b"K\x01",
    b"text\n", b"\xff",
]  # fmt: skip


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(ord("c"), RUN, [b"(S'x'\ntR"], 64)
@given(
    st.sampled_from(sorted(STARTS | {ord("i"), ord("R"), ord(".")})),
    st.sampled_from(ARGS),
    st.lists(st.sampled_from(ATOMS), max_size=8),
    st.integers(min_value=1, max_value=64),
)
def test_a_refused_blob_is_one_the_loader_refuses_too(
    probe: _Probe, op: int, arg: bytes, rest: list[bytes], cut: int
) -> None:
    """Soundness against the real unpickler: whatever ``may_start_pickle`` refuses,
    pickle.loads refuses without calling anything, and the emulator calls no pickle.
    A head of a blob (``partial``) never refuses what the whole blob is."""
    data = bytes([op]) + arg + b"".join(rest)
    if not may_start_pickle(data):
        assert _loader_runs(data, probe) == (False, 0), data
        assert _no_pickle(data), data
    else:
        assert may_start_pickle(data[:cut], partial=True), (data, cut)


def test_headerless_payloads_are_still_judged() -> None:
    """The bypass corpus' header-less shapes (no PROTO) still reach the emulator."""
    for data in (
        EVIL,
        b"N0" + EVIL,
        b"(cos\nsystem\nS'echo x'\no.",
        b"Vos\nVsystem\n\x93(S'echo x'\ntR.",
        b"S'os'\nS'system'\n\x93(S'echo x'\ntR.",
        b"I0o1\n0" + EVIL,
        b"cos\nsystem\n(S'echo x'\ntR",  # breaks after the call: still ran
    ):
        assert may_start_pickle(data), data
        findings = analyze_model("notes.txt", data)
        assert [f.verdict for f in findings] == ["executes-code"], (data, findings)
