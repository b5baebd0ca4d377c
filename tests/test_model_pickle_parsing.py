"""The pickle emulator reads bytes exactly as CPython's ``_pickle`` does.

Malicious fixtures are opcode bytes; none is ever unpickled with a real name in it. Where
a test shows that CPython itself accepts a trick, it runs the real ``_pickle`` on a twin
fixture whose global is a harmless recorder module (``keyscope_probe.run``) that this
file puts in ``sys.modules`` — nothing is imported from disk and nothing runs but the
recorder.
"""

from __future__ import annotations

import io
import pickle
import random
import resource
import struct
import sys
import time
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyscope.model import ModelFinding
from keyscope.modelfiles import pickle_vm
from keyscope.modelfiles.analyzer import analyze_model, is_model_candidate
from keyscope.modelfiles.pickle_vm import analyze_pickle

PAYLOAD = "echo keyscope-test-payload"
PROBE = "keyscope_probe"
REPO = Path(__file__).resolve().parents[1]


# --- helpers ------------------------------------------------------------------------
def u(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def frame(n: int) -> bytes:
    return b"\x95" + struct.pack("<Q", n)


def p0_call(module: str, name: str) -> bytes:
    """module.name(PAYLOAD) in protocol 0 text: GLOBAL, MARK, STRING, TUPLE, REDUCE."""
    return f"c{module}\n{name}\n(S'{PAYLOAD}'\ntR".encode()


def p4_call(module: str, name: str) -> bytes:
    return u(module) + u(name) + b"\x93" + u(PAYLOAD) + b"\x85R"


class _Probe(types.ModuleType):
    def __init__(self) -> None:
        super().__init__(PROBE)
        self.calls: list[tuple[object, ...]] = []

    def run(self, *args: object) -> str:
        self.calls.append(args)
        return "ran"


@pytest.fixture
def probe() -> Iterator[_Probe]:
    """A recorder module for the real unpickler: its ``run`` only appends its args."""
    module = _Probe()
    sys.modules[PROBE] = module
    try:
        yield module
    finally:
        del sys.modules[PROBE]


def real_loads(data: bytes, probe: _Probe) -> int:
    """How many times pickle.loads (bytes, the C unpickler) calls the probe."""
    before = len(probe.calls)
    pickle.loads(data)
    return len(probe.calls) - before


def real_load_file(data: bytes, probe: _Probe) -> int:
    """How many times pickle.load on a file object without peek() (what torch.load
    hands it for a zip member: an io.BytesIO) calls the probe."""
    before = len(probe.calls)
    pickle.load(io.BytesIO(data))
    return len(probe.calls) - before


def critical(findings: list[ModelFinding], needle: str) -> ModelFinding:
    hits = [f for f in findings if f.verdict == "executes-code"]
    assert hits, [(f.verdict, f.sentence) for f in findings]
    assert hits[0].severity.label == "critical"
    text = " ".join([hits[0].sentence, *hits[0].details])
    assert needle in text, text
    return hits[0]


def torch_zip(pickle_bytes: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/version", "3\n")
        z.writestr("archive/data.pkl", pickle_bytes)
    return buf.getvalue()


# --- issue 12: integers read as _pickle reads them ----------------------------------------
INT_TRICKS = {
    # NONE, POP, then the call: no PROTO, first byte N
    "none-pop": lambda m, n: b"N0" + p0_call(m, n) + b".",
    # INT "0o1" fails strtol, then int("0o1\n", 0) reads 1
    "int-0o1": lambda m, n: b"\x80\x02I0o1\n0" + p0_call(m, n) + b".",
    # strtol base 0: 010 is octal 8, 0x1f hex; LONG in base 0 too
    "int-octal": lambda m, n: b"I010\n0" + p0_call(m, n) + b".",
    "int-hex": lambda m, n: b"\x80\x02I0x1f\n0" + p0_call(m, n) + b".",
    "int-underscore": lambda m, n: b"\x80\x02I1_000\n0" + p0_call(m, n) + b".",
    "int-space": lambda m, n: b"\x80\x02I 7\n0" + p0_call(m, n) + b".",
    "int-nul": lambda m, n: b"\x80\x02I7\x00junk\n0" + p0_call(m, n) + b".",
    "long-hex": lambda m, n: b"\x80\x02L0x10L\n0" + p0_call(m, n) + b".",
    "long-nul": lambda m, n: b"\x80\x02L5\x00x\n0" + p0_call(m, n) + b".",
    "float-nul": lambda m, n: b"\x80\x02F1.5\x00x\n0" + p0_call(m, n) + b".",
    "get-put-text": lambda m, n: b"\x80\x02Np 1_0\n0g+10\n0" + p0_call(m, n) + b".",
}


@pytest.mark.parametrize("trick", sorted(INT_TRICKS))
def test_text_arguments_read_as_pickle_does(trick: str, probe: _Probe) -> None:
    build = INT_TRICKS[trick]
    assert real_loads(build(PROBE, "run"), probe) == 1  # CPython accepts and calls
    evil = build("os", "system")
    critical(analyze_model("model.bin", evil), "os.system")
    critical(analyze_model("ckpt.pt", torch_zip(evil)), "os.system")


def test_int_values_match_pickle() -> None:
    """The values, not only the acceptance: booleans, octal, base-0 fallbacks."""
    for text in (b"00", b"01", b"010", b"0o17", b"0b11", b"-0x1f", b" +5", b"1_0", b"9" * 30):
        data = b"I" + text + b"\n."
        vm = pickle_vm._VM(
            data, 0, pickle_vm.PickleReport(deadline=time.monotonic() + 5), frozenset()
        )
        vm.run()
        got = vm.stack[-1]
        want = pickle.loads(data)
        assert got == want and type(got) is type(want), (text, got, want)
    for bad in (b"I\n.", b"I08\n.", b"I0x\n.", b"L010\n.", b"F1_0\n.", b"F1e500\n.", b"g-1\n."):
        with pytest.raises(Exception):  # noqa: B017 - CPython's own error types vary
            pickle.loads(bad)
        report = analyze_pickle(bad)
        assert not report.parsed and not report.complete, bad


# --- issue 12: pickles keyscope did not recognise ---------------------------------------
HEADERLESS = {
    "unicode": lambda m, n: b"Vx\n0" + p0_call(m, n) + b".",
    "string": lambda m, n: b"S'x'\n0" + p0_call(m, n) + b".",
    "binunicode": lambda m, n: b"X\x01\x00\x00\x00x0" + p0_call(m, n) + b".",
    "short-binunicode": lambda m, n: u("x") + b"0" + p4_call(m, n) + b".",
    "mark-string": lambda m, n: b"(S'x'\n1" + p0_call(m, n) + b".",
    "trailing-bytes": lambda m, n: p0_call(m, n) + b".\x00\xff trailing garbage \x01",
    "proto4-no-proto": lambda m, n: p4_call(m, n) + b".",
}


@pytest.mark.parametrize("kind", sorted(HEADERLESS))
def test_headerless_and_trailing_pickles_are_recognised(kind: str, probe: _Probe) -> None:
    build = HEADERLESS[kind]
    assert real_loads(build(PROBE, "run"), probe) == 1
    evil = build("os", "system")
    assert is_model_candidate(evil)
    critical(analyze_model("notes.txt", evil), "os.system")


def test_text_and_random_bytes_are_not_pickles() -> None:
    """Noise: the repository's own text files and seeded random binary files (some
    starting with every opcode byte) give no finding at all."""
    texts = [p for p in REPO.rglob("*") if p.suffix in (".py", ".md", ".toml", ".txt")]
    texts = [p for p in texts if "node_modules" not in p.parts][:400]
    assert len(texts) > 50
    for path in texts:
        assert analyze_model(path.name, path.read_bytes()) == [], path
    rng = random.Random(12)
    for i in range(3000):
        data = bytes([i % 256]) + rng.randbytes(rng.choice((1, 7, 64, 4096)))
        findings = analyze_model("blob.bin", data)
        assert not [f for f in findings if f.severity.label != "info"], (data[:40], findings)


def test_a_pickle_named_file_that_is_no_pickle_says_so() -> None:
    (f,) = analyze_model("model.pkl", b"\xffnot a pickle at all")
    assert (f.severity.label, f.verdict) == ("info", "not-a-pickle")
    assert is_model_candidate(b"\xff", "weights.PT")
    assert analyze_model("weights.bin", b"\xffnot a pickle at all") == []
    lfs = b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 12\n"
    assert analyze_model("model.pt", lfs) == []


@pytest.mark.parametrize("protocol", range(6))
def test_benign_pickles_of_every_protocol_are_clean(protocol: int) -> None:
    """Made by the real pickle module (protocols 0 and 1 have no magic number)."""
    import collections

    import numpy as np

    value = {
        "n": 3,
        "x": 1.5,
        "big": 2**70,
        "s": "text\nwith 'quotes' and \\ and é",
        "b": b"\x00\xff",
        "t": (1, (2, 3)),
        "fs": frozenset({1, 2}),
        "od": collections.OrderedDict(a=1),
        "arr": np.arange(6.0).reshape(2, 3),
    }
    data = pickle.dumps(value, protocol=protocol)
    report = analyze_pickle(data, headerless=protocol < 2)
    assert report.parsed == 1 and report.complete, report.events
    findings = analyze_model("state.pkl", data)
    assert not [f for f in findings if f.severity.label != "info"], findings


# --- issue 12: framing --------------------------------------------------------------------
def hidden_from_loads(m: str, n: str) -> bytes:
    """A 3-byte FRAME holds NONE, BINBYTES and one byte of its length. Reading a file,
    _pickle drops that byte and reads the length (0) after the frame, then runs the
    call; pickle.loads reads the length as 1+len(call) and swallows the call."""
    call = b"0" + p4_call(m, n) + b"."
    return b"\x80\x04" + frame(3) + b"NB" + bytes([1 + len(call)]) + b"\0\0\0\0" + call + b"."


def hidden_from_files(m: str, n: str) -> bytes:
    """The mirror image: a 4-byte FRAME holds NONE, BINBYTES and two bytes of its
    length. pickle.loads reads a 2-byte value and runs the call after it; a file reader
    drops those two bytes, reads a length of 65536 after the frame and swallows the call."""
    call = b"0" + p4_call(m, n) + b"."
    value = call + b"\0" * (65536 - len(call))
    return b"\x80\x04" + frame(4) + b"NB\x02\x00" + b"\x00\x00\x01\x00" + value + b"."


@pytest.mark.parametrize("build", [hidden_from_loads, hidden_from_files])
def test_frame_divergence_is_caught_both_ways(build: object, probe: _Probe) -> None:
    make = build  # type: ignore[assignment]
    twin = make(PROBE, "run")  # type: ignore[operator]
    by_file, by_loads = real_load_file(twin, probe), real_loads(twin, probe)
    assert {by_file, by_loads} == {0, 1}  # CPython's two readers disagree
    findings = analyze_model("model.bin", make("os", "system"))  # type: ignore[operator]
    critical(findings, "os.system")
    anomalies = [f for f in findings if f.verdict == "anomaly"]
    assert anomalies and anomalies[0].severity.label == "high"
    assert "FRAME at byte 2" in anomalies[0].sentence


def test_payload_seen_only_when_the_file_view_breaks(probe: _Probe) -> None:
    """The file reader's view breaks (a length past the end), pickle.loads runs the call:
    the break must not hide the other view."""
    twin = b"\x80\x04" + frame(4) + b"NB\x02\x00" + b"\x00\x00\x01\x00"
    twin += b"0" + p4_call(PROBE, "run") + b"."
    with pytest.raises(pickle.UnpicklingError):
        real_load_file(twin, probe)
    assert real_loads(twin, probe) == 1
    evil = twin.replace(u(PROBE) + u("run"), u("os") + u("system"))
    findings = analyze_model("model.bin", evil)
    critical(findings, "os.system")
    assert any(f.verdict == "anomaly" for f in findings)


def test_frame_divergence_inside_a_torch_zip() -> None:
    findings = analyze_model("ckpt.pt", torch_zip(hidden_from_loads("os", "system")))
    critical(findings, "os.system")
    assert any(f.verdict == "anomaly" for f in findings)


def test_honest_frames_are_quiet() -> None:
    data = pickle.dumps({"k": list(range(50_000)), "s": "x" * 100_000}, protocol=5)
    assert data.count(b"\x95") > 1
    report = analyze_pickle(data)
    assert report.parsed == 1 and report.complete and not report.anomalies


# --- issue 11: budgets and errors -----------------------------------------------------
def _nested_lists(depth: int, width: int) -> bytes:
    """A list holding the previous one ``width`` times, ``depth`` times over (memo GETs:
    11 KB of opcodes, a repr of width**depth elements)."""
    out = b"]q\x000"
    for level in range(1, depth + 1):
        out += b"(" + (b"h" + bytes([level - 1])) * width + b"lq" + bytes([level]) + b"0"
    return out + b"h" + bytes([depth])


def test_huge_unhashable_keys_are_fast_and_not_clean() -> None:
    key = _nested_lists(6, 24)  # repr would be 24**6 = 191 million elements
    data = b"\x80\x02}" + key + b"K\x01s."
    start = time.monotonic()
    findings = analyze_model("big.pkl", data)
    assert time.monotonic() - start < 2
    assert [(f.severity.label, f.verdict) for f in findings] == [("low", "inconclusive")]
    assert "unhashable" in findings[0].sentence


def test_deeply_nested_tuple_key_is_a_budget_stop_not_a_crash() -> None:
    data = b"\x80\x02}" + b")" + b"\x85" * 200_000 + b"K\x01s."
    (f,) = analyze_model("deep.pkl", data)
    assert f.verdict == "inconclusive" and "could not be fully analysed" in f.sentence


def test_time_budget_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pickle_vm, "TIME_BUDGET", 0.05)
    data = b"\x80\x04" + b"K\x010" * 2_000_000 + b"N."
    start = time.monotonic()
    (f,) = analyze_model("slow.pkl", data)
    assert time.monotonic() - start < 1
    assert f.verdict == "inconclusive" and "time budget" in f.sentence


def test_only_emulation_counts_against_the_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A big checkpoint's container reading (CRCs, inflating, page faults) comes before
    its pickle: that time is not the pickle's."""
    monkeypatch.setattr(pickle_vm, "TIME_BUDGET", 0.05)
    budget = pickle_vm.TimeBudget()
    start = time.thread_time()
    while time.thread_time() - start < 0.1:  # the container's work
        pass
    data = b"\x80\x04]" + b"K\x01a" * 2000 + b"."
    report = analyze_pickle(data, budget=budget)
    assert report.parsed == 1 and report.complete
    assert 0 < budget.left < 0.05


def test_huge_values_are_not_copied_or_printed() -> None:
    big = b"\x80\x04" + u("os") + u("system") + b"\x93"
    big += b"\x8e" + struct.pack("<Q", 200 << 20) + b"\0" * (200 << 20) + b"\x85R."
    huge_int = b"\x80\x02" + p0_call("os", "system")[:-2] + b"L0x" + b"f" * 200_000 + b"L\ntR."
    for data in (big, huge_int):
        start = time.monotonic()
        f = critical(analyze_model("v.pkl", data), "os.system")
        assert time.monotonic() - start < 2
        assert len(f.sentence) < 1000


def test_many_imports_are_not_all_recorded() -> None:
    """Each import would be a record: past MAX_EVENTS only new kinds are kept, and the
    call at the end still counts."""
    data = b"\x80\x02" + b"cos\nsystem\n0" * 30_000 + p0_call("os", "system") + b"."
    report = analyze_pickle(data)
    assert report.parsed == 1 and report.dropped > 0
    assert len(report.events) <= pickle_vm.MAX_EVENTS + 8
    f = critical(analyze_model("m.pkl", data), "calls os.system")
    assert len(f.details) <= 201 and f.details[-1].endswith("more")


def test_too_many_embedded_pickles_is_a_budget_note() -> None:
    data = b"\x80\x04" + b"C\x08\x80\x02N.\x00\x00\x00\x000" * 100 + b"N."
    (f,) = analyze_model("m.pkl", data)
    assert f.verdict == "inconclusive" and "more than 64 values" in f.sentence


@pytest.mark.parametrize(
    "arg",
    [
        b"I" + b"0" * (32 << 20) + b"7\n",
        b"I" + b" " * (32 << 20) + b"7\n",
        b"L0x" + b"f" * (32 << 20) + b"L\n",
    ],
)
def test_huge_text_numbers_are_checked_not_computed(arg: bytes) -> None:
    """Megabytes of digits or spaces in one INT/LONG: no per-character Python loop and no
    big-number arithmetic (a single opcode the time budget cannot interrupt)."""
    data = b"\x80\x02" + p0_call("os", "system")[:-2] + arg + b"tR."
    start = time.process_time()
    critical(analyze_model("n.pkl", data), "os.system")
    assert time.process_time() - start < 1


def test_huge_names_and_strings_stay_small_in_the_report() -> None:
    chain = "__class__." * 20_000 + "__init__"  # resolvable: getattr all the way down
    data = b"\x80\x04" + u("os") + b"X"
    data += struct.pack("<I", len(chain)) + chain.encode() + b"\x93)R."
    text = b"\x80\x02S'" + b"a" * (20 << 20) + b"'\nV" + b"b" * (20 << 20) + b"\n" + b"0" * 2
    text += p0_call("os", "system") + b"."
    for blob in (data, text):
        start = time.process_time()
        findings = analyze_model("n.pkl", blob)
        assert time.process_time() - start < 2
        f = next(f for f in findings if f.verdict == "executes-code")
        assert len(f.sentence) + sum(map(len, f.details)) < 5000


def test_an_internal_error_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: object) -> None:
        raise KeyError("emulator bug")

    monkeypatch.setitem(pickle_vm._DISPATCH, ord("N"), boom)
    (f,) = analyze_model("m.pkl", b"\x80\x02N.")
    assert f.verdict == "inconclusive" and "KeyError in the emulator" in f.sentence


# --- fuzz: the emulator against the real unpickler ----------------------------------------
_ATOMS = [
    b"N",
    b"\x88",
    b"\x89",
    b"K\x05",
    b"M\x01\x02",
    b"J\xff\xff\xff\xff",
    b"I12\n",
    b"I0o7\n",
    b"I010\n",
    b"L5L\n",
    b"F1.5\n",
    b"G" + struct.pack(">d", 2.5),
    b"S'ab'\n",
    b"Vx\\u0041\n",
    b"U\x02ab",
    b"T\x01\x00\x00\x00a",
    b"X\x01\x00\x00\x00a",
    u("k"),
    b"C\x02ab",
    b"B\x01\x00\x00\x00a",
    b")",
    b"]",
    b"}",
    b"\x8f",
    b"(",
    b"t",
    b"l",
    b"d",
    b"e",
    b"a",
    b"s",
    b"u",
    b"\x90",
    b"\x91",
    b"\x85",
    b"\x86",
    b"\x87",
    b"0",
    b"1",
    b"2",
    b"\x94",
    b"q\x00",
    b"h\x00",
    b"p0\n",
    b"g0\n",
    b"r\x01\x00\x00\x00",
    b"j\x01\x00\x00\x00",
    b"c" + PROBE.encode() + b"\nrun\n",
    u(PROBE) + u("run") + b"\x93",
    b"R",
    b"\x81",
    b"b",
    b"o",
    b"(i" + PROBE.encode() + b"\nrun\n",
    b"\x80\x02",
    b"\x80\x04",
    frame(2),
    frame(9),
]


class _Recorder(pickle.Unpickler):
    """The real C unpickler; every global is the probe's harmless ``run``."""

    def find_class(self, module: str, name: str) -> object:
        return sys.modules[PROBE].run  # type: ignore[attr-defined]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_ATOMS), max_size=24), st.booleans())
def test_fuzz_emulator_agrees_with_pickle(atoms: list[bytes], stop: bool) -> None:
    """Random opcode streams: the emulator never raises; whatever CPython's unpickler
    reads to STOP the emulator reads to STOP too, and every call CPython makes shows
    up as a call in the emulator's events."""
    data = b"".join(atoms) + (b"." if stop else b"")
    module = _Probe()
    sys.modules[PROBE] = module
    # CPython's memo grows to twice the largest PUT index: a misaligned LONG_BINPUT
    # would allocate gigabytes. Cap this process's address space while it runs.
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + (1 << 30), hard))
    try:
        _Recorder(io.BytesIO(data)).load()
        loaded = True
    except Exception:  # any refusal by CPython (MemoryError included) is fine here
        loaded = False
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        del sys.modules[PROBE]
    report = analyze_pickle(data, max_streams=1)
    calls = [e for e in report.events if e.kind == "call"]
    if loaded:
        assert report.parsed == 1, (data, report.events)
    if module.calls:
        assert calls, (data, module.calls, report.events)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_fuzz_random_bytes_finish_fast(data: bytes) -> None:
    start = time.monotonic()
    for blob in (data, b"\x80\x04" + data, b"\x80\x04" + frame(len(data) // 2) + data):
        analyze_model("x.pkl", blob)
    assert time.monotonic() - start < 3
