"""Graph model formats, read as data: ONNX, TensorFlow SavedModel and TFLite.

None of them holds Python code, but loading or running them can still reach outside
the model. An ONNX tensor may name its external data file with an absolute or
``..`` path, so loading the model reads any file the user can read; ONNX nodes from
non-standard domains need a native custom-op library. TensorFlow graphs are
programs: ops such as ``WriteFile``, ``ReadFile``, ``EagerPyFunc`` or the tf.data
service ops touch files, call back into Python or open network connections when the
model runs, and TFLite models reach the same ops through the Flex delegate.

Everything is parsed with bounds-checked readers (:mod:`protowire` for protobuf, a
small FlatBuffers/FlexBuffers reader below) under a field budget; malformed input
ends in an "inconclusive" issue, never in an exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from keyscope.modelfiles import protowire as pw
from keyscope.modelfiles.structured import StructuredIssue

MAX_FIELDS = 5_000_000  # protobuf fields read per file
MAX_GRAPH_DEPTH = 32  # nested ONNX subgraphs (If/Loop/Scan bodies)
MAX_PER_KIND = 20  # issues of one kind listed one by one before they are summed up
MAX_TFLITE_OPERATORS = 200_000  # operators and operator codes read per TFLite file
MAX_NAME = 1024

# --- sniffing ---------------------------------------------------------------------

_ONNX_MODEL_FIELDS = {
    1: pw.VARINT,  # ir_version
    2: pw.LEN,  # producer_name
    3: pw.LEN,  # producer_version
    4: pw.LEN,  # domain
    5: pw.VARINT,  # model_version
    6: pw.LEN,  # doc_string
    7: pw.LEN,  # graph
    8: pw.LEN,  # opset_import
    14: pw.LEN,  # metadata_props
    20: pw.LEN,  # training_info
    25: pw.LEN,  # functions
    26: pw.LEN,  # configuration
}
_SAVED_MODEL_FIELDS = {1: pw.VARINT, 2: pw.LEN}  # saved_model_schema_version, meta_graphs


def is_onnx(data: bytes | memoryview, partial: bool = False) -> bool:
    """An ONNX ``ModelProto``: it starts with ``ir_version`` (field 1) and is exactly
    one message of ModelProto's fields, one of which is the graph (field 7). Only the
    top level is walked, so this is cheap even for large files. ``partial``: ``data``
    is the head of a larger file."""
    if bytes(data[:1]) != b"\x08":
        return False
    buf = pw.view(data)
    try:
        ir_version, _ = pw.read_varint(buf, 1, min(len(buf), 11))
    except pw.WireError:
        return False
    if not 1 <= ir_version <= 64:
        return False
    counts = pw.top_level(buf, _ONNX_MODEL_FIELDS, 100_000, partial)
    return counts is not None and counts.get(1) == 1 and counts.get(7) == 1


def is_saved_model(data: bytes | memoryview, partial: bool = False) -> bool:
    """A TensorFlow ``saved_model.pb``: schema version 1 (field 1), then only meta
    graphs (field 2), the first of which opens with a MetaInfoDef or a GraphDef.
    ONNX models also open with field 1 but always carry fields SavedModel lacks.
    ``partial``: ``data`` is the head of a larger file."""
    if bytes(data[:3]) != b"\x08\x01\x12":
        return False
    buf = pw.view(data)
    counts = pw.top_level(buf, _SAVED_MODEL_FIELDS, 4096, partial)
    if counts is None or counts.get(1) != 1 or not counts.get(2):
        return False
    # the first meta graph starts right after 08 01 12 <length>
    try:
        length, start = pw.read_varint(buf, 3, len(buf))
        key, _ = pw.read_varint(buf, start, min(len(buf), start + length))
    except pw.WireError:
        return False
    return key in (0x0A, 0x12)  # field 1 or 2, length-delimited


def is_tflite(data: bytes | memoryview, partial: bool = False) -> bool:
    """A TFLite FlatBuffer: file identifier ``TFL3`` after the root offset."""
    if bytes(data[4:8]) != b"TFL3" or len(data) < 12:
        return False
    root = int.from_bytes(bytes(data[0:4]), "little")
    return root >= 8 and (partial or root <= len(data) - 4)


# --- shared helpers ---------------------------------------------------------------


def _unsafe_path(path: bytes) -> str | None:
    """Why a relative file reference escapes its directory, or None when it does not."""
    if b"\0" in path:
        return "contains a NUL byte (loaders written in C may cut the name there)"
    text = path.decode("utf-8", "replace")
    if text.startswith(("\\\\", "//")):
        return "is a UNC (network) or absolute path"
    if text.startswith(("/", "\\")):
        return "is an absolute path"
    if re.match(r"[A-Za-z]:", text):
        return "is a Windows drive path"
    if ".." in re.split(r"[/\\]", text):
        return "climbs out of the model's directory with '..'"
    return None


def _show(raw: bytes | str, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _unreadable(fmt: str, exc: Exception) -> StructuredIssue:
    what = (
        "is too large to read to its end" if isinstance(exc, pw.BudgetExceeded) else "is malformed"
    )
    return StructuredIssue(
        (),
        "low",
        "inconclusive",
        f"the {fmt} file {what} ({exc}); what was read before that is reported, "
        "the rest is not proven safe",
    )


class _Tally:
    """Issues in file order, with at most ``MAX_PER_KIND`` listed for each kind and
    the rest counted into one closing issue per kind."""

    def __init__(self) -> None:
        self.issues: list[StructuredIssue] = []
        self._seen: dict[str, int] = {}
        self._last: dict[str, StructuredIssue] = {}

    def add(self, kind: str, issue: StructuredIssue) -> None:
        n = self._seen.get(kind, 0) + 1
        self._seen[kind] = n
        if n <= MAX_PER_KIND:
            self.issues.append(issue)
        self._last[kind] = issue

    def close(self) -> list[StructuredIssue]:
        for kind, n in self._seen.items():
            if n > MAX_PER_KIND:
                last = self._last[kind]
                self.issues.append(
                    StructuredIssue(
                        (),
                        last.severity,
                        last.verdict,
                        f"{n - MAX_PER_KIND} more places like the above ({kind}) are not listed",
                    )
                )
        return self.issues


# --- ONNX -------------------------------------------------------------------------

# Operator-set domains defined by the ONNX specification itself.
ONNX_STANDARD_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training"}
)
# onnxruntime's own contrib kernels: not portable ONNX, but compiled into onnxruntime,
# so nothing beyond the runtime is loaded. Reported for information only (optimized
# transformer exports are full of them).
ONNX_RUNTIME_DOMAINS = frozenset(
    {
        "com.microsoft",
        "com.microsoft.nchwc",
        "com.microsoft.experimental",
        "com.ms.internal.nhwc",
        "com.microsoft.dml",
    }
)
# Well-known extension libraries: still native code the application must register.
ONNX_KNOWN_EXTENSION_DOMAINS = frozenset({"ai.onnx.contrib", "org.pytorch.aten"})
ONNX_CVES = "CVE-2022-25882, CVE-2024-27318, CVE-2026-27489"


class _OnnxReader:
    def __init__(self) -> None:
        self.budget = pw.Budget(MAX_FIELDS)
        self.tally = _Tally()
        self.local_functions: set[tuple[str, str]] = set()
        # (domain, op) -> (how many nodes, where the first one is)
        self.custom: dict[tuple[str, str], tuple[int, tuple[str, ...]]] = {}

    def fields(self, buf: memoryview) -> Iterator[tuple[int, int, pw.Value]]:
        return pw.fields(buf, self.budget)

    def model(self, buf: memoryview) -> None:
        graphs: list[tuple[memoryview, tuple[str, ...]]] = []
        functions: list[memoryview] = []
        training = 0
        for number, wire, value in self.fields(buf):
            if wire != pw.LEN:
                continue
            msg = pw.as_message(value)
            if number == 7:
                graphs.append((msg, ("graph",)))
            elif number == 25:
                functions.append(msg)
            elif number == 20:
                for n2, w2, v2 in self.fields(msg):
                    if w2 == pw.LEN and n2 in (1, 2):
                        part = "initialization" if n2 == 1 else "algorithm"
                        graphs.append((pw.as_message(v2), (f"training_info {training}", part)))
                training += 1
        heads = [self.function_head(f) for f in functions]
        self.local_functions = {(domain, name) for name, domain, _nodes, _attrs in heads}
        for graph, where in graphs:
            self.drain([(graph, where, 0)])
        for name, domain, nodes, attrs in heads:
            where = (f"function {domain + '.' if domain else ''}{name}",)
            stack: list[tuple[memoryview, tuple[str, ...], int]] = []
            for a in attrs:
                self.attribute(a, where, 0, stack)
            for i, node in enumerate(nodes):
                self.node(node, i, where, 0, stack)
            self.drain(stack)

    def function_head(self, buf: memoryview) -> tuple[str, str, list[memoryview], list[memoryview]]:
        name = domain = ""
        nodes: list[memoryview] = []
        attrs: list[memoryview] = []
        for number, wire, value in self.fields(buf):
            if wire != pw.LEN:
                continue
            if number == 1:
                name = pw.as_text(value, MAX_NAME)
            elif number == 10:
                domain = pw.as_text(value, MAX_NAME)
            elif number == 7:
                nodes.append(pw.as_message(value))
            elif number == 11:
                attrs.append(pw.as_message(value))
        return name, domain, nodes, attrs

    def drain(self, stack: list[tuple[memoryview, tuple[str, ...], int]]) -> None:
        """Walk graphs (and the subgraphs their nodes hold) without recursion."""
        while stack:
            graph, where, depth = stack.pop()
            index = 0
            for number, wire, value in self.fields(graph):
                if wire != pw.LEN:
                    continue
                msg = pw.as_message(value)
                if number == 1:
                    self.node(msg, index, where, depth, stack)
                    index += 1
                elif number == 5:
                    self.tensor(msg, where, "initializer")
                elif number == 15:
                    self.sparse(msg, where, "sparse initializer")

    def node(
        self,
        buf: memoryview,
        index: int,
        where: tuple[str, ...],
        depth: int,
        stack: list[tuple[memoryview, tuple[str, ...], int]],
    ) -> None:
        name = op = domain = ""
        attrs: list[memoryview] = []
        for number, wire, value in self.fields(buf):
            if wire != pw.LEN:
                continue
            if number == 3:
                name = pw.as_text(value, MAX_NAME)
            elif number == 4:
                op = pw.as_text(value, MAX_NAME)
            elif number == 7:
                domain = pw.as_text(value, MAX_NAME)
            elif number == 5:
                attrs.append(pw.as_message(value))
        here = (*where, f"node {name!r}" if name else f"node #{index}")
        if domain not in ONNX_STANDARD_DOMAINS and (domain, op) not in self.local_functions:
            count, first = self.custom.get((domain, op), (0, here))
            self.custom[(domain, op)] = (count + 1, first)
        for a in attrs:
            self.attribute(a, here, depth, stack)

    def attribute(
        self,
        buf: memoryview,
        where: tuple[str, ...],
        depth: int,
        stack: list[tuple[memoryview, tuple[str, ...], int]],
    ) -> None:
        name = ""
        tensors: list[memoryview] = []
        sparse: list[memoryview] = []
        graphs: list[memoryview] = []
        for number, wire, value in self.fields(buf):
            if wire != pw.LEN:
                continue
            if number == 1:
                name = pw.as_text(value, MAX_NAME)
            elif number in (5, 10):  # t, tensors
                tensors.append(pw.as_message(value))
            elif number in (22, 23):  # sparse_tensor, sparse_tensors
                sparse.append(pw.as_message(value))
            elif number in (6, 11):  # g, graphs
                graphs.append(pw.as_message(value))
        here = (*where, f"attribute {name}")
        for t in tensors:
            self.tensor(t, here, "tensor")
        for s in sparse:
            self.sparse(s, here, "sparse tensor")
        for g in graphs:
            if depth + 1 > MAX_GRAPH_DEPTH:
                self.tally.add(
                    "nesting",
                    StructuredIssue(
                        here,
                        "low",
                        "inconclusive",
                        f"subgraphs nested deeper than {MAX_GRAPH_DEPTH} levels are not scanned",
                    ),
                )
                continue
            stack.append((g, here, depth + 1))

    def sparse(self, buf: memoryview, where: tuple[str, ...], role: str) -> None:
        for number, wire, value in self.fields(buf):
            if wire == pw.LEN and number in (1, 2):  # values, indices
                part = "values" if number == 1 else "indices"
                self.tensor(pw.as_message(value), where, f"{role} {part} of")

    def tensor(self, buf: memoryview, where: tuple[str, ...], role: str) -> None:
        name = ""
        locations: list[bytes] = []
        for number, wire, value in self.fields(buf):
            if wire != pw.LEN:
                continue
            if number == 8:
                name = pw.as_text(value, MAX_NAME)
            elif number == 13:  # external_data: StringStringEntryProto
                key: str | None = None
                val: bytes | None = None
                for n2, w2, v2 in self.fields(pw.as_message(value)):
                    if w2 == pw.LEN and n2 == 1:
                        key = pw.as_text(v2, 64)
                    elif w2 == pw.LEN and n2 == 2:
                        val = pw.as_bytes(v2, 4096)
                if key == "location" and val is not None:
                    locations.append(val)
        for location in locations:
            reason = _unsafe_path(location)
            if reason is None:
                continue
            self.tally.add(
                "external data outside the model directory",
                StructuredIssue(
                    (*where, f"{role} {name!r}" if name else role),
                    "high",
                    "anomaly",
                    f"{f'tensor {name!r}' if name else 'a tensor'} takes its data from the "
                    "external file "
                    f"{_show(location)}, which {reason}: loading the model reads that "
                    f"file (ONNX external-data path traversal, {ONNX_CVES})",
                ),
            )

    def custom_domains(self) -> None:
        for (domain, op), (n, where) in self.custom.items():
            nodes = f"{n} nodes use" if n != 1 else "1 node uses"
            if domain in ONNX_RUNTIME_DOMAINS:
                severity = "info"
                detail = (
                    f"{nodes} op {op!r} from onnxruntime's contrib domain {domain!r}: "
                    "built into onnxruntime, not standard ONNX; nothing extra is loaded"
                )
            else:
                severity = "low" if domain in ONNX_KNOWN_EXTENSION_DOMAINS else "medium"
                detail = (
                    f"{nodes} op {op!r} from the custom domain {domain!r}: running the "
                    "model needs a native custom-op library for that domain, loaded by "
                    "the application; check where that library comes from"
                )
            self.tally.add(
                "custom-domain ops",
                StructuredIssue(where, severity, "unknown-import", detail),
            )


def onnx_issues(data: bytes | memoryview) -> list[StructuredIssue]:
    """External-data locations that escape the model's directory (every tensor: main
    graph, subgraphs, functions, training graphs, node attributes) and nodes from
    non-standard operator domains."""
    reader = _OnnxReader()
    # The failure is kept as an issue, never as the exception: its traceback would hold
    # views of ``data`` (a memory map cannot be closed while they live).
    failure: list[StructuredIssue] = []
    try:
        reader.model(pw.view(data))
    except pw.WireError as exc:
        failure.append(_unreadable("ONNX", exc))
    reader.custom_domains()
    return reader.tally.close() + failure


# --- TensorFlow -------------------------------------------------------------------

# Graph ops with effects outside the tensors they compute, and what they do. Sources:
# the op registrations in tensorflow/core/ops (io_ops.cc, script_ops.cc, array_ops.cc,
# logging_ops.cc, debug_ops.cc, dataset_ops.cc, experimental_dataset_ops.cc,
# summary_ops.cc, distribute rpc_ops), TensorFlow's own `saved_model_cli scan`
# denylist (WriteFile, ReadFile, PrintV2), the TensorAbuse study of file, network and
# Python primitives reachable from SavedModels (ZJU-SEC/TensorAbuse, IEEE S&P 2025),
# and the Hub model with FlexWriteFile/FlexReadFile/EagerPyFunc cited in
# model-files.md §4.5.
#
# Deliberately absent: SaveV2, RestoreV2, MergeV2Checkpoints, ShardedFilename,
# StringJoin (and Restore/RestoreSlice): every SavedModel's saver graph has them and
# the loader feeds them the model's own variables path. PrintV2 is judged by its
# output_stream attribute (stderr is what tf.print uses; "file://…" appends to a
# file). InitializeTableFromTextFile(V2) reads vocabulary assets in many ordinary NLP
# models and is left out; asset paths are checked instead.
_PYTHON = "calls back into Python (a py_func registered in the loading process)"
_WRITES = "writes files named by the graph"
_READS = "reads files named by the graph into tensors the model can return"
_NETWORK = "connects to a network address named by the graph"
_DEBUG = "sends tensors to tfdbg debug URLs (file:// writes or grpc:// connections)"
TF_SIDE_EFFECT_OPS: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("PyFunc", "PyFuncStateless", "EagerPyFunc"), ("critical", _PYTHON)),
    **dict.fromkeys(
        (
            "WriteFile",
            "DatasetToTFRecord",
            "ExperimentalDatasetToTFRecord",
            "SaveDataset",
            "SaveDatasetV2",
        ),
        ("critical", _WRITES),
    ),
    # The V1 saver ops: savers since TF 1.0 use SaveV2, so these write where the graph says.
    **dict.fromkeys(
        ("Save", "SaveSlices"),
        ("high", _WRITES + " (a V1 saver op; savers since TF 1.0 use SaveV2)"),
    ),
    **dict.fromkeys(
        (
            "SnapshotDataset",
            "SnapshotDatasetV2",
            "CreateSummaryFileWriter",
            "CreateSummaryDbWriter",
        ),
        ("medium", _WRITES),
    ),
    **dict.fromkeys(
        ("MatchingFiles", "MatchingFilesDataset", "ExperimentalMatchingFilesDataset"),
        ("medium", "lists the files matching a pattern named by the graph"),
    ),
    "DistributedSave": ("critical", "writes a dataset to a directory through a tf.data service"),
    "ImmutableConst": ("high", "memory-maps a file named in its attributes into a tensor"),
    **dict.fromkeys(
        (
            "ReadFile",
            "FixedLengthRecordDataset",
            "FixedLengthRecordDatasetV2",
            "TextLineDataset",
            "TFRecordDataset",
            "TFRecordDatasetV2",
            "CSVDataset",
            "CSVDatasetV2",
            "ExperimentalCSVDataset",
            "LMDBDataset",
            "ExperimentalLMDBDataset",
            "SqlDataset",
            "ExperimentalSqlDataset",
            "LoadDataset",
            "WholeFileReader",
            "WholeFileReaderV2",
            "TextLineReader",
            "TextLineReaderV2",
            "FixedLengthRecordReader",
            "FixedLengthRecordReaderV2",
            "TFRecordReader",
            "TFRecordReaderV2",
            "LMDBReader",
        ),
        ("high", _READS),
    ),
    **dict.fromkeys(
        (
            "DataServiceDataset",
            "DataServiceDatasetV2",
            "DataServiceDatasetV3",
            "DataServiceDatasetV4",
            "RegisterDataset",
            "RegisterDatasetV2",
            "RpcServer",
            "RpcClient",
            "RpcCall",
            "RpcServerRegister",
            "RpcServerStart",
            "Rpc",
            "TryRpc",
        ),
        ("high", _NETWORK),
    ),
    **dict.fromkeys(
        (
            "DebugIdentity",
            "DebugIdentityV2",
            "DebugIdentityV3",
            "DebugNanCount",
            "DebugNumericSummary",
        ),
        ("high", _DEBUG),
    ),
}


def _attr_string(entries: list[memoryview], wanted: str, budget: pw.Budget) -> bytes | None:
    """The string value (``AttrValue.s``) of attribute ``wanted`` of a NodeDef."""
    for entry in entries:
        key: str | None = None
        attr: memoryview | None = None
        for number, wire, value in pw.fields(entry, budget):
            if wire == pw.LEN and number == 1:
                key = pw.as_text(value, 256)
            elif wire == pw.LEN and number == 2:
                attr = pw.as_message(value)
        if key == wanted and attr is not None:
            for number, wire, value in pw.fields(attr, budget):
                if wire == pw.LEN and number == 2:
                    return pw.as_bytes(value, 4096)
    return None


def _tf_judge(op: str, attrs: Callable[[str], bytes | None]) -> tuple[str, str] | None:
    """(severity, what it does) for a side-effect op, None for an ordinary one."""
    if op == "PrintV2":
        stream = attrs("output_stream") or b""
        if stream.startswith(b"file://"):
            return "critical", f"appends printed tensors to the file {_show(stream[7:])}"
        return None
    if op == "ImmutableConst":
        region = attrs("memory_region_name") or b""
        if region.startswith(b"memmapped_package://"):
            return None  # a region of the model's own memmapped package
        if region:
            return "high", f"memory-maps the file {_show(region)} into a tensor"
    return TF_SIDE_EFFECT_OPS.get(op)


class _TfReader:
    def __init__(self) -> None:
        self.budget = pw.Budget(MAX_FIELDS)
        self.tally = _Tally()

    def fields(self, buf: memoryview) -> Iterator[tuple[int, int, pw.Value]]:
        return pw.fields(buf, self.budget)

    def saved_model(self, buf: memoryview) -> None:
        index = 0
        for number, wire, value in self.fields(buf):
            if number == 2 and wire == pw.LEN:
                self.meta_graph(pw.as_message(value), index)
                index += 1

    def meta_graph(self, buf: memoryview, index: int) -> None:
        tags: list[str] = []
        graph: memoryview | None = None
        assets: list[memoryview] = []
        for number, wire, value in self.fields(buf):
            if wire != pw.LEN:
                continue
            if number == 1:  # MetaInfoDef
                for n2, w2, v2 in self.fields(pw.as_message(value)):
                    if n2 == 4 and w2 == pw.LEN:
                        tags.append(pw.as_text(v2, 128))
            elif number == 2:
                graph = pw.as_message(value)
            elif number == 6:
                assets.append(pw.as_message(value))
        label = f"meta graph {index}" + (f" [{', '.join(tags[:8])}]" if tags else "")
        if graph is not None:
            self.graph_def(graph, (label,))
        for asset in assets:
            for n2, w2, v2 in self.fields(asset):
                if n2 == 2 and w2 == pw.LEN:
                    self.asset(pw.as_bytes(v2, 4096), label)

    def asset(self, filename: bytes, label: str) -> None:
        reason = _unsafe_path(filename)
        if reason is None:
            return
        self.tally.add(
            "asset outside the model directory",
            StructuredIssue(
                (label, f"asset {_show(filename)}"),
                "high",
                "anomaly",
                f"the asset file name {_show(filename)} {reason}: loading the model binds "
                "a file outside its assets directory",
            ),
        )

    def graph_def(self, buf: memoryview, where: tuple[str, ...]) -> None:
        for number, wire, value in self.fields(buf):
            if wire != pw.LEN:
                continue
            if number == 1:
                self.node_def(pw.as_message(value), where)
            elif number == 2:  # FunctionDefLibrary
                for n2, w2, v2 in self.fields(pw.as_message(value)):
                    if n2 == 1 and w2 == pw.LEN:
                        self.function_def(pw.as_message(v2), where)

    def function_def(self, buf: memoryview, where: tuple[str, ...]) -> None:
        name = ""
        nodes: list[memoryview] = []
        for number, wire, value in self.fields(buf):
            if wire != pw.LEN:
                continue
            if number == 1:  # OpDef signature: its name is the function's name
                for n2, w2, v2 in self.fields(pw.as_message(value)):
                    if n2 == 1 and w2 == pw.LEN:
                        name = pw.as_text(v2, MAX_NAME)
            elif number == 3:
                nodes.append(pw.as_message(value))
        here = (*where, f"function {name}")
        for node in nodes:
            self.node_def(node, here)

    def node_def(self, buf: memoryview, where: tuple[str, ...]) -> None:
        name = op = ""
        attrs: list[memoryview] = []
        for number, wire, value in self.fields(buf):
            if wire != pw.LEN:
                continue
            if number == 1:
                name = pw.as_text(value, MAX_NAME)
            elif number == 2:
                op = pw.as_text(value, MAX_NAME)
            elif number == 5:
                attrs.append(pw.as_message(value))
        judged = _tf_judge(op, lambda key: _attr_string(attrs, key, self.budget))
        if judged is None:
            return
        severity, what = judged
        self.tally.add(
            op,
            StructuredIssue(
                (*where, f"node {name!r}"),
                severity,
                "executes-code",
                f"TensorFlow op {op} runs when the model is called: it {what}",
            ),
        )


def saved_model_issues(data: bytes | memoryview) -> list[StructuredIssue]:
    """Side-effect ops in every meta graph's GraphDef and in every function of its
    library, and asset file names that escape the assets directory."""
    reader = _TfReader()
    failure: list[StructuredIssue] = []
    try:
        reader.saved_model(pw.view(data))
    except pw.WireError as exc:
        failure.append(_unreadable("SavedModel", exc))
    return reader.tally.close() + failure


# --- TFLite -----------------------------------------------------------------------

TFLITE_CUSTOM = 32  # BuiltinOperator.CUSTOM
# Custom ops that TFLite's own BuiltinOpResolver registers (tensorflow/lite/core/kernels/
# register.cc): no application library is involved.
TFLITE_BUILTIN_CUSTOM_OPS = frozenset(
    {"TFLite_Detection_PostProcess", "Mfcc", "AudioSpectrogram", "NumericVerify"}
)
FLEX_PREFIX = "Flex"


class FlatError(ValueError):
    """A FlatBuffer or FlexBuffer offset points outside the data."""


class _Flat:
    """Bounds-checked reads of FlatBuffer tables, vectors and strings."""

    def __init__(self, data: bytes | memoryview) -> None:
        self.buf = pw.view(data)
        self.size = len(self.buf)

    def release(self) -> None:
        self.buf.release()

    def need(self, pos: int, n: int) -> None:
        if pos < 0 or n < 0 or pos + n > self.size:
            raise FlatError(f"offset {pos}+{n} is outside the {self.size}-byte buffer")

    def uint(self, pos: int, n: int) -> int:
        self.need(pos, n)
        return int.from_bytes(self.buf[pos : pos + n], "little")

    def sint(self, pos: int, n: int) -> int:
        self.need(pos, n)
        return int.from_bytes(self.buf[pos : pos + n], "little", signed=True)

    def table(self, pos: int) -> tuple[int, int, int]:
        """(table position, vtable position, vtable length)."""
        vtable = pos - self.sint(pos, 4)
        length = self.uint(vtable, 2)
        if length < 4 or length % 2:
            raise FlatError(f"vtable at {vtable} has length {length}")
        self.need(vtable, length)
        return pos, vtable, length

    def field(self, table: tuple[int, int, int], slot: int) -> int | None:
        pos, vtable, length = table
        entry = 4 + 2 * slot
        if entry + 2 > length:
            return None
        offset = self.uint(vtable + entry, 2)
        return pos + offset if offset else None

    def indirect(self, pos: int) -> int:
        return pos + self.uint(pos, 4)

    def vector(self, pos: int, item: int) -> tuple[int, int]:
        """(first element, count) of the vector referenced at ``pos``."""
        start = self.indirect(pos)
        count = self.uint(start, 4)
        self.need(start + 4, count * item)
        return start + 4, count

    def string(self, pos: int, limit: int = MAX_NAME) -> bytes:
        start, count = self.vector(pos, 1)
        return bytes(self.buf[start : start + min(count, limit)])

    def scalar(self, table: tuple[int, int, int], slot: int, n: int, signed: bool = False) -> int:
        pos = self.field(table, slot)
        if pos is None:
            return 0
        return self.sint(pos, n) if signed else self.uint(pos, n)


def flex_op(options: bytes) -> tuple[str, bytes]:
    """The op name and serialized NodeDef in a Flex op's custom options: a FlexBuffer
    vector ``[op name, NodeDef]``. The Flex delegate runs the op named here, whatever
    the operator code's ``Flex…`` name says."""
    n = len(options)
    if n < 3:
        raise FlatError("custom options too short for a FlexBuffer")
    root_width = options[-1]
    packed = options[-2]
    if root_width not in (1, 2, 4, 8) or packed >> 2 != 10:  # FBT_VECTOR
        raise FlatError("custom options are not a FlexBuffer vector")
    width = 1 << (packed & 3)
    root = n - 2 - root_width

    def uint(pos: int, size: int) -> int:
        if pos < 0 or pos + size > n:
            raise FlatError("FlexBuffer offset outside the options")
        return int.from_bytes(options[pos : pos + size], "little")

    vec = root - uint(root, root_width)
    length = uint(vec - width, width)
    if length < 2 or vec + length * width + length > n:
        raise FlatError("FlexBuffer vector does not hold an op name and a NodeDef")
    items: list[bytes] = []
    for i in range(2):
        elem_packed = options[vec + length * width + i]
        if elem_packed >> 2 not in (5, 25):  # FBT_STRING, FBT_BLOB
            raise FlatError("FlexBuffer element is not a string")
        elem_width = 1 << (elem_packed & 3)
        elem = vec + i * width
        start = elem - uint(elem, width)
        size = uint(start - elem_width, elem_width)
        if start + size > n:
            raise FlatError("FlexBuffer string runs past the options")
        items.append(options[start : start + size])
    return items[0][:MAX_NAME].decode("utf-8", "replace"), items[1]


def _node_def_op(node_def: bytes, budget: pw.Budget) -> tuple[str, list[memoryview]]:
    op = ""
    attrs: list[memoryview] = []
    for number, wire, value in pw.fields(node_def, budget):
        if wire == pw.LEN and number == 2:
            op = pw.as_text(value, MAX_NAME)
        elif wire == pw.LEN and number == 5:
            attrs.append(pw.as_message(value))
    return op, attrs


class _TfliteReader:
    def __init__(self, data: bytes | memoryview) -> None:
        self.fb = _Flat(data)
        self.budget = pw.Budget(MAX_FIELDS)
        self.tally = _Tally()
        self.operators = 0

    def model(self) -> None:
        fb = self.fb
        root = fb.table(fb.uint(0, 4))
        codes: list[tuple[int, str]] = []  # (builtin code, custom code)
        pos = fb.field(root, 1)  # operator_codes
        if pos is not None:
            start, count = fb.vector(pos, 4)
            if count > MAX_TFLITE_OPERATORS:
                raise pw.BudgetExceeded(f"{count} operator codes")
            for k in range(count):
                code = fb.table(fb.indirect(start + 4 * k))
                deprecated = fb.scalar(code, 0, 1, signed=True)
                builtin = max(fb.scalar(code, 3, 4, signed=True), deprecated)
                custom_pos = fb.field(code, 1)
                custom = fb.string(custom_pos).decode("utf-8", "replace") if custom_pos else ""
                codes.append((builtin, custom))
                if builtin == TFLITE_CUSTOM:
                    self.operator_code(k, custom)
        pos = fb.field(root, 2)  # subgraphs
        if pos is None or not any(
            b == TFLITE_CUSTOM and c.startswith(FLEX_PREFIX) for b, c in codes
        ):
            return  # only Flex operators carry more to read
        start, count = fb.vector(pos, 4)
        for s in range(count):
            self.spend()
            subgraph = fb.table(fb.indirect(start + 4 * s))
            name_pos = fb.field(subgraph, 4)
            name = fb.string(name_pos, 256).decode("utf-8", "replace") if name_pos else ""
            label = f"subgraph {s}" + (f" {name!r}" if name else "")
            ops = fb.field(subgraph, 3)
            if ops is not None:
                self.subgraph(ops, label, codes)

    def spend(self) -> None:
        self.operators += 1
        if self.operators > MAX_TFLITE_OPERATORS:
            raise pw.BudgetExceeded(f"stopped after {MAX_TFLITE_OPERATORS} operators")

    def operator_code(self, index: int, custom: str) -> None:
        where = (f"operator code {index}",)
        if custom.startswith(FLEX_PREFIX):
            tf_op = custom[len(FLEX_PREFIX) :]
            judged = TF_SIDE_EFFECT_OPS.get(tf_op)
            if judged is not None:
                severity, what = judged
                self.tally.add(
                    custom,
                    StructuredIssue(
                        where,
                        severity,
                        "executes-code",
                        f"Flex op {custom} runs TensorFlow's {tf_op} through the Flex "
                        f"delegate when the model is called: it {what}",
                    ),
                )
        elif custom not in TFLITE_BUILTIN_CUSTOM_OPS:
            self.tally.add(
                "custom ops",
                StructuredIssue(
                    where,
                    "low",
                    "unknown-import",
                    f"custom op {custom!r} is not part of TFLite: running the model needs "
                    "a native kernel registered by the application",
                ),
            )

    def subgraph(self, pos: int, label: str, codes: list[tuple[int, str]]) -> None:
        fb = self.fb
        start, count = fb.vector(pos, 4)
        for i in range(count):
            self.spend()
            operator = fb.table(fb.indirect(start + 4 * i))
            index = fb.scalar(operator, 0, 4)
            if index >= len(codes):
                self.tally.add(
                    "bad operator codes",
                    StructuredIssue(
                        (label, f"operator {i}"),
                        "low",
                        "anomaly",
                        f"operator {i} uses operator code {index}, which does not exist",
                    ),
                )
                continue
            builtin, custom = codes[index]
            if builtin == TFLITE_CUSTOM and custom.startswith(FLEX_PREFIX):
                self.flex_operator(operator, (label, f"operator {i}"), custom)

    def custom_options(self, operator: tuple[int, int, int]) -> bytes:
        fb = self.fb
        pos = fb.field(operator, 5)
        if pos is not None:
            start, count = fb.vector(pos, 1)
            return bytes(fb.buf[start : start + count])
        offset = fb.scalar(operator, 9, 8)  # large_custom_options_offset/_size:
        size = fb.scalar(operator, 10, 8)  # options stored after the FlatBuffer
        if size:
            fb.need(offset, size)
            return bytes(fb.buf[offset : offset + size])
        return b""

    def flex_operator(
        self, operator: tuple[int, int, int], where: tuple[str, ...], custom: str
    ) -> None:
        declared = custom[len(FLEX_PREFIX) :]
        try:
            name, node_def = flex_op(self.custom_options(operator))
            node_op, attrs = _node_def_op(node_def, self.budget)
        except (FlatError, pw.WireError) as exc:
            if isinstance(exc, pw.BudgetExceeded):
                raise
            self.tally.add(
                "unreadable Flex options",
                StructuredIssue(
                    where,
                    "low",
                    "inconclusive",
                    f"the options of Flex op {custom} cannot be read ({exc}): "
                    "which TensorFlow op it runs is not known",
                ),
            )
            return
        ran = [op for op in dict.fromkeys((name, node_op)) if op]
        if any(op != declared for op in ran):
            self.tally.add(
                "disguised Flex ops",
                StructuredIssue(
                    where,
                    "high",
                    "anomaly",
                    f"operator code {custom} declares {declared}, but its options make the "
                    f"Flex delegate run {' / '.join(ran)}: a scanner reading operator codes "
                    "alone is misled",
                ),
            )
        for op in ran:
            if op == declared and op != "PrintV2":
                continue  # already judged from the operator code
            judged = _tf_judge(op, lambda key: _attr_string(attrs, key, self.budget))
            if judged is None:
                continue
            severity, what = judged
            self.tally.add(
                f"Flex {op}",
                StructuredIssue(
                    where,
                    severity,
                    "executes-code",
                    f"the Flex delegate runs TensorFlow's {op} here when the model is "
                    f"called: it {what}",
                ),
            )


def tflite_issues(data: bytes | memoryview) -> list[StructuredIssue]:
    """Flex ops that reach side-effect TensorFlow ops (judged by their operator code
    and by the NodeDef the delegate actually runs) and custom ops TFLite lacks."""
    reader = _TfliteReader(data)
    failure: list[StructuredIssue] = []
    try:
        reader.model()
    except (FlatError, pw.WireError) as exc:
        failure.append(_unreadable("TFLite", exc))
    reader.fb.release()
    return reader.tally.close() + failure
