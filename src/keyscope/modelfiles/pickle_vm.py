"""A pickle emulator that never imports or calls anything.

It reads every opcode of protocols 0–5 with ``_pickle``'s argument parsing, keeps a
symbolic stack and memo, resolves ``GLOBAL``/``STACK_GLOBAL``/``INST``/``EXT*`` to
names (dotted names included) and records, for each name, whether it would only be
looked up or actually called (``REDUCE``, ``OBJ``/``INST``, ``NEWOBJ``, ``BUILD``).
Several concatenated streams are read. A stream that breaks is reported with what it
did before breaking (the loader would already have run that).
"""

from __future__ import annotations

import _compat_pickle
import base64
import binascii
import re
import struct
from dataclasses import dataclass, field

from keyscope.modelfiles.policy import Tier, classify

MAX_OPS = 5_000_000
MAX_MEMO = 1_000_000
MAX_STACK = 100_000
MAX_STREAMS = 16
NESTED_PREFIXES = (b"\x80", b"PK\x03\x04")


@dataclass(frozen=True)
class Global:
    """A name the pickle resolves (``module.name``); ``dynamic`` when it was computed."""

    module: str
    name: str
    dynamic: bool = False

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class CallResult:
    """What a call returned: unknown, but we remember what was called, with what, and
    the state a later BUILD gave it."""

    func: object
    args: object = None
    state: object = None


class _Mark:
    pass


MARK = _Mark()


@dataclass(frozen=True)
class Event:
    kind: str  # import | call | build | ext | dynamic-import | nested | malformed | budget
    tier: Tier
    offset: int
    detail: str
    name: str | None = None


@dataclass
class PickleReport:
    events: list[Event] = field(default_factory=list)
    streams: int = 0
    opcodes: int = 0
    complete: bool = True  # False: a budget was hit or the stream broke
    nested: list[tuple[int, bytes]] = field(default_factory=list)  # (offset, data) to scan

    @property
    def worst(self) -> Tier:
        return max((e.tier for e in self.events), default=Tier.SAFE)


class PickleError(Exception):
    pass


def analyze_pickle(
    data: bytes,
    start: int = 0,
    *,
    max_streams: int = MAX_STREAMS,
    extra_safe: frozenset[str] = frozenset(),
) -> PickleReport:
    """Emulate the pickle stream(s) in ``data`` from ``start``."""
    report = PickleReport()
    pos = start
    while report.streams < max_streams and pos < len(data):
        vm = _VM(data, pos, report, extra_safe)
        try:
            pos = vm.run()
            report.streams += 1
        except (
            PickleError,
            RecursionError,
            ValueError,
            OverflowError,
            struct.error,
            MemoryError,
        ) as exc:
            if report.streams == 0 or report.opcodes > MAX_OPS:
                # The loader runs the first stream until it breaks: what it did before
                # the break is in the events already; the break itself means "not
                # proven safe". Bytes after a later stream are raw data (legacy torch
                # storages), not a broken pickle.
                report.complete = False
                report.events.append(
                    Event(
                        "malformed",
                        Tier.SAFE,
                        vm.op_offset,
                        f"stream breaks at byte {vm.op_offset}: {exc}",
                    )
                )
            report.streams += 1
            break
        # Another stream follows only if the next byte starts one (legacy torch files
        # hold five pickles back to back; a raw pickle is followed by nothing).
        if pos >= len(data) or data[pos : pos + 1] not in (b"\x80", b"(", b"}", b"]"):
            break
    return report


def _py3_name(module: str, name: str) -> tuple[str, str]:
    """``_pickle``'s fix_imports for protocols 0–2 (the tables are stdlib data)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class _VM:
    def __init__(
        self, data: bytes, pos: int, report: PickleReport, extra_safe: frozenset[str]
    ) -> None:
        self.data = data
        self.pos = pos
        self.report = report
        self.extra_safe = extra_safe
        self.stack: list[object] = []
        self.metastack: list[list[object]] = []
        self.memo: dict[int, object] = {}
        self.op_offset = pos
        self.proto = 0  # as in _pickle: 0 until a PROTO opcode says otherwise

    # --- reading -----------------------------------------------------------
    def read(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise PickleError("truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def readline(self) -> bytes:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise PickleError("missing newline")
        out = self.data[self.pos : end]
        self.pos = end + 1
        return out

    # --- stack -------------------------------------------------------------
    def push(self, value: object) -> None:
        if len(self.stack) > MAX_STACK:
            raise PickleError("stack budget exceeded")
        self.stack.append(value)

    def pop(self) -> object:
        if not self.stack:
            raise PickleError("pop from empty stack")
        return self.stack.pop()

    def pop_mark(self) -> list[object]:
        if not self.metastack:
            raise PickleError("no MARK")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    # --- events ------------------------------------------------------------
    def resolve(
        self, module: str, name: str, kind: str = "import", dynamic: bool = False
    ) -> Global:
        if not dynamic and self.proto < 3:
            # Python 2 names, renamed the way pickle.load (fix_imports=True, the default
            # of every loader) renames them before importing: __builtin__.xrange is
            # builtins.range, copy_reg is copyreg.
            module, name = _py3_name(module, name)
        g = Global(module, name, dynamic)
        tier = Tier.NEVER if dynamic else classify(module, name, self.extra_safe)
        detail = (
            f"resolves a name computed at run time ({module}.{name})"
            if dynamic
            else f"imports {g.dotted}"
        )
        self.report.events.append(
            Event("dynamic-import" if dynamic else kind, tier, self.op_offset, detail, g.dotted)
        )
        return g

    def called(self, func: object, args: object, how: str) -> None:
        if isinstance(func, Global):
            tier = Tier.NEVER if func.dynamic else classify(func.module, func.name, self.extra_safe)
            detail = f"calls {func.dotted}({_short_args(args)})"
            self.report.events.append(Event("call", tier, self.op_offset, detail, func.dotted))
        elif isinstance(func, CallResult):
            # A callable produced at run time (getattr(...), operator helpers, memo
            # tricks) is called: never provably safe.
            inner = func.func.dotted if isinstance(func.func, Global) else "a computed value"
            self.report.events.append(
                Event(
                    "call",
                    Tier.NEVER,
                    self.op_offset,
                    f"calls an object returned by {inner} ({how})",
                    inner,
                )
            )
        else:
            self.report.events.append(
                Event(
                    "call",
                    Tier.UNKNOWN,
                    self.op_offset,
                    f"{how} on a non-callable value ({type(func).__name__})",
                )
            )

    def mutated(self, target: object, args: object, how: str) -> None:
        """APPEND(S)/SETITEM(S) on something that is not a plain list or dict calls that
        object's method: judged by the class it is an instance of."""
        owner = target.func if isinstance(target, CallResult) else target
        if isinstance(owner, Global) and isinstance(target, CallResult):
            tier = classify(owner.module, owner.name, self.extra_safe)
            if tier > Tier.SAFE:
                self.report.events.append(
                    Event(
                        "call",
                        tier,
                        self.op_offset,
                        f"{how} on a {owner.dotted} instance",
                        owner.dotted,
                    )
                )
        else:
            self.called(target, args, how)

    def note_data(self, value: bytes | str) -> None:
        raw = value.encode("latin-1", "ignore") if isinstance(value, str) else value
        if raw.startswith(BASE64_PREFIXES) and len(raw) >= 16:
            # Base64 of a pickle (gAJ…, gAS…) or a zip (UEsDB…): a nested loader's input.
            try:
                raw = base64.b64decode(raw.strip(), validate=False)
            except (binascii.Error, ValueError):
                return
        if len(raw) >= 8 and (
            raw.startswith(b"PK\x03\x04")
            or (raw[:1] == b"\x80" and raw[1:2] in b"\x02\x03\x04\x05")
        ):
            self.report.nested.append((self.op_offset, raw))

    # --- the loop ----------------------------------------------------------
    def run(self) -> int:
        report = self.report
        while True:
            report.opcodes += 1
            if report.opcodes > MAX_OPS:
                report.complete = False
                report.events.append(
                    Event("budget", Tier.SAFE, self.pos, "opcode budget exhausted: not proven safe")
                )
                raise PickleError("opcode budget exhausted")
            self.op_offset = self.pos
            op = self.read(1)
            handler = _DISPATCH.get(op[0])
            if handler is None:
                raise PickleError(f"unknown opcode 0x{op[0]:02x}")
            if handler(self):
                return self.pos

    # Each handler returns True on STOP.
    def op_proto(self) -> None:
        proto = self.read(1)[0]
        if proto > 5:
            raise PickleError(f"unsupported protocol {proto}")
        self.proto = proto

    def op_frame(self) -> None:
        self.read(8)  # frame length: the content follows inline

    def op_stop(self) -> bool:
        return True

    def op_mark(self) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def op_pop(self) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self.pop_mark()

    def op_pop_mark(self) -> None:
        self.pop_mark()

    def op_dup(self) -> None:
        if not self.stack:
            raise PickleError("DUP on empty stack")
        self.push(self.stack[-1])

    # literals
    def op_none(self) -> None:
        self.push(None)

    def op_true(self) -> None:
        self.push(True)

    def op_false(self) -> None:
        self.push(False)

    def op_int(self) -> None:
        line = self.readline()
        if line in (b"00", b"01"):
            self.push(line == b"01")
            return
        try:
            self.push(int(line, 0 if line.lstrip(b"-+").startswith(b"0x") else 10))
        except ValueError:
            raise PickleError("bad INT") from None

    def op_long(self) -> None:
        line = self.readline().rstrip(b"L")
        try:
            self.push(int(line))
        except ValueError:
            raise PickleError("bad LONG") from None

    def op_binint(self) -> None:
        self.push(struct.unpack("<i", self.read(4))[0])

    def op_binint1(self) -> None:
        self.push(self.read(1)[0])

    def op_binint2(self) -> None:
        self.push(struct.unpack("<H", self.read(2))[0])

    def op_long1(self) -> None:
        n = self.read(1)[0]
        self.push(int.from_bytes(self.read(n), "little", signed=True))

    def op_long4(self) -> None:
        n = struct.unpack("<i", self.read(4))[0]
        if n < 0:
            raise PickleError("negative LONG4 length")
        self.push(int.from_bytes(self.read(n), "little", signed=True))

    def op_float(self) -> None:
        try:
            self.push(float(self.readline()))
        except ValueError:
            raise PickleError("bad FLOAT") from None

    def op_binfloat(self) -> None:
        self.push(struct.unpack(">d", self.read(8))[0])

    def _text(self, raw: bytes) -> None:
        text = (
            raw.decode("utf-8", "surrogatepass")
            if raw.isascii()
            else raw.decode("utf-8", "replace")
        )
        self.note_data(text)
        self.push(text)

    def op_string(self) -> None:
        line = self.readline()
        if len(line) >= 2 and line[:1] == line[-1:] and line[:1] in b"'\"":
            line = line[1:-1]
        else:
            raise PickleError("STRING not quoted")
        try:
            value = line.decode("unicode_escape")
        except UnicodeDecodeError:
            value = line.decode("latin-1")
        self.note_data(value)
        self.push(value)

    def op_binstring(self) -> None:
        n = struct.unpack("<i", self.read(4))[0]
        self._bytes_value(self.read(n), as_text=True)

    def op_short_binstring(self) -> None:
        self._bytes_value(self.read(self.read(1)[0]), as_text=True)

    def op_unicode(self) -> None:
        self._text(
            self.readline().decode("raw_unicode_escape", "replace").encode("utf-8", "surrogatepass")
        )

    def op_binunicode(self) -> None:
        self._text(self.read(struct.unpack("<I", self.read(4))[0]))

    def op_short_binunicode(self) -> None:
        self._text(self.read(self.read(1)[0]))

    def op_binunicode8(self) -> None:
        self._text(self.read(struct.unpack("<Q", self.read(8))[0]))

    def _bytes_value(self, raw: bytes, as_text: bool = False) -> None:
        self.note_data(raw)
        self.push(raw.decode("latin-1") if as_text else raw)

    def op_binbytes(self) -> None:
        self._bytes_value(self.read(struct.unpack("<I", self.read(4))[0]))

    def op_short_binbytes(self) -> None:
        self._bytes_value(self.read(self.read(1)[0]))

    def op_binbytes8(self) -> None:
        self._bytes_value(self.read(struct.unpack("<Q", self.read(8))[0]))

    def op_bytearray8(self) -> None:
        self._bytes_value(self.read(struct.unpack("<Q", self.read(8))[0]))

    def op_next_buffer(self) -> None:
        self.push(b"<out-of-band buffer>")

    def op_readonly_buffer(self) -> None:
        pass

    # containers
    def op_empty_tuple(self) -> None:
        self.push(())

    def op_tuple(self) -> None:
        self.push(tuple(self.pop_mark()))

    def op_tuple1(self) -> None:
        self.push((self.pop(),))

    def op_tuple2(self) -> None:
        b, a = self.pop(), self.pop()
        self.push((a, b))

    def op_tuple3(self) -> None:
        c, b, a = self.pop(), self.pop(), self.pop()
        self.push((a, b, c))

    def op_empty_list(self) -> None:
        self.push([])

    def op_list(self) -> None:
        self.push(list(self.pop_mark()))

    def op_empty_dict(self) -> None:
        self.push({})

    def op_dict(self) -> None:
        items = self.pop_mark()
        self.push(_pairs(items))

    def op_empty_set(self) -> None:
        self.push(set())

    def op_frozenset(self) -> None:
        self.push(frozenset(_hashable(v) for v in self.pop_mark()))

    def op_append(self) -> None:
        value = self.pop()
        target = self.stack[-1] if self.stack else None
        if isinstance(target, list):
            target.append(value)
        elif target is not None and not isinstance(target, (list, dict)):
            self.mutated(target, (value,), "APPEND (calls .append)")

    def op_appends(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1] if self.stack else None
        if isinstance(target, list):
            target.extend(items)
        elif target is not None:
            self.mutated(target, tuple(items), "APPENDS (calls .extend)")

    def op_setitem(self) -> None:
        value, key = self.pop(), self.pop()
        target = self.stack[-1] if self.stack else None
        if isinstance(target, dict):
            target[_hashable(key)] = value
        elif target is not None:
            self.mutated(target, (key, value), "SETITEM (calls __setitem__)")

    def op_setitems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1] if self.stack else None
        if isinstance(target, dict):
            target.update(_pairs(items))
        elif target is not None:
            self.mutated(target, tuple(items), "SETITEMS (calls __setitem__)")

    def op_additems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1] if self.stack else None
        if isinstance(target, set):
            target.update(_hashable(v) for v in items)

    # memo
    def _put(self, index: int) -> None:
        if not self.stack:
            raise PickleError("PUT on empty stack")
        if len(self.memo) >= MAX_MEMO:
            raise PickleError("memo budget exceeded")
        self.memo[index] = self.stack[-1]

    def _get(self, index: int) -> None:
        if index not in self.memo:
            raise PickleError(f"memo key {index} missing")
        self.push(self.memo[index])

    def op_put(self) -> None:
        try:
            self._put(int(self.readline()))
        except ValueError:
            raise PickleError("bad PUT") from None

    def op_binput(self) -> None:
        self._put(self.read(1)[0])

    def op_long_binput(self) -> None:
        self._put(struct.unpack("<I", self.read(4))[0])

    def op_memoize(self) -> None:
        self._put(len(self.memo))

    def op_get(self) -> None:
        try:
            self._get(int(self.readline()))
        except ValueError:
            raise PickleError("bad GET") from None

    def op_binget(self) -> None:
        self._get(self.read(1)[0])

    def op_long_binget(self) -> None:
        self._get(struct.unpack("<I", self.read(4))[0])

    # names and calls
    def op_global(self) -> None:
        module = self.readline().decode("utf-8", "replace")
        name = self.readline().decode("utf-8", "replace")
        self.push(self.resolve(module, name))

    def op_stack_global(self) -> None:
        name, module = self.pop(), self.pop()
        if isinstance(module, str) and isinstance(name, str):
            self.push(self.resolve(module, name))
        else:
            self.push(self.resolve(_describe(module), _describe(name), dynamic=True))

    def op_inst(self) -> None:
        module = self.readline().decode("utf-8", "replace")
        name = self.readline().decode("utf-8", "replace")
        cls = self.resolve(module, name)
        args = tuple(self.pop_mark())
        self.called(cls, args, "INST (instantiates)")
        self.push(CallResult(cls, args))

    def op_obj(self) -> None:
        items = self.pop_mark()
        if not items:
            raise PickleError("OBJ without a class")
        cls, args = items[0], tuple(items[1:])
        self.called(cls, args, "OBJ (instantiates)")
        self.push(CallResult(cls, args))

    def op_reduce(self) -> None:
        args, func = self.pop(), self.pop()
        self.called(func, args, "REDUCE")
        self.push(CallResult(func, args))

    def op_newobj(self) -> None:
        args, cls = self.pop(), self.pop()
        self.called(cls, args, "NEWOBJ (cls.__new__)")
        self.push(CallResult(cls, args))

    def op_newobj_ex(self) -> None:
        kwargs, args, cls = self.pop(), self.pop(), self.pop()
        self.called(cls, (args, kwargs), "NEWOBJ_EX (cls.__new__)")
        self.push(CallResult(cls, args))

    def op_build(self) -> None:
        state = self.pop()
        target = self.stack[-1] if self.stack else None
        owner = target.func if isinstance(target, CallResult) else target
        if isinstance(target, CallResult):
            target.state = state
        if (
            isinstance(owner, Global)
            and owner.dotted in JOBLIB_WRAPPERS
            and isinstance(state, dict)
        ):
            self._skip_joblib_array(state)
        slots = isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict)
        if slots and isinstance(target, Global):
            # (state, slotstate) on a resolved name itself: setattr on a module or class,
            # e.g. to plant a value that a later dotted name reads back.
            self.report.events.append(
                Event(
                    "build",
                    Tier.NEVER,
                    self.op_offset,
                    f"BUILD writes attributes onto {target.dotted} itself",
                    target.dotted,
                )
            )
        elif (
            slots
            and isinstance(owner, Global)
            and classify(owner.module, owner.name, self.extra_safe) != Tier.SAFE
        ):
            assert isinstance(state, tuple)
            names = sorted(map(str, state[1]))[:5]
            self.report.events.append(
                Event(
                    "build",
                    Tier.UNKNOWN,
                    self.op_offset,
                    f"BUILD sets attributes {names} on {owner.dotted}",
                    owner.dotted,
                )
            )
        if isinstance(owner, Global) and owner.dotted not in ("collections.OrderedDict",):
            tier = classify(owner.module, owner.name, self.extra_safe)
            if tier == Tier.NEVER:
                self.report.events.append(
                    Event(
                        "build",
                        Tier.NEVER,
                        self.op_offset,
                        f"BUILD calls __setstate__ of {owner.dotted}",
                        owner.dotted,
                    )
                )

    def _skip_joblib_array(self, state: dict[object, object]) -> None:
        """joblib writes an array's bytes right after its wrapper's BUILD (after a padding
        byte and padding); an object array is a nested pickle stream instead."""
        code, elsize = _dtype_of(state.get("dtype"))
        if code is None:
            raise PickleError("joblib array wrapper without a readable dtype")
        if code.startswith("O"):
            nested = _VM(self.data, self.pos, self.report, self.extra_safe)
            self.pos = nested.run()
            return
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = self.read(1)[0]
            self.read(pad)
        count = 1
        shape = state.get("shape", ())
        for dim in shape if isinstance(shape, tuple) else ():
            if not isinstance(dim, int) or dim < 0:
                raise PickleError("joblib array wrapper with a bad shape")
            count *= dim
        self.read(count * elsize)

    def op_ext(self, size: int) -> None:
        code = int.from_bytes(self.read(size), "little")
        self.report.events.append(
            Event(
                "ext",
                Tier.NEVER,
                self.op_offset,
                f"resolves a name through the copyreg extension registry (code {code}): whatever "
                "the loading process registered",
                f"copyreg extension {code}",
            )
        )
        self.push(Global("copyreg", f"<extension {code}>", dynamic=True))

    def op_ext1(self) -> None:
        self.op_ext(1)

    def op_ext2(self) -> None:
        self.op_ext(2)

    def op_ext4(self) -> None:
        self.op_ext(4)

    def op_persid(self) -> None:
        self.push(("persistent", self.readline().decode("latin-1")))

    def op_binpersid(self) -> None:
        self.push(("persistent", self.pop()))


# Base64 of "\x80\x02".."\x80\x05" (pickle protocols 2-5) and of "PK\x03\x04" (zip).
BASE64_PREFIXES = (b"gAJ", b"gAN", b"gAS", b"gAW", b"UEsD")
JOBLIB_WRAPPERS = frozenset({"joblib.numpy_pickle.NumpyArrayWrapper"})
_DTYPE_CODE = re.compile(r"^[<>|=]?([a-zA-Z])(\d*)$")


def _dtype_of(value: object) -> tuple[str | None, int]:
    """(type code, item size in bytes) of a pickled ``numpy.dtype(...)``."""
    if not isinstance(value, CallResult) or not isinstance(value.args, tuple) or not value.args:
        return None, 0
    code = value.args[0]
    if not isinstance(code, str):
        return None, 0
    state = value.state
    if isinstance(state, tuple) and len(state) > 5 and isinstance(state[5], int) and state[5] > 0:
        return code, state[5]
    m = _DTYPE_CODE.match(code)
    if not m:
        return None, 0
    letter, digits = m.group(1), m.group(2)
    if letter == "O":
        return "O", 8
    size = int(digits) if digits else {"b": 1, "?": 1}.get(letter, 0)
    if letter == "U":
        size *= 4
    return code, size


def _pairs(items: list[object]) -> dict[object, object]:
    return {_hashable(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


def _hashable(value: object) -> object:
    try:
        hash(value)
    except TypeError:
        return repr(value)[:80]
    return value


def _describe(value: object) -> str:
    if isinstance(value, CallResult) and isinstance(value.func, Global):
        return f"<result of {value.func.dotted}>"
    if isinstance(value, Global):
        return value.dotted
    return f"<{type(value).__name__}>"


def _short_args(args: object) -> str:
    if isinstance(args, tuple):
        parts = [_short_value(a) for a in args[:4]]
        return ", ".join(parts) + (", …" if len(args) > 4 else "")
    return _short_value(args)


def _short_value(v: object) -> str:
    if isinstance(v, Global):
        return v.dotted
    if isinstance(v, CallResult):
        return f"<{_describe(v)}>"
    if isinstance(v, (str, bytes)):
        text = repr(v)
        return text if len(text) <= 60 else text[:57] + "…"
    if isinstance(v, (int, float, bool)) or v is None:
        return repr(v)
    return f"<{type(v).__name__}>"


_OPS: dict[bytes, str] = {
    b"(": "op_mark",
    b".": "op_stop",
    b"0": "op_pop",
    b"1": "op_pop_mark",
    b"2": "op_dup",
    b"F": "op_float",
    b"I": "op_int",
    b"J": "op_binint",
    b"K": "op_binint1",
    b"L": "op_long",
    b"M": "op_binint2",
    b"N": "op_none",
    b"P": "op_persid",
    b"Q": "op_binpersid",
    b"R": "op_reduce",
    b"S": "op_string",
    b"T": "op_binstring",
    b"U": "op_short_binstring",
    b"V": "op_unicode",
    b"X": "op_binunicode",
    b"a": "op_append",
    b"b": "op_build",
    b"c": "op_global",
    b"d": "op_dict",
    b"}": "op_empty_dict",
    b"e": "op_appends",
    b"g": "op_get",
    b"h": "op_binget",
    b"i": "op_inst",
    b"j": "op_long_binget",
    b"l": "op_list",
    b"]": "op_empty_list",
    b"o": "op_obj",
    b"p": "op_put",
    b"q": "op_binput",
    b"r": "op_long_binput",
    b"s": "op_setitem",
    b"t": "op_tuple",
    b")": "op_empty_tuple",
    b"u": "op_setitems",
    b"G": "op_binfloat",
    b"\x80": "op_proto",
    b"\x81": "op_newobj",
    b"\x82": "op_ext1",
    b"\x83": "op_ext2",
    b"\x84": "op_ext4",
    b"\x85": "op_tuple1",
    b"\x86": "op_tuple2",
    b"\x87": "op_tuple3",
    b"\x88": "op_true",
    b"\x89": "op_false",
    b"\x8a": "op_long1",
    b"\x8b": "op_long4",
    b"B": "op_binbytes",
    b"C": "op_short_binbytes",
    b"\x8c": "op_short_binunicode",
    b"\x8d": "op_binunicode8",
    b"\x8e": "op_binbytes8",
    b"\x8f": "op_empty_set",
    b"\x90": "op_additems",
    b"\x91": "op_frozenset",
    b"\x92": "op_newobj_ex",
    b"\x93": "op_stack_global",
    b"\x94": "op_memoize",
    b"\x95": "op_frame",
    b"\x96": "op_bytearray8",
    b"\x97": "op_next_buffer",
    b"\x98": "op_readonly_buffer",
}
_DISPATCH = {op[0]: getattr(_VM, name) for op, name in _OPS.items()}
