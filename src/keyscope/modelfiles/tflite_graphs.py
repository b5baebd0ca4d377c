"""TFLite models, read as data: Flex ops run TensorFlow ops (the one named in their
options, whatever the code says), so they reach the same side effects as graphs."""

from __future__ import annotations

from keyscope.modelfiles import protowire as pw
from keyscope.modelfiles.graphs import (
    MAX_FIELDS,
    MAX_NAME,
    Tally,
    unreadable,
)
from keyscope.modelfiles.structured import StructuredIssue
from keyscope.modelfiles.tf_graphs import (
    TF_SIDE_EFFECT_OPS,
    attr_string,
    node_def_fields,
    tf_judge,
)

MAX_TFLITE_OPERATORS = 200_000  # operators and operator codes read per TFLite file


def is_tflite(data: bytes | memoryview, partial: bool = False) -> bool:
    """A TFLite FlatBuffer: file identifier ``TFL3`` after the root offset."""
    if bytes(data[4:8]) != b"TFL3" or len(data) < 12:
        return False
    root = int.from_bytes(bytes(data[0:4]), "little")
    return root >= 8 and (partial or root <= len(data) - 4)


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


class _TfliteReader:
    def __init__(self, data: bytes | memoryview) -> None:
        self.fb = _Flat(data)
        self.budget = pw.Budget(MAX_FIELDS)
        self.tally = Tally()
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
            _, node_op, attrs = node_def_fields(node_def, self.budget)
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
            judged = tf_judge(op, lambda key: attr_string(attrs, key, self.budget))
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
        failure.append(unreadable("TFLite", exc))
    reader.fb.release()
    return reader.tally.close() + failure
