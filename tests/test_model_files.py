"""Model files: benign checkpoints made by the real libraries produce no finding;
malicious ones built from opcodes (harmless payloads, never executed) are caught with
the call or import named. Nothing here is ever unpickled."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import random
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyscope.cli import main
from keyscope.model import ModelFinding
from keyscope.modelfiles.analyzer import analyze_model
from keyscope.modelfiles.pickle_vm import analyze_pickle

PAYLOAD = "echo keyscope-test-payload"


# --- opcode builders ---------------------------------------------------------------
def u(text: str) -> bytes:
    """SHORT_BINUNICODE."""
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def stack_global(module: str, name: str) -> bytes:
    return u(module) + u(name) + b"\x93"


def call1(func: bytes, arg: bytes) -> bytes:
    """func(arg) with REDUCE."""
    return func + arg + b"\x85R"


def p4(body: bytes) -> bytes:
    return b"\x80\x04" + body + b"."


def os_system_p0() -> bytes:
    return f"cos\nsystem\n(S'{PAYLOAD}'\ntR.".encode()


def os_system_p4() -> bytes:
    return p4(call1(stack_global("os", "system"), u(PAYLOAD)))


def tar_of(members: dict[str, bytes], mode: str = "w") -> bytes:
    """A real tar holding ``members`` (``mode="w:gz"`` for a .tar.gz)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def torch_zip(pickle_bytes: bytes, *, name: str = "archive/data.pkl") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/version", "3\n")
        z.writestr(name, pickle_bytes)
    return buf.getvalue()


def verdicts(findings: list[ModelFinding]) -> set[tuple[str, str]]:
    return {(f.severity.label, f.verdict) for f in findings}


def executes(data: bytes, needle: str, path: str = "model.bin") -> ModelFinding:
    findings = analyze_model(path, data)
    hits = [f for f in findings if f.verdict == "executes-code"]
    assert hits, [(f.verdict, f.sentence) for f in findings]
    text = " ".join([hits[0].sentence, *hits[0].details])
    assert needle in text, text
    assert hits[0].severity.label == "critical"
    return hits[0]


# --- benign fixtures from the real libraries ---------------------------------------
def _state() -> dict[str, object]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": 3,
        "step": torch.tensor(12),
        "lr": 1e-3,
        "name": "tiny",
        "shape": torch.Size([4, 3]),
    }


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("zipped", [True, False])
def test_torch_checkpoints_are_clean(protocol: int, zipped: bool) -> None:
    buf = io.BytesIO()
    torch.save(_state(), buf, pickle_protocol=protocol, _use_new_zipfile_serialization=zipped)
    assert analyze_model("ckpt.pt", buf.getvalue()) == []


def test_hugging_face_style_rng_state_is_clean() -> None:
    rng = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "cpu": torch.random.get_rng_state(),
    }
    buf = io.BytesIO()
    torch.save(rng, buf)
    assert analyze_model("rng_state.pth", buf.getvalue()) == []


def test_numpy_files_are_clean() -> None:
    for save in (
        lambda b: np.save(b, np.arange(12.0).reshape(3, 4)),
        lambda b: np.savez(b, a=np.arange(3), b=np.ones((2, 2))),
        lambda b: np.savez_compressed(b, a=np.arange(3)),
        lambda b: np.save(b, np.array([{"a": 1}, None], dtype=object)),
    ):
        buf = io.BytesIO()
        save(buf)
        assert analyze_model("arr.npy", buf.getvalue()) == []


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)])
def test_joblib_dumps_are_clean(tmp_path: Path, compress: object) -> None:
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "m.joblib"
    joblib.dump(
        {
            "w": np.arange(1000.0),
            "s": np.array(["ab", "c"]),
            "rec": np.zeros(3, dtype=[("a", "f4"), ("b", "i2")]),
            "obj": np.array([{"k": 1}], dtype=object),
        },
        path,
        compress=compress,
    )
    assert analyze_model(str(path), path.read_bytes()) == []


def test_safetensors_is_clean(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    save_file({"w": torch.zeros(2, 2)}, str(path))
    assert analyze_model(str(path), path.read_bytes()) == []


def test_whole_module_pickle_is_a_library_class_not_code() -> None:
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2), buf)
    assert verdicts(analyze_model("m.pt", buf.getvalue())) == {("info", "library-class")}


@pytest.mark.filterwarnings("ignore:`torch.jit.s:DeprecationWarning")
def test_torchscript_archive_is_low_and_named(tmp_path: Path) -> None:
    """torch.jit.save: the pickles reference __torch__.* classes that torch.jit.load
    compiles from the archive's own TorchScript code; no Python module is imported."""

    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2

    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(Net()), str(path))
    findings = analyze_model(str(path), path.read_bytes())
    assert findings and {(f.severity.label, f.verdict) for f in findings} == {
        ("low", "unknown-import")
    }
    assert all("TorchScript module (__torch__." in f.sentence for f in findings)


def test_custom_class_is_an_unknown_import() -> None:
    data = p4(stack_global("my_project.models", "Net") + b")\x81" + b"}b")
    (f,) = analyze_model("m.pkl", data)
    assert (f.severity.label, f.verdict) == ("medium", "unknown-import")
    assert "my_project.models.Net" in f.sentence


# --- malicious fixtures: published bypasses and container tricks -------------------
def test_classic_reduce_protocol_0() -> None:
    f = executes(os_system_p0(), "os.system")
    assert PAYLOAD in " ".join(f.details)


def test_stack_global_protocol_4() -> None:
    executes(os_system_p4(), "calls os.system")


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("logging", "os.system"),  # dotted names walk into another module
        ("numpy", "__builtins__.eval"),
        ("numpy.core._internal", "sys.modules"),
        ("builtins", "eval"),
        ("builtins", "exec"),
        ("builtins", "__import__"),
        ("subprocess", "Popen"),
        ("runpy", "_run_code"),
        ("code", "InteractiveInterpreter"),
        ("operator", "attrgetter"),
        ("_operator", "methodcaller"),
        ("functools", "partial"),
        ("pkgutil", "resolve_name"),
        ("pydoc", "locate"),
        ("importlib", "import_module"),
        ("marshal", "loads"),
        ("types", "FunctionType"),
        ("ctypes", "CDLL"),
        ("pty", "spawn"),
        ("torch", "load"),
        ("torch.serialization", "load"),
        ("torch.utils.collect_env", "run"),
        ("torch._inductor.codecache", "compile_file"),
        ("numpy", "load"),
        ("numpy.testing._private.utils", "runstring"),
        ("pickle", "loads"),
        ("_pickle", "loads"),
        ("shutil", "rmtree"),
        ("urllib.request", "urlopen"),
        ("ssl", "get_server_certificate"),
        ("webbrowser", "open"),
        ("pip", "main"),
        ("venv", "create"),
        ("timeit", "timeit"),
        ("cProfile", "run"),
        ("doctest", "debug_script"),
        ("asyncio", "create_subprocess_shell"),
        ("uuid", "_get_command_stdout"),
        ("imaplib", "IMAP4_stream"),
        ("_io", "FileIO"),
    ],
)
def test_dangerous_callables_are_named(module: str, name: str) -> None:
    executes(p4(call1(stack_global(module, name), u(PAYLOAD))), f"{module}.{name}")


def test_getattr_chain_calls_a_runtime_callable() -> None:
    # getattr(__import__('os'), 'system')('…'): the called object exists only at run time
    body = (
        stack_global("builtins", "getattr")
        + stack_global("builtins", "__import__")
        + u("os")
        + b"\x85R"
        + u("system")
        + b"\x86R"
        + u(PAYLOAD)
        + b"\x85R"
    )
    executes(p4(body), "calls an object returned by builtins.getattr")


def test_names_from_the_memo_are_resolved() -> None:
    body = (
        u("os")
        + b"\x94"
        + u("system")
        + b"\x94"  # MEMOIZE both
        + b"h\x00h\x01\x93"
        + u(PAYLOAD)
        + b"\x85R"
    )  # BINGET 0, BINGET 1, STACK_GLOBAL
    executes(p4(body), "os.system")


def test_string_opcode_operands_for_stack_global() -> None:
    data = b"\x80\x04S'os'\nS'system'\n\x93" + u(PAYLOAD) + b"\x85R."
    executes(data, "os.system")


def test_computed_name_is_never_safe() -> None:
    joined = (
        stack_global("builtins", "str.join")
        + u("")
        + u("sys")
        + u("tem")
        + b"\x86"
        + b"\x86R"
    )  # str.join('', ('sys', 'tem')) — computed, never evaluated
    body = u("os") + joined + b"\x93" + u(PAYLOAD) + b"\x85R"
    executes(p4(body), "computed at run time")


def test_inst_and_obj_opcodes() -> None:
    executes(f"(S'{PAYLOAD}'\nios\nsystem\n.".encode(), "os.system")
    executes(b"\x80\x02(cos\nsystem\nS'" + PAYLOAD.encode() + b"'\no.", "os.system")


def test_extension_registry_codes() -> None:
    executes(b"\x80\x02\x82\x01" + b"S'x'\n\x85R.", "extension registry")


def test_build_setattr_on_a_module() -> None:
    body = stack_global("os", "path") + b"N}" + u("sep") + u("/") + b"s\x86b"
    findings = analyze_model("m.pkl", p4(body))
    assert any("BUILD writes attributes onto os.path" in " ".join(f.details) for f in findings)


def test_broken_stream_after_the_payload_is_still_reported() -> None:
    data = os_system_p4()[:-1] + b"\xff\xfe garbage that breaks the stream"
    executes(data, "os.system")


def test_payload_in_a_torch_zip() -> None:
    f = executes(torch_zip(os_system_p4()), "os.system", "model.pt")
    assert f.where == ("archive/data.pkl",)


def test_zip_crc_mismatch_and_duplicate_members() -> None:
    good = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, good)
    benign_pkl = zipfile.ZipFile(io.BytesIO(good.getvalue())).read(
        next(
            n
            for n in zipfile.ZipFile(io.BytesIO(good.getvalue())).namelist()
            if n.endswith("data.pkl")
        )
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z, pytest.warns(UserWarning):
        z.writestr("archive/data.pkl", benign_pkl)
        z.writestr("archive/data.pkl", os_system_p4())  # a second copy of the same name
    data = bytearray(buf.getvalue())
    # corrupt the CRC of the second local and central entries
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 16 : cd + 20] = b"\0\0\0\0"
    findings = analyze_model("model.pt", bytes(data))
    details = " ".join(f.sentence for f in findings)
    assert "duplicate zip member" in details
    assert "CRC mismatch" in details
    assert ("critical", "executes-code") in verdicts(findings)


def test_local_and_central_names_disagree() -> None:
    data = bytearray(torch_zip(os_system_p4(), name="archive/data.pkl"))
    local = data.find(b"archive/data.pkl")
    data[local : local + 16] = b"archive/data.PKL"
    findings = analyze_model("model.pt", bytes(data))
    assert any("disagree" in f.sentence for f in findings)
    assert ("critical", "executes-code") in verdicts(findings)


def test_legacy_stream_payload_in_the_magic_number_pickle() -> None:
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf, _use_new_zipfile_serialization=False)
    executes(os_system_p4() + buf.getvalue(), "os.system", "legacy.pt")
    # and in a later one of the five pickles
    legacy = buf.getvalue()
    first = analyze_pickle(legacy, max_streams=1)
    assert first.streams == 1
    executes(
        legacy[: _end_of_first(legacy)] + os_system_p4() + legacy[_end_of_first(legacy) :],
        "os.system",
        "legacy.pt",
    )


def _end_of_first(data: bytes) -> int:
    import pickletools

    for op, _arg, pos in pickletools.genops(data):
        if op.name == "STOP":
            return pos + 1
    raise AssertionError


def test_legacy_tar_checkpoint() -> None:
    data = tar_of({"sys_info": b"\x80\x02}q\x00.", "pickle": os_system_p4()})
    f = executes(data, "os.system", "old.pt")
    assert f.where == ("pickle",)


def test_numpy_object_array_payload() -> None:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header = header.ljust(118) + "\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
    executes(npy + os_system_p4(), "os.system", "arr.npy")


def test_python2_npy_headers_are_read_like_numpy() -> None:
    """Python 2 wrote shapes as longs, (2L, 3L): numpy still reads such a header (and
    a file with the NUMPY magic is never unpickled as a whole)."""
    def npy(header: str, body: bytes) -> bytes:
        header = header.ljust(118) + "\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + body

    longs = "{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 3L), }"
    assert analyze_model("old.npy", npy(longs, bytes(48))) == []
    obj = "{'descr': '|O', 'fortran_order': False, 'shape': (1L,), }"
    executes(npy(obj, os_system_p4()), "os.system", "old.npy")
    (f,) = analyze_model("bad.npy", npy("{'descr': <f8", os_system_p4()))
    assert (f.severity.label, f.verdict) == ("low", "anomaly")
    assert "numpy.load refuses" in f.sentence


def test_python2_names_are_renamed_like_pickle_load() -> None:
    """Protocols 0-2: pickle.load maps __builtin__, copy_reg and friends to their
    Python 3 names (fix_imports) before importing; names are judged after that."""
    py2_range = b"c__builtin__\nxrange\n(I0\nI3\ntR."
    assert analyze_model("py2.pkl", py2_range) == []
    executes(b"c__builtin__\neval\n(S'1'\ntR.", "builtins.eval", "py2.pkl")
    executes(b"\x80\x02c__builtin__\neval\nX\x01\x00\x00\x001\x85R.", "builtins.eval", "p2.pkl")
    # From protocol 3 on nothing is renamed (and the never-allow list knows __builtin__).
    (f,) = analyze_model("p3.pkl", b"\x80\x03c__builtin__\nxrange\nK\x03\x85R.")
    assert "__builtin__.xrange" in f.sentence and "builtins.range" not in f.sentence


def test_decompression_bombs_are_refused_but_compressible_arrays_are_not() -> None:
    import gzip
    import zipfile

    from keyscope.modelfiles.containers import RATIO_FLOOR

    zeros = b"\0" * (RATIO_FLOOR + 8 * 1024**2)
    (f,) = analyze_model("big.pkl.gz", gzip.compress(b"\x80\x04" + zeros, 9))
    assert (f.verdict, f.severity.label) == ("anomaly", "low") and "bomb" in f.sentence
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\x80\x04" + zeros)
    (f,) = analyze_model("bomb.pt", buf.getvalue())
    assert f.verdict == "anomaly" and "bomb" in f.sentence
    # SciPy's test data: a 700 KB array of mostly zeros compresses 234:1. Small and
    # very compressible is ordinary, not a bomb.
    buf = io.BytesIO()
    np.savez_compressed(buf, B=np.zeros((300, 300)))
    assert analyze_model("data.npz", buf.getvalue()) == []


def test_joblib_payload_after_an_inline_array(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "m.joblib"
    joblib.dump({"w": np.arange(100.0)}, path)
    data = path.read_bytes()
    assert data.endswith(b".")
    # a second object after the array: replace the final STOP by a payload call
    evil = data[:-1] + b"0" + call1(stack_global("os", "system"), u(PAYLOAD)) + b"."
    executes(evil, "os.system", "m.joblib")


@pytest.mark.parametrize("wrap", [gzip.compress, bz2.compress])
def test_compressed_pickles(wrap: object) -> None:
    executes(wrap(os_system_p4()), "os.system", "m.pkl.gz")  # type: ignore[operator]


def test_nested_pickle_in_a_bytes_literal() -> None:
    inner = os_system_p4()
    outer = p4(
        call1(stack_global("collections", "OrderedDict"), b")")
        + b"0"
        + b"C"
        + bytes([len(inner)])
        + inner
    )
    f = executes(outer, "os.system")
    assert any("bytes at offset" in w for w in f.where)


def test_cli_models_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.pt"
    torch.save(_state(), good)
    assert main(["models", "-j", "1", str(tmp_path)]) == 0
    (tmp_path / "evil.pt").write_bytes(torch_zip(os_system_p4()))
    assert main(["models", "-j", "1", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "executes-code" in out and "os.system" in out
    assert main(["scan", "-j", "1", "--format", "sarif", str(tmp_path)]) == 1
    assert '"ruleId": "model-executes-code"' in capsys.readouterr().out


# --- robustness --------------------------------------------------------------------
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(data: bytes) -> None:
    analyze_model("x.bin", b"\x80\x04" + data)
    analyze_model("x.bin", data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_pickles_never_raise(data: st.DataObject) -> None:
    base = bytearray(data.draw(st.sampled_from([os_system_p4(), os_system_p0(), _benign()])))
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(base) - 1))
        op = data.draw(st.sampled_from(["flip", "del", "ins"]))
        if op == "flip":
            base[i] = data.draw(st.integers(0, 255))
        elif op == "del":
            del base[i]
        else:
            base.insert(i, data.draw(st.integers(0, 255)))
        if not base:
            break
    analyze_model("m.pkl", bytes(base))


def test_budget_hit_is_inconclusive_not_clean() -> None:
    from keyscope.modelfiles import pickle_vm

    old = pickle_vm.MAX_OPS
    pickle_vm.MAX_OPS = 50
    try:
        data = p4(b"]" + b"K\x01a" * 100)
        (f,) = analyze_model("big.pkl", data)
        assert f.verdict == "inconclusive"
    finally:
        pickle_vm.MAX_OPS = old


def _benign() -> bytes:
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


# --- formats without pickles ----------------------------------------------------------
def _gguf(template: str) -> bytes:
    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    kv = [
        s("general.architecture") + struct.pack("<I", 8) + s("llama"),
        s("general.alignment") + struct.pack("<I", 4) + struct.pack("<I", 32),
        s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + s("a") + s("b"),
        s("tokenizer.chat_template") + struct.pack("<I", 8) + s(template),
    ]
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(kv)


def test_gguf_chat_template_with_python_internals() -> None:
    benign = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{% endfor %}"
    assert analyze_model("m.gguf", _gguf(benign)) == []
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }}{{ cycler.__init__.__globals__.os }}"
    (f,) = analyze_model("m.gguf", _gguf(evil))
    assert (f.severity.label, f.verdict) == ("critical", "executes-code")
    assert "__subclasses__" in f.sentence


def test_keras_lambda_and_foreign_modules() -> None:
    config = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {"class_name": "Dense", "module": "keras.layers", "config": {}},
                {"class_name": "Lambda", "module": "keras.layers", "config": {"function": "…"}},
                {"class_name": "Thing", "module": "evil_pkg.layers", "config": {}},
            ]
        },
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", "{}")
    found = verdicts(analyze_model("m.keras", buf.getvalue()))
    assert found == {("critical", "executes-code"), ("medium", "unknown-import")}


def test_safetensors_header_pointing_outside_the_file() -> None:
    header = b'{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 4096]}}'
    data = struct.pack("<Q", len(header)) + header + b"\0" * 16
    (f,) = analyze_model("m.safetensors", data)
    assert f.verdict == "anomaly" and "outside the file" in f.sentence


def test_base64_nested_pickle_in_a_string() -> None:
    import base64

    inner = base64.b64encode(os_system_p4()).decode()
    outer = p4(call1(stack_global("collections", "OrderedDict"), b")") + b"0" + u(inner))
    executes(outer, "os.system")


def test_user_allowlist_extends_safe_names_but_never_the_never_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    custom = p4(stack_global("my_project.models", "Net") + b")\x81" + b"}b")
    (tmp_path / "net.pkl").write_bytes(custom)
    (tmp_path / "evil.pkl").write_bytes(os_system_p4())
    config = tmp_path / "keyscope.toml"
    config.write_text('[policy]\nmodel-allow = ["my_project.models.Net", "os.system"]\n')
    assert (
        main(["models", "-j", "1", "--config", str(config), "--format", "json", str(tmp_path)]) == 1
    )
    found = json.loads(capsys.readouterr().out)["model_findings"]
    assert [(Path(f["path"]).name, f["verdict"]) for f in found] == [("evil.pkl", "executes-code")]


def test_model_files_over_the_size_limit_are_still_judged(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    big = {"w": torch.zeros(64, 1024)}
    torch.save(big, tmp_path / "benign.pt")
    (tmp_path / "evil.pt").write_bytes(torch_zip(os_system_p4() + b"\0" * 300_000))
    code = main(["models", "-j", "1", "--max-file-size", "100K", "--format", "json",
                 str(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [Path(m["path"]).name for m in doc["model_findings"]] == ["evil.pt"]
    assert {Path(s["path"]).name for s in doc["skipped"]} == {"benign.pt", "evil.pt"}
    # A multi-gigabyte GGUF is the usual case: its chat template is still read, and a
    # tar of pickles is read through the map without copying it.
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    (tmp_path / "llm.gguf").write_bytes(_gguf(evil) + b"\0" * 200_000)

    payload = os_system_p4() + b"\0" * 200_000
    (tmp_path / "bundle.tar").write_bytes(tar_of({"ckpt/data.pkl": payload}))
    main(["models", "-j", "1", "--max-file-size", "100K", "--format", "json", str(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    assert sorted(Path(m["path"]).name for m in doc["model_findings"]) == [
        "bundle.tar", "evil.pt", "llm.gguf"]


def test_headerless_pickles_over_the_size_limit_are_still_judged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A protocol 0 pickle has no magic number: over --max-file-size it is judged
    through the memory map like any checkpoint when it starts with an opcode, whatever
    follows its STOP; big text that merely starts with an opcode byte stays clean."""
    filler = b"S'" + b"a" * 200_000 + b"'\n0"  # a long string, popped
    (tmp_path / "evil.pkl").write_bytes(filler + os_system_p0())
    (tmp_path / "trailing.bin").write_bytes(filler + os_system_p0() + b"\0" * 1000)
    (tmp_path / "notes.txt").write_bytes(b"Some log line\n" * 20_000)
    code = main(["models", "-j", "1", "--max-file-size", "100K", "--format", "json",
                 str(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert sorted((Path(m["path"]).name, m["verdict"]) for m in doc["model_findings"]) == [
        ("evil.pkl", "executes-code"), ("trailing.bin", "executes-code")]
    assert {Path(s["path"]).name for s in doc["skipped"]} == {
        "evil.pkl", "trailing.bin", "notes.txt"}
