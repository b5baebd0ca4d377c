"""What a pickle may reference, judged by name alone (names are compared, never imported).

Four tiers, checked in this order:

1. ``NEVER``: names that run code, touch files, processes or the network, load more
   pickles or resolve further names at run time. No configuration can allow them.
2. ``SAFE``: an allowlist that names every callable one by one, modelled on PyTorch's
   ``weights_only`` table (``torch/_weights_only_unpickler.py``) and extended for NumPy,
   pure builtins and common checkpoint metadata.
3. ``ESTIMATOR`` (shown as info): library *classes* of well-known ML packages (a whole
   ``nn.Module``, a scikit-learn estimator), and the few library *functions* those
   libraries' own ``__reduce__`` methods emit, each named in ``LIBRARY_FUNCTIONS``.
   A function is never trusted because its package is: ``Class.method``, a lowercase
   function or anything else reached through a library namespace is ``UNKNOWN``.
4. ``UNKNOWN`` (medium): everything else.

How this differs from the other allowlists and blocklists, and why:

* ``torch.load(weights_only=True)`` allows only tensor rebuilding plus ``OrderedDict``,
  ``Counter``, ``set``, ``complex``, ``bytearray`` and ``_codecs.encode``; it refuses
  every other name. ``SAFE`` adds pure data constructors that cannot reach code or the
  system (the pure builtins, exceptions, ``dict``, ``slice``, ``range``, ``datetime``,
  ``Decimal``, ``UUID``, ``pathlib`` paths, ``argparse.Namespace``,
  ``types.SimpleNamespace``, ``re._compile``, ``__future__`` feature flags), NumPy's
  array and RNG reconstructors (weights_only leaves them to ``add_safe_globals``), the
  TorchScript list builders, and ``copyreg._reconstructor``/``__newobj__``, whose class
  arguments are names judged here too. Library classes are not refused but reported as
  info (``ESTIMATOR``): loading a scikit-learn model means trusting scikit-learn, and
  refusing it would flag every such file. Methods of SAFE classes are not SAFE
  (``pathlib.Path.write_text`` is never-allowed).
* picklescan and ModelScan list dangerous globals and treat the rest as innocuous or
  "suspicious"; every published bypass of them (the ``torch.utils.bottleneck``,
  ``ConfigModule.load_config``, ``pip.main``, ``asyncio.unix_events``,
  ``_interpreters`` … advisories) was a name missing from the list. Here a name on no
  list is at least ``UNKNOWN`` (medium), and the never list is checked on every part of
  a dotted name. Where they list single names, whole modules are never-allowed here
  (``logging`` for ``FileHandler``, ``functools`` for ``partial``, ``code``, ``doctest``,
  ``types``, ``cloudpickle``, ``requests``, ``numpy.testing``, ``torch.serialization``
  except ``_get_layout``): nothing else in them is checkpoint data. picklescan's
  ``uuid: *`` is narrowed to the command-running helpers: ``UUID`` is a value type that
  checkpoints hold.
* fickling blocks whole modules too, including ``joblib``, ``uuid``, ``zipfile``,
  ``difflib`` and (since its GHSA-6ggj-6f2q-f7mx fix) every private ``_`` stdlib module
  but ``_codecs`` and ``__future__``. ``joblib`` is narrowed here to its loaders,
  dumpers, memory and process pools (its array wrappers are how joblib saves data), and
  ``difflib`` or other private modules are ``UNKNOWN`` unless they run code
  (``_posixsubprocess``, ``_interpreters``, ``_pyrepl``, ``_osx_support``, ``_io`` …,
  which are never-allowed). fickling's builtins allowlist includes ``map``, ``filter``,
  ``iter`` and ``next``: they call whatever they are given, so here they are
  never-allowed like ``functools.partial``; ``hasattr``, ``memoryview``, ``type`` and
  ``print`` are never-allowed in both.
* ``torch.storage._load_from_bytes`` (every plain ``pickle.dumps`` of a tensor uses it)
  runs ``torch.load(weights_only=False)`` on its argument. ModelAudit rates it critical
  and picklescan flags pickles in pickles by name; here the argument bytes are scanned
  as a nested stream instead (``pickle_vm.note_data``), so the benign case stays quiet
  and the malicious one is reported by what its inner pickle does. A call whose
  argument is not literal bytes (``bytes([...])``, any computed value) is never-allowed:
  the checkpoint it loads is nowhere in the file (``pickle_vm.NESTED_LOADERS``).
"""

from __future__ import annotations

import builtins
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
# Builtins that only build values or compute on them: no code runs, nothing outside the
# process is touched, and none of them calls an object it is given.
PURE_BUILTINS = (
    "abs all any ascii bin bool bytearray bytes callable chr complex dict divmod enumerate "
    "float format frozenset hash hex id int isinstance issubclass len list max min object "
    "oct ord pow range repr reversed round set slice sorted str sum tuple zip "
    "Ellipsis NotImplemented None True False"
).split()
# Exception classes: constructing one stores its arguments, nothing else.
_EXCEPTIONS = sorted(
    n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)
)
# Builtins that run code, touch the system, reach other objects' attributes or
# namespaces, or call what they are given (a call the emulator would not see).
NEVER_BUILTINS = (
    "eval exec compile open __import__ getattr setattr delattr hasattr breakpoint input help "
    "exit quit copyright credits license globals locals vars dir memoryview type super "
    "classmethod staticmethod property map filter iter next aiter anext __build_class__ "
    "__loader__ __spec__ apply execfile file reload raw_input intern print"
).split()
_FUTURE = (
    "nested_scopes generators division absolute_import with_statement print_function "
    "unicode_literals barry_as_FLUFL generator_stop annotations"
).split()
_SCIPY_SPARSE = [
    f"scipy.sparse.{mod}{kind}.{kind}_{form}"
    for kind in ("csr", "csc", "coo", "lil", "dok", "bsr", "dia")
    for mod in ("_", "")
    for form in ("matrix", "array")
]

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
        "types.SimpleNamespace",
        "re._compile",
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
    + [f"builtins.{n}" for n in PURE_BUILTINS + _EXCEPTIONS]
    + [f"__future__.{n}" for n in [*_FUTURE, "_Feature"]]
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

# Library functions (and lowercase library classes) that the libraries' own pickles
# reference, named one by one: each rebuilds a value from its arguments. Shown as info
# like the library classes.
LIBRARY_FUNCTIONS: frozenset[str] = frozenset(
    [
        # torch: nn.Module pickles hold activation functions; plain pickle.dumps of a
        # tensor goes through _load_from_bytes, whose bytes are scanned as a nested
        # checkpoint (see the module docstring).
        "torch.storage._load_from_bytes",
        "torch._C._nn.gelu",
        "torch._C._nn.softplus",
        "torch._C._nn.silu",
        "torch._C._nn.hardtanh",
        "torch._C._nn.elu",
        "torch._C._nn.leaky_relu",
    ]
    + [
        f"torch.nn.functional.{n}"
        for n in (
            "relu relu6 gelu silu mish tanh sigmoid hardswish hardsigmoid hardtanh elu selu "
            "celu leaky_relu softplus softsign softmax log_softmax glu logsigmoid tanhshrink "
            "layer_norm dropout"
        ).split()
    ]
    + [
        # NumPy: masked arrays and the bit generators' seed sequences
        "numpy.ma.core._mareconstruct",
        # NumPy's lowercase classes (found in joblib's and NumPy's own test pickles): a
        # matrix or record array is an ndarray subclass rebuilt like one
        "numpy.matrix",
        "numpy.matrixlib.defmatrix.matrix",
        "numpy.recarray",
        "numpy.rec.recarray",
        "numpy.record",
        "numpy.core.records.recarray",
        "numpy.core.records.record",
        "numpy._core.records.recarray",
        "numpy._core.records.record",
        # ndarray.__new__(subtype, shape, dtype): how NumPy 1.0-era pickles rebuild an
        # array (numpy.core._internal keeps it for them; the subtype is judged on its own)
        "numpy.core._internal._reconstruct",
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
        "numpy.random.bit_generator.__pyx_unpickle_SeedlessSeedSequence",
        # scikit-learn's Cython trees and distance metrics: newObj(cls) is cls.__new__(cls)
        "sklearn.neighbors._kd_tree.newObj",
        "sklearn.neighbors._ball_tree.newObj",
        "sklearn.metrics._dist_metrics.newObj",
        # pandas' reconstructors for frames, blocks, indexes and timestamps
        "pandas._libs.arrays.__pyx_unpickle_NDArrayBacked",
        "pandas._libs.internals._unpickle_block",
        "pandas._libs.tslibs.timedeltas._timedelta_unpickle",
        "pandas._libs.tslibs.timestamps._unpickle_timestamp",
        "pandas._libs.tslibs.nattype.__nat_unpickle",
        "pandas.core.indexes.base._new_Index",
        "pandas.core.internals.blocks.new_block",
    ]
    + _SCIPY_SPARSE
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

# Module roots whose purpose is running code, processes, files, the network, the import
# system or the interpreter itself. Every name under them is never allowed, except the
# exact SAFE names above (builtins.len, types.SimpleNamespace, pathlib.Path …): their
# methods (``pathlib.Path.write_text``) stay never-allowed.
NEVER_ROOTS = frozenset(
    """os posix nt subprocess _posixsubprocess commands pty sys importlib imp _imp
    _frozen_importlib _frozen_importlib_external zipimport pkgutil site sysconfig runpy code
    codeop compileall py_compile timeit profile cProfile _lsprof trace tracemalloc pdb bdb
    doctest unittest test idlelib lib2to3 ensurepip pip venv distutils setuptools _osx_support
    _aix_support _pyrepl rlcompleter readline mailcap pipes cgi cgitb asyncio concurrent
    multiprocessing _multiprocessing _posixshmem threading _thread signal _signal atexit
    faulthandler ctypes _ctypes marshal types pickle _pickle cPickle pickletools copy_reg
    dill cloudpickle shelve dbm sqlite3 _sqlite3 shutil tempfile filecmp fileinput glob
    linecache tarfile zipfile mmap io _io fcntl termios tty resource pwd grp spwd syslog
    select selectors socket _socket ssl _ssl socketserver urllib urllib2 http httplib
    requests aiohttp smtplib imaplib poplib nntplib telnetlib ftplib xmlrpc webbrowser
    _interpreters _xxsubinterpreters _xxinterpchannels _interpchannels _interpqueues
    _xxinterpqueues tkinter _tkinter turtle platform posixpath ntpath logging operator
    _operator functools inspect gc weakref pydoc jinja2 yaml fickling picklescan modelscan
    modelaudit builtins __builtin__ __builtins__ _sitebuiltins genericpath pathlib pstats
    modulefinder pyclbr tabnanny zipapp wsgiref getpass curses mailbox wave aifc sunau
    cffi _winapi msvcrt winreg _winreg""".split()
)
# Dangerous corners of libraries whose other classes are ordinary checkpoint content.
NEVER_PREFIXES = (
    "torch.utils.collect_env",
    "torch.utils.bottleneck",  # __main__.run_cprofile / run_autograd_prof exec a string
    "torch.utils._config_module",  # ConfigModule.load_config is pickle.loads
    "torch.utils.cpp_extension",
    "torch.utils.data.datapipes",
    "torch.utils.tensorboard",
    "torch.utils.benchmark",  # Timer compiles and runs its stmt
    "torch.utils.model_zoo",
    "torch._inductor",
    "torch._dynamo",
    "torch._functorch",
    "torch._export",
    "torch.export",
    "torch.compiler",
    "torch.jit",
    "torch._C._jit",
    "torch._C._distributed",
    "torch._C.CompilationUnit",
    "torch._C.import_ir_module",
    "torch.serialization",
    "torch.hub",
    "torch.package",
    "torch.distributed",
    "torch.multiprocessing",
    "torch.testing",
    "torch.onnx",
    "torch.ops",
    "torch._ops",
    "torch.library",
    "torch._library",
    "torch.classes",
    "torch._classes",
    "torch.fx.experimental",
    "torch.fx.graph_module",  # reduce_graph_module execs the pickled forward()
    "numpy.f2py",
    "numpy.testing",
    "numpy.distutils",
    "numpy.lib.npyio",
    "numpy.lib._npyio_impl",
    "numpy.lib.format",
    "numpy.lib._datasource",
    "numpy.DataSource",
    "numpy.ctypeslib",
    "numpy.memmap",
    "numpy.core.memmap",
    "numpy._core.memmap",
    "numpy.load",
    "numpy.fromfile",
    "numpy.genfromtxt",
    "numpy.fromregex",
    "numpy.save",
    "numpy.tofile",
    "joblib.numpy_pickle.load",
    "joblib.numpy_pickle.dump",
    "joblib.load",
    "joblib.dump",
    "joblib.parallel",
    "joblib.Parallel",
    "joblib.memory",
    "joblib.Memory",
    "joblib.externals",
    "joblib.pool",
    "joblib.executor",
    "joblib._store_backends",
    "pandas.io",
    "pandas.read_",
    "pandas.eval",
    "pandas.core.computation",
    "pandas.HDFStore",
    "pandas.ExcelFile",
    "pandas.ExcelWriter",
    "pandas.to_pickle",
    "scipy.io",
    "scipy.LowLevelCallable",  # calls a ctypes function pointer
    "scipy._lib._ccallback",
    "sklearn.utils._testing",
    "sklearn.datasets",
    "transformers.dynamic_module_utils",
    "transformers.pipeline",
    "transformers.utils.hub",
    "xgboost.collective",
    "xgboost.tracker",
)
# Exact names that stay never-allowed even when a user allowlists them.
NEVER_NAMES = frozenset(
    [f"builtins.{n}" for n in NEVER_BUILTINS]
    + [f"__builtin__.{n}" for n in NEVER_BUILTINS]
    + """torch.load torch.save numpy.loadtxt joblib.load pandas.read_pickle pandas.eval
    uuid._get_command_stdout uuid._popen uuid._find_mac uuid._ifconfig_getnode
    uuid._ip_getnode uuid._arp_getnode uuid._lanscan_getnode uuid._netstat_getnode
    uuid._netbios_getnode uuid.getnode uuid._unix_getnode uuid._load_system_functions
    copyreg.add_extension copyreg.remove_extension copyreg.clear_extension_cache
    copyreg.pickle copyreg.constructor codecs.open codecs.EncodedFile gzip.open
    gzip.GzipFile bz2.open bz2.BZ2File lzma.open lzma.LZMAFile mimetypes.init
    mimetypes.read_mime_types netrc.netrc xml.dom.minidom.parse xml.sax.parse
    xml.etree.ElementTree.parse xml.etree.ElementTree.iterparse collections.namedtuple
    dataclasses.make_dataclass""".split()
)
# Method names that fetch and run code (trust_remote_code), load pickles or write files,
# whatever class they are reached through (``numpy.ndarray.tofile``, a SAFE
# ``pathlib.Path``'s ``write_text``).
NEVER_METHODS = frozenset(
    """from_pretrained from_single_file load_from_checkpoint load_config tofile dump
    to_pickle write_text write_bytes unlink rmdir symlink_to hardlink_to""".split()
)
DUNDER_GADGETS = (
    "__builtins__",
    "__globals__",
    "__import__",
    "__subclasses__",
    "__code__",
    "__reduce__",
    "__reduce_ex__",
    "__getattribute__",
    "__getattr__",
    "__class__",
    "__dict__",
    "__loader__",
    "__spec__",
    "__init__",
    "__call__",
    "__self__",
    "__func__",
    "__closure__",
    "__mro__",
    "__base__",
    "__bases__",
)


class Tier(enum.IntEnum):
    SAFE = 0
    ESTIMATOR = 1  # well-known library class (or a named reconstructor): info
    UNKNOWN = 2  # not on any list: a custom class, or a gadget nobody listed yet
    NEVER = 3  # runs code, touches files/processes/network, or loads more pickles


def _is_class_name(parts: list[str]) -> bool:
    """``Class`` or ``Outer.Inner`` by Python's naming convention; ``Class.method`` is not."""
    return all(p.lstrip("_")[:1].isupper() for p in parts)


def _cython_unpickler(name: str) -> bool:
    """Cython's generated ``__pyx_unpickle_<Class>``: ``__new__`` then ``__setstate__``
    of the class named in the function, nothing else."""
    return name.startswith("__pyx_unpickle_") and _is_class_name([name[15:]])


def classify(module: str, name: str, extra_safe: frozenset[str] = frozenset()) -> Tier:
    """Judge ``module.name`` (dotted names walk attributes, as pickle protocol 4 does)."""
    full = f"{module}.{name}"
    parts = name.split(".")
    mod_parts = module.split(".")
    if any(p in DUNDER_GADGETS for p in parts) or any(
        p.startswith("__") and p.endswith("__") for p in parts[1:]
    ):
        return Tier.NEVER
    # A package's __main__ is its command line: importing it may run it.
    if any(p.startswith("__") and p.endswith("__") for p in mod_parts[1:]):
        return Tier.NEVER
    if full in NEVER_NAMES or any(p in NEVER_METHODS for p in parts):
        return Tier.NEVER
    if full in SAFE:
        return Tier.SAFE
    if (
        mod_parts[0] in NEVER_ROOTS
        or full.startswith(NEVER_PREFIXES)
        # A dotted name can walk from a harmless module into a dangerous one
        # (``logging`` + ``os.system``, ``numpy.core._internal`` + ``sys.modules``).
        or any(p in NEVER_ROOTS for p in parts[:-1])
        or (len(parts) > 1 and parts[0] in NEVER_ROOTS)
    ):
        return Tier.NEVER
    if full in LIBRARY_FUNCTIONS:
        return Tier.ESTIMATOR
    if full in extra_safe:  # the user's allowlist: consulted only after the never list
        return Tier.SAFE
    if mod_parts[0] in ESTIMATOR_ROOTS and (_is_class_name(parts) or _cython_unpickler(name)):
        return Tier.ESTIMATOR
    return Tier.UNKNOWN
