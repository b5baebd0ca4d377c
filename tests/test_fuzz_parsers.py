"""Bounded fuzzing of every model-file parser, in the test suite.

Two kinds of targets, each a hypothesis test with a per-example deadline and a hard
alarm (a hang fails the test rather than the run):

* real benign checkpoints (torch.save zip and legacy, NumPy .npy/.npz, safetensors,
  joblib), bit-flipped, truncated, spliced or with their zip members reordered: no
  exception, no hang, and nothing above low unless the mutation made the file import
  something (an import-based verdict);
* one target per parser (zip, tar, 7z, npy, safetensors, GGUF, Keras, ONNX, TF
  SavedModel, TFLite), called directly where it has an entry point, so that damage
  reaches it even when the result no longer sniffs as its format.

No target may make a reader raise: the isolation in ``pickles_in``/``analyze_model``
turns a reader's exception into a "the reader failed on it" note, and these tests
fail on that note too (it is a bug to fix at its root). ``KEYSCOPE_FUZZ_EXAMPLES``
raises the number of examples per target for longer runs (benchmarks/FUZZING.md).
"""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import FrameType

import joblib
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save as safetensors_save

from keyscope.model import ModelFinding, Severity
from keyscope.modelfiles.analyzer import analyze_model
from keyscope.modelfiles.containers import READER_FAILED, Anomaly, pickles_in
from keyscope.modelfiles.onnx_graphs import onnx_issues
from keyscope.modelfiles.structured import (
    StructuredIssue,
    gguf_issues,
    keras_config_issues,
    safetensors_issues,
)
from keyscope.modelfiles.tf_graphs import saved_model_issues
from keyscope.modelfiles.tflite_graphs import tflite_issues
from tests.test_model_files import tar_of
from tests.test_model_graphs import FIXTURES

EXAMPLES = int(os.environ.get("KEYSCOPE_FUZZ_EXAMPLES", "40"))
HANG_SECONDS = 20
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
IMPORT_VERDICTS = frozenset({"executes-code", "unknown-import", "library-class"})


class Hang(BaseException):
    """Raised by the alarm; a BaseException so that no reader's guard swallows it."""


@contextmanager
def no_hang(seconds: int = HANG_SECONDS) -> Iterator[None]:
    def ring(_signum: int, _frame: FrameType | None) -> None:
        raise Hang(f"no result after {seconds} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` after one to six byte-level edits: bit flips, byte writes,
    deletions, insertions, a cut at the end, a span copied elsewhere."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(("flip", "byte", "del", "ins", "cut", "dup")))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            data[i] = draw(st.integers(0, 255))
        elif op == "del":
            del data[i : i + draw(st.integers(1, 64))]
        elif op == "ins":
            data[i:i] = draw(st.binary(min_size=1, max_size=64))
        elif op == "cut":
            del data[i:]
        else:
            j = draw(st.integers(0, len(data) - 1))
            data[i:i] = data[j : j + draw(st.integers(1, 64))]
    return bytes(data)


def reader_failures(findings: list[ModelFinding]) -> list[str]:
    return [f.sentence for f in findings if READER_FAILED in f.sentence]


# --- benign checkpoints, mutated ------------------------------------------------------


def _torch(legacy: bool) -> bytes:
    buf = io.BytesIO()
    state = {"layer.weight": torch.arange(6.0).reshape(2, 3), "step": 7, "name": "demo"}
    torch.save(state, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.arange(12, dtype=np.float32).reshape(3, 4))
    return buf.getvalue()


def _npz() -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, a=np.zeros((20, 20)), b=np.arange(5))
    return buf.getvalue()


def _safetensors() -> bytes:
    return safetensors_save({"w": np.ones((4, 4), dtype=np.float32)}, {"format": "np"})


def _joblib() -> bytes:
    buf = io.BytesIO()
    joblib.dump({"coef": np.arange(8.0), "classes": [0, 1]}, buf)
    return buf.getvalue()


CHECKPOINTS: dict[str, Callable[[], bytes]] = {
    "torch-zip": lambda: _torch(legacy=False),
    "torch-legacy": lambda: _torch(legacy=True),
    "npy": _npy,
    "npz": _npz,
    "safetensors": _safetensors,
    "joblib": _joblib,
}
SEEDS = {name: make() for name, make in CHECKPOINTS.items()}


def test_the_seeds_are_clean() -> None:
    for name, data in SEEDS.items():
        assert analyze_model(name, data) == [], name


def _judge_benign_mutation(data: bytes) -> None:
    with no_hang():
        findings = analyze_model("mutated.bin", data)
    assert not reader_failures(findings), reader_failures(findings)
    if any(f.verdict in IMPORT_VERDICTS and f.severity > Severity.LOW for f in findings):
        return  # the edit made the file import something (then a differential is high too)
    for f in findings:
        assert f.severity <= Severity.LOW, f.sentence


@pytest.mark.parametrize("name", sorted(SEEDS))
@FUZZ
@given(data=st.data())
def test_mutated_benign_checkpoint(name: str, data: st.DataObject) -> None:
    _judge_benign_mutation(data.draw(mutated(SEEDS[name])))


def _reorder(zipped: bytes, order: list[int]) -> bytes:
    """The same members, written by zipfile in another order."""
    src = zipfile.ZipFile(io.BytesIO(zipped))
    infos = src.infolist()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for i in order:
            info = infos[i % len(infos)]
            dst.writestr(info.filename, src.read(info), compress_type=info.compress_type)
    return out.getvalue()


@pytest.mark.parametrize("name", ["torch-zip", "npz"])
@FUZZ
@given(data=st.data())
def test_reordered_zip_members(name: str, data: st.DataObject) -> None:
    """A permutation of the members is still clean; with a byte-level edit on top,
    still nothing above low."""
    seed = SEEDS[name]
    count = len(zipfile.ZipFile(io.BytesIO(seed)).infolist())
    order = data.draw(st.permutations(range(count)))
    reordered = _reorder(seed, list(order))
    assert analyze_model(name, reordered) == []
    _judge_benign_mutation(data.draw(mutated(reordered)))


# --- one target per parser ------------------------------------------------------------


def _gguf() -> bytes:
    def s(text: str) -> bytes:
        return struct.pack("<Q", len(text.encode())) + text.encode()

    kv = [
        s("general.architecture") + struct.pack("<I", 8) + s("llama"),
        s("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 3) + b"\0" * 12,
        s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + s("a") + s("b"),
        s("tokenizer.chat_template") + struct.pack("<I", 8) + s("{{ messages[0].content }}"),
    ]
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(kv)


def _keras() -> bytes:
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"layers": [{"module": "keras.layers", "class_name": "Dense"}]},
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.6.0"}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 32)
    return buf.getvalue()


def _seven_zip() -> bytes:
    return FIXTURES[3]  # a 7z made by py7zr (tests/test_model_graphs.py)


def _containers(data: bytes) -> list[str]:
    """The container walk: exceptions inside it are its bugs."""
    return [
        a.detail for a in pickles_in(data) if isinstance(a, Anomaly) and READER_FAILED in a.detail
    ]


def _structured(parse: Callable[[bytes], list[StructuredIssue]]) -> Callable[[bytes], list[str]]:
    def run(data: bytes) -> list[str]:
        parse(data)  # must not raise
        return []

    return run


def _keras_target(data: bytes) -> list[str]:
    # The archive through the whole analysis (its members are stored, so edits reach
    # the config text too), and the config text straight into the config reader.
    failures = reader_failures(analyze_model("m.keras", data))
    start = data.find(b'{"module"')
    keras_config_issues(data[max(start, 0) :].decode("utf-8", "replace"), ("config.json",))
    return failures


PARSERS: dict[str, tuple[Callable[[], bytes], Callable[[bytes], list[str]]]] = {
    "zip": (lambda: SEEDS["torch-zip"], _containers),
    "tar": (lambda: tar_of({"model.pt": SEEDS["torch-zip"], "x.npy": SEEDS["npy"]}), _containers),
    "7z": (_seven_zip, _containers),
    "npy": (lambda: SEEDS["npy"], _containers),
    "safetensors": (lambda: SEEDS["safetensors"], _structured(safetensors_issues)),
    "gguf": (_gguf, _structured(gguf_issues)),
    "keras": (_keras, _keras_target),
    "onnx": (lambda: FIXTURES[0], _structured(onnx_issues)),
    "tf": (lambda: FIXTURES[1], _structured(saved_model_issues)),
    "tflite": (lambda: FIXTURES[2], _structured(tflite_issues)),
}
PARSER_SEEDS = {name: make() for name, (make, _run) in PARSERS.items()}


@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(data=st.data())
def test_parser_takes_any_mutation(name: str, data: st.DataObject) -> None:
    run = PARSERS[name][1]
    with no_hang():
        failures = run(data.draw(mutated(PARSER_SEEDS[name])))
    assert not failures, failures


def test_fuzz_targets_cover_every_parser() -> None:
    assert set(PARSERS) == {
        "zip", "tar", "7z", "npy", "safetensors", "gguf", "keras", "onnx", "tf", "tflite"
    }  # fmt: skip
    assert set(CHECKPOINTS) >= {"torch-zip", "torch-legacy", "npy", "npz", "safetensors"}


def test_reader_failures_are_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check these targets rely on: a reader that raises is seen, not hidden."""
    from keyscope.modelfiles import containers

    def broken(*_args: object) -> Iterator[Anomaly]:
        raise TypeError("a bug")
        yield  # pragma: no cover

    monkeypatch.setattr(containers, "_npy", broken)
    findings = analyze_model("x.npy", SEEDS["npy"])
    assert reader_failures(findings) and findings[0].severity == Severity.LOW
