"""What a pickle may reference: an allowlist modelled on PyTorch's ``weights_only``
table (extended for NumPy and common checkpoint metadata), a lower tier of well-known
estimator classes, and a never-allow list that no configuration can extend.

Names are only compared, never imported.
"""

from __future__ import annotations

import enum

_TORCH_DTYPES = (
    "float32 float float64 double float16 half bfloat16 complex32 complex64 cfloat complex128 "
    "cdouble uint8 uint16 uint32 uint64 int8 int16 short int32 int int64 long bool quint8 qint8 "
    "qint32 quint4x2 quint2x4 float8_e4m3fn float8_e5m2 float8_e4m3fnuz float8_e5m2fnuz bits8 "
    "bits16 bits1x8 bits2x4 bits4x2 per_tensor_affine per_channel_affine "
    "per_tensor_symmetric per_channel_symmetric per_channel_affine_float_qparams"
).split()
_TORCH_STORAGES = (
    "FloatStorage DoubleStorage HalfStorage LongStorage IntStorage ShortStorage CharStorage "
    "ByteStorage BoolStorage BFloat16Storage ComplexFloatStorage ComplexDoubleStorage "
    "QInt8Storage QUInt8Storage QInt32Storage QUInt4x2Storage QUInt2x4Storage UntypedStorage "
    "TypedStorage"
).split()
_TORCH_REBUILD = (
    "_rebuild_tensor _rebuild_tensor_v2 _rebuild_tensor_v3 _rebuild_parameter "
    "_rebuild_parameter_with_state _rebuild_qtensor _rebuild_sparse_tensor "
    "_rebuild_nested_tensor _rebuild_device_tensor_from_numpy _rebuild_meta_tensor_no_storage "
    "_rebuild_wrapper_subclass _rebuild_device_tensor_from_cpu_tensor"
).split()

SAFE: frozenset[str] = frozenset(
    [
        "collections.OrderedDict",
        "collections.Counter",
        "collections.defaultdict",
        "collections.deque",
        "torch.Size",
        "torch.Tensor",
        "torch.device",
        "torch.dtype",
        "torch.nn.parameter.Parameter",
        "torch._tensor._rebuild_from_type_v2",
        "torch.storage.UntypedStorage",
        "torch.storage.TypedStorage",
        "torch.serialization._get_layout",
        "torch.sparse_coo",
        "torch.sparse_csr",
        "torch.strided",
        "torch.channels_last",
        "torch.contiguous_format",
        "torch.preserve_format",
        "_codecs.encode",
        # TorchScript archives' list and type-tag builders: each returns its argument
        # (torch/jit/_pickle.py); the rest of torch.jit stays never-allowed.
        "torch.jit._pickle.build_intlist",
        "torch.jit._pickle.build_tensorlist",
        "torch.jit._pickle.build_doublelist",
        "torch.jit._pickle.build_boollist",
        "torch.jit._pickle.build_tensor_from_id",
        "torch.jit._pickle.restore_type_tag",
        "builtins.set",
        "builtins.frozenset",
        "builtins.complex",
        "builtins.bytearray",
        "builtins.slice",
        "builtins.range",
        "builtins.object",
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.int",
        "builtins.float",
        "builtins.str",
        "builtins.bytes",
        "builtins.bool",
        "copyreg._reconstructor",
        "copyreg.__newobj__",
        "copy_reg._reconstructor",
        "__builtin__.set",
        "__builtin__.object",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        "numpy.random._pickle.__randomstate_ctor",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random.__RandomState_ctor",
        "numpy.core.numeric._frombuffer",
        "numpy._core.numeric._frombuffer",
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "joblib.numpy_pickle.NDArrayWrapper",
        "argparse.Namespace",
        "pathlib.PosixPath",
        "pathlib.WindowsPath",
        "pathlib.PurePosixPath",
        "pathlib.PureWindowsPath",
        "pathlib.Path",
        "datetime.datetime",
        "datetime.date",
        "datetime.time",
        "datetime.timedelta",
        "datetime.timezone",
        "decimal.Decimal",
        "fractions.Fraction",
        "uuid.UUID",
        "random.Random",
    ]
    + [f"torch.{n}" for n in _TORCH_DTYPES + _TORCH_STORAGES]
    + [f"torch._utils.{n}" for n in _TORCH_REBUILD]
    + [
        f"numpy.{t}"
        for t in (
            "float64 float32 float16 int64 int32 int16 int8 uint8 uint16 "
            "uint32 uint64 bool_ complex64 complex128"
        ).split()
    ]
)

ESTIMATOR_ROOTS = frozenset(
    {
        "sklearn",
        "xgboost",
        "lightgbm",
        "catboost",
        "scipy",
        "pandas",
        "tokenizers",
        "transformers",
        "sentencepiece",
        "torch",
        "numpy",
        "joblib",
    }
)

# Module roots and exact names that run code, touch files, processes or the network,
# load other files, or resolve names at run time. Never allowed.
NEVER_ROOTS = frozenset(
    """os posix nt subprocess sys importlib runpy code codeop compileall py_compile timeit
    profile cProfile trace pdb bdb doctest idlelib lib2to3 ensurepip pip venv imaplib
    _osx_support _aix_support _pyrepl mailcap pty asyncio ctypes _ctypes marshal types pickle
    _pickle cPickle dill cloudpickle shutil tempfile io _io socket urllib urllib2 http httplib
    requests aiohttp smtplib socketserver ssl webbrowser multiprocessing signal pkgutil pydoc
    fickling picklescan modelscan modelaudit shelve dbm sqlite3 zipimport threading _thread
    _posixsubprocess posixpath ntpath glob platform telnetlib ftplib poplib nntplib xmlrpc
    logging operator _operator functools inspect gc weakref site sysconfig distutils setuptools
    jinja2 yaml builtins __builtin__""".split()
)
# Dangerous corners of libraries whose other classes are ordinary checkpoint content.
NEVER_PREFIXES = (
    "torch.utils.collect_env",
    "torch._inductor",
    "torch.jit",
    "torch.serialization",
    "torch.hub",
    "torch.package",
    "torch.utils.cpp_extension",
    "torch._dynamo",
    "torch.utils.data.datapipes",
    "torch.fx.experimental",
    "torch._C._jit",
    "numpy.f2py",
    "numpy.testing",
    "numpy.distutils",
    "numpy.lib.npyio",
    "numpy.lib.format",
    "numpy.ctypeslib",
    "joblib.numpy_pickle.load",
    "joblib.load",
    "joblib.parallel",
    "pandas.io",
    "pandas.read_",
    "scipy.io",
    "sklearn.utils._testing",
)
# Within otherwise "never" roots, the allowlisted names above are still safe (torch,
# numpy, builtins.set …): the allowlist is consulted first. These are never safe even if
# a user allowlists them.
NEVER_NAMES = frozenset(
    """builtins.eval builtins.exec builtins.compile builtins.open builtins.__import__
    builtins.getattr builtins.setattr builtins.delattr builtins.globals builtins.locals
    builtins.vars builtins.input builtins.breakpoint builtins.apply __builtin__.eval
    __builtin__.execfile __builtin__.getattr __builtin__.__import__ torch.load
    torch.serialization.load torch.jit.load torch.hub.load numpy.load numpy.loadtxt
    joblib.load pandas.read_pickle pandas.eval uuid._get_command_stdout""".split()
)
DUNDER_GADGETS = (
    "__builtins__",
    "__globals__",
    "__import__",
    "__subclasses__",
    "__code__",
    "__reduce__",
    "__getattribute__",
    "__class__",
    "__dict__",
    "__loader__",
    "__spec__",
    "__init__",
)


class Tier(enum.IntEnum):
    SAFE = 0
    ESTIMATOR = 1  # well-known library class: loading trusts that library
    UNKNOWN = 2  # not on any list: a custom class, or a gadget nobody listed yet
    NEVER = 3  # runs code, touches files/processes/network, or loads more pickles


def classify(module: str, name: str, extra_safe: frozenset[str] = frozenset()) -> Tier:
    """Judge ``module.name`` (dotted names walk attributes, as pickle protocol 4 does)."""
    full = f"{module}.{name}"
    parts = name.split(".")
    if any(p in DUNDER_GADGETS for p in parts) or any(
        p.startswith("__") and p.endswith("__") and p not in ("__randomstate_ctor",)
        for p in parts[1:]
    ):
        return Tier.NEVER
    if full in NEVER_NAMES:
        return Tier.NEVER
    if full in SAFE:
        return Tier.SAFE
    root = module.split(".")[0]
    if root in NEVER_ROOTS or full.startswith(NEVER_PREFIXES):
        return Tier.NEVER
    # A dotted name can walk from a harmless module into a dangerous one
    # (``logging`` + ``os.system``): judge what it ends at too.
    if len(parts) > 1 and parts[0] in NEVER_ROOTS:
        return Tier.NEVER
    if full in extra_safe:  # the user's allowlist: consulted only after the never list
        return Tier.SAFE
    if root in ESTIMATOR_ROOTS:
        return Tier.ESTIMATOR
    return Tier.UNKNOWN
