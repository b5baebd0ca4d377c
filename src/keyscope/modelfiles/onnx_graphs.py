"""ONNX models, read as data: external-data paths that leave the model's directory
(arbitrary file read on load) and nodes from custom-op domains (native libraries)."""

from __future__ import annotations

from collections.abc import Iterator

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

MAX_GRAPH_DEPTH = 32  # nested ONNX subgraphs (If/Loop/Scan bodies)

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
        self.tally = Tally()
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
        # FunctionProto: name 1, node 7, domain 10, attribute_proto 11
        f = pw.length_fields(self.fields(buf), (1, 7, 10, 11))
        return pw.last_text(f[1], MAX_NAME), pw.last_text(f[10], MAX_NAME), f[7], f[11]

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
        # NodeProto: name 3, op_type 4, attribute 5, domain 7
        f = pw.length_fields(self.fields(buf), (3, 4, 5, 7))
        name, op, domain = (pw.last_text(f[n], MAX_NAME) for n in (3, 4, 7))
        attrs = f[5]
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
            reason = unsafe_path(location)
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
                    f"{show(location)}, which {reason}: loading the model reads that "
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
        failure.append(unreadable("ONNX", exc))
    reader.custom_domains()
    return reader.tally.close() + failure
