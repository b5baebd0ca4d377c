"""TensorFlow SavedModels, read as data: graphs are programs, and ops such as
``WriteFile``, ``ReadFile``, ``EagerPyFunc`` or the tf.data service ops touch files,
call back into Python or open network connections when the model runs."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial

from keyscope.modelfiles import protowire as pw
from keyscope.modelfiles.graphs import (
    MAX_FIELDS,
    MAX_NAME,
    Tally,
    show,
    unreadable,
    unsafe_path,
)
from keyscope.modelfiles.structured import StructuredIssue

_SAVED_MODEL_FIELDS = {1: pw.VARINT, 2: pw.LEN}  # saved_model_schema_version, meta_graphs


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


def node_def_fields(
    buf: bytes | memoryview, budget: pw.Budget
) -> tuple[str, str, list[memoryview]]:
    """A NodeDef's name (field 1), op (2) and attr entries (5)."""
    f = pw.length_fields(pw.fields(buf, budget), (1, 2, 5))
    return pw.last_text(f[1], MAX_NAME), pw.last_text(f[2], MAX_NAME), f[5]


def attr_string(entries: list[memoryview], wanted: str, budget: pw.Budget) -> bytes | None:
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


def tf_judge(op: str, attrs: Callable[[str], bytes | None]) -> tuple[str, str] | None:
    """(severity, what it does) for a side-effect op, None for an ordinary one."""
    if op == "PrintV2":
        stream = attrs("output_stream") or b""
        if stream.startswith(b"file://"):
            return "critical", f"appends printed tensors to the file {show(stream[7:])}"
        return None
    if op == "ImmutableConst":
        region = attrs("memory_region_name") or b""
        if region.startswith(b"memmapped_package://"):
            return None  # a region of the model's own memmapped package
        if region:
            return "high", f"memory-maps the file {show(region)} into a tensor"
    return TF_SIDE_EFFECT_OPS.get(op)


class _TfReader:
    def __init__(self) -> None:
        self.budget = pw.Budget(MAX_FIELDS)
        self.tally = Tally()

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
        reason = unsafe_path(filename)
        if reason is None:
            return
        self.tally.add(
            "asset outside the model directory",
            StructuredIssue(
                (label, f"asset {show(filename)}"),
                "high",
                "anomaly",
                f"the asset file name {show(filename)} {reason}: loading the model binds "
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
        # FunctionDef: signature 1 (an OpDef, whose name 1 is the function's), node_def 3
        f = pw.length_fields(self.fields(buf), (1, 3))
        name = ""
        for signature in f[1]:
            name = pw.last_text(pw.length_fields(self.fields(signature), (1,))[1], MAX_NAME)
        here = (*where, f"function {name}")
        for node in f[3]:
            self.node_def(node, here)

    def node_def(self, buf: memoryview, where: tuple[str, ...]) -> None:
        name, op, attrs = node_def_fields(buf, self.budget)
        judged = tf_judge(op, lambda key: attr_string(attrs, key, self.budget))
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
        failure.append(unreadable("SavedModel", exc))
    return _merge_copies(reader.tally.close()) + failure


def _merge_copies(issues: list[StructuredIssue]) -> list[StructuredIssue]:
    """TensorFlow saves each traced function more than once (one copy per input
    signature): the same node in several functions is one issue, naming the others."""
    groups: dict[tuple[str, str, str, str], list[StructuredIssue]] = {}
    for issue in issues:
        key = (issue.severity, issue.verdict, issue.detail, issue.where[-1] if issue.where else "")
        groups.setdefault(key, []).append(issue)
    out: list[StructuredIssue] = []
    for same in groups.values():
        first = same[0]
        if len(same) > 1 and first.where:
            others = [i.where[-2] for i in same[1:] if len(i.where) > 1]
            named = ", ".join(others[:3]) + (" …" if len(others) > 3 else "")
            first = replace(
                first,
                detail=f"{first.detail} (the same node is also in {len(same) - 1} more "
                f"traced copies: {named})",
            )
        out.append(first)
    return out


# --- the text format (saved_model.pbtxt, read when saved_model.pb is absent) -------

_TEXT_NODE = re.compile(rb"\b(?:node|node_def)\s*\{")
_TEXT_FIELD = {
    "name": re.compile(rb'\bname:\s*"((?:[^"\\\n]|\\.){0,1024})"'),
    "op": re.compile(rb'\bop:\s*"([A-Za-z0-9_>.]{1,256})"'),
}
_TEXT_FUNCTION = re.compile(rb'\bsignature\s*\{\s*name:\s*"([^"\n]{1,1024})"')


def saved_model_text_issues(data: bytes | memoryview) -> list[StructuredIssue]:
    """Side-effect ops in a text-format SavedModel. Each ``node {`` / ``node_def {``
    block is read up to the next one (nodes do not nest), which is enough to find its
    name, op and the attributes that decide PrintV2 and ImmutableConst."""
    text = bytes(data)
    tally = Tally()
    starts = [m.start() for m in _TEXT_NODE.finditer(text)]
    functions = [
        (m.start(), m.group(1).decode("utf-8", "replace")) for m in _TEXT_FUNCTION.finditer(text)
    ]
    function_starts = [at for at, _ in functions]
    for i, start in enumerate(starts):
        block = text[start : starts[i + 1] if i + 1 < len(starts) else len(text)]
        op_m = _TEXT_FIELD["op"].search(block)
        if op_m is None:
            continue
        op = op_m.group(1).decode()
        judged = tf_judge(op, partial(_text_attr, block))
        if judged is None:
            continue
        name_m = _TEXT_FIELD["name"].search(block)
        name = name_m.group(1).decode("utf-8", "replace") if name_m else f"#{i}"
        k = bisect.bisect_left(function_starts, start)
        owner = functions[k - 1][1] if k > 0 else None
        where = ("text graph", *((f"function {owner}",) if owner else ()), f"node {name!r}")
        severity, what = judged
        tally.add(
            op,
            StructuredIssue(
                where,
                severity,
                "executes-code",
                f"TensorFlow op {op} runs when the model is called: it {what}",
            ),
        )
    return _merge_copies(tally.close())


def _text_attr(block: bytes, key: str) -> bytes | None:
    m = re.search(
        rb'key:\s*"'
        + re.escape(key.encode())
        + rb'"\s*value\s*\{\s*s:\s*"((?:[^"\\\n]|\\.){0,4096})"',
        block,
    )
    return m.group(1) if m else None
