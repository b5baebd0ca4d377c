"""A pickle emulator that never imports or calls anything.

It reads every opcode of protocols 0–5 exactly as ``_pickle`` reads it (text integers
through ``strtol`` then ``int(…, 0)``, quoting and escapes, strict decoding, stack and
mark checks), keeps a symbolic stack and memo, resolves ``GLOBAL``/``STACK_GLOBAL``/
``INST``/``EXT*`` to names and records, for each name, whether it would only be looked
up or actually called (``REDUCE``, ``OBJ``/``INST``, ``NEWOBJ``, ``BUILD``).

Framing follows ``_pickle`` reading a file: a ``FRAME`` is one read, and an opcode that
runs past its end makes the loader skip the frame's rest and read on after it, while
``pickle.loads`` reads straight through. Any frame whose boundaries disagree with the
opcodes is reported, and the stream is then read both ways.

Several concatenated streams are read. A stream that breaks is reported with what it
did before breaking (the loader would already have run that). Budgets bound the work:
opcodes, wall time, stack, memo, marks and the size of hashed keys; a budget hit or an
internal error leaves the report incomplete, never clean.
"""

from __future__ import annotations

import _compat_pickle
import base64
import binascii
import codecs
import re
import struct
import time
import warnings
from dataclasses import dataclass, field, replace

from keyscope.modelfiles.formats.pickles import dotted
from keyscope.modelfiles.policy import Tier, classify

MAX_OPS = 5_000_000
MAX_MEMO = 1_000_000
MAX_STACK = 100_000
MAX_MARKS = 100_000
MAX_STREAMS = 16
TIME_BUDGET = 1.5  # CPU seconds of emulation for one file (or one analyze_pickle call)
BIG_VALUE = 16 * 1024 * 1024  # bytes/str values larger than this are not copied
MAX_NESTED_COPY = 512 * 1024 * 1024  # a larger embedded pickle/zip is not re-read
MAX_KEY_NODES = 1_000  # tuple/frozenset elements hashed for one dict key or set item
MAX_ANOMALIES = 8
MAX_NESTED_VALUES = 64  # values holding a pickle or zip that are scanned in turn
MAX_NAME = 64 * 1024  # characters in module + name beyond which a name is suspect
MAX_EVENTS = 10_000  # imports and calls recorded one by one; past that only new kinds
NESTED_PREFIXES = (b"\x80", b"PK\x03\x04")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1  # C long on the 64-bit platforms loaders run on
_WS = re.compile(rb"[ \t\n\x0b\x0c\r]*")  # C isspace()
_DIGITS = {
    8: re.compile(rb"[0-7]*"),
    10: re.compile(rb"[0-9]*"),
    16: re.compile(rb"[0-9a-fA-F]*"),
}
_FLOAT = re.compile(
    rb"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.IGNORECASE
)


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


@dataclass(eq=False)
class Large:
    """A bytes/str/bytearray value too large to copy: only its kind and size are kept."""

    kind: str
    size: int
    embedded: bool = False  # an embedded pickle or zip, taken out and scanned

    def __hash__(self) -> int:
        if self.kind == "bytearray":
            raise TypeError("unhashable type: 'bytearray'")
        return id(self)


@dataclass(eq=False)
class Persistent:
    """What the loader's persistent_load returns for an id (a storage, for torch)."""

    pid: object


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
    direct: bool = False  # a call of a name resolved from literal text (not computed)


@dataclass
class PickleReport:
    events: list[Event] = field(default_factory=list)
    streams: int = 0
    parsed: int = 0  # streams read to a valid STOP
    opcodes: int = 0
    complete: bool = True  # False: a budget was hit or the stream broke
    nested: list[tuple[int, bytes]] = field(default_factory=list)  # (offset, data) to scan
    anomalies: list[tuple[int, str]] = field(default_factory=list)  # framing disagreements
    deadline: float = 0.0
    _kinds: set[tuple[str, Tier, bool]] = field(default_factory=set, repr=False)

    dropped: int = 0  # events past MAX_EVENTS that added nothing new

    @property
    def worst(self) -> Tier:
        return max((e.tier for e in self.events), default=Tier.SAFE)

    def add(self, event: Event) -> None:
        """Keep an event; past MAX_EVENTS only one of a new kind, tier or directness (a
        stream of a million imports must not cost a million records, and the worst of
        them must still count)."""
        if len(event.detail) > 400 or (event.name is not None and len(event.name) > 200):
            event = replace(
                event,
                detail=_clip(event.detail, 400),
                name=None if event.name is None else _clip(event.name),
            )
        key = (event.kind, event.tier, event.direct)
        if len(self.events) >= MAX_EVENTS:
            if not self._kinds:
                self._kinds.update((e.kind, e.tier, e.direct) for e in self.events)
            if key in self._kinds:
                self.dropped += 1
                return
            self._kinds.add(key)
        self.events.append(event)

    def runs_code(self) -> bool:
        """A name read from literal text is called at the never-allow tier: what a
        loader would run even if the stream breaks later."""
        return any(e.direct and e.tier == Tier.NEVER for e in self.events)


class PickleError(Exception):
    pass


class BudgetError(PickleError):
    pass


def analyze_pickle(
    data: bytes,
    start: int = 0,
    *,
    max_streams: int = MAX_STREAMS,
    extra_safe: frozenset[str] = frozenset(),
    headerless: bool = False,
    budget: TimeBudget | None = None,
) -> PickleReport:
    """Emulate the pickle stream(s) in ``data`` from ``start``. With ``headerless``
    (no magic number told us this is a pickle) names that are not Python identifiers
    end the stream: the import would fail, and text must not become a "pickle".
    ``budget`` shares one emulation time budget among the calls for one file."""
    budget = budget if budget is not None else TimeBudget()
    began = time.thread_time()
    try:
        return _analyze(data, start, max_streams, extra_safe, headerless, began + budget.left)
    finally:
        budget.left -= time.thread_time() - began


def _analyze(
    data: bytes,
    start: int,
    max_streams: int,
    extra_safe: frozenset[str],
    headerless: bool,
    deadline: float,
) -> PickleReport:
    report = PickleReport(deadline=deadline)
    pos = start
    while report.streams < max_streams and pos < len(data):
        vm = _VM(data, pos, report, extra_safe, headerless=headerless)
        try:
            pos = vm.run()
            report.streams += 1
            report.parsed += 1
            if vm.framed:
                _reread_unframed(data, vm.start, report, extra_safe, headerless)
        except Exception as exc:  # hostile bytes: every failure is a result, never a crash
            budget = isinstance(exc, (BudgetError, MemoryError, RecursionError))
            if report.streams == 0 or budget:
                # The loader runs the first stream until it breaks: what it did before
                # the break is in the events already; the break itself means "not
                # proven safe". Bytes after a later stream are raw data (legacy torch
                # storages), not a broken pickle.
                report.complete = False
                known = isinstance(exc, (PickleError, ValueError, OverflowError, struct.error))
                what = str(exc) if known else f"{type(exc).__name__} in the emulator"
                report.events.append(
                    Event(
                        "budget" if budget else "malformed",
                        Tier.SAFE,
                        vm.op_offset,
                        f"{'analysis stopped' if budget else 'stream breaks'} at byte "
                        f"{vm.op_offset}: {what}" + (": not proven safe" if budget else ""),
                    )
                )
            report.streams += 1
            if vm.framed:
                _reread_unframed(data, vm.start, report, extra_safe, headerless)
            break
        # Another stream follows only if the next byte starts one (legacy torch files
        # hold five pickles back to back; a raw pickle is followed by nothing).
        if pos >= len(data) or data[pos : pos + 1] not in (b"\x80", b"(", b"}", b"]"):
            break
    return report


@dataclass
class TimeBudget:
    """Emulation time left for one file, in this thread's CPU time (a loaded machine
    does not make a pickle look pathological; reading the container is not counted)."""

    left: float = field(default_factory=lambda: TIME_BUDGET)


def _reread_unframed(
    data: bytes, start: int, report: PickleReport, extra_safe: frozenset[str], headerless: bool
) -> None:
    """A frame disagreed with its opcodes: ``pickle.loads`` (bytes, no frame reads) sees
    another opcode stream than a file reader. Read it that way too and keep what is new."""
    other = PickleReport(deadline=report.deadline)
    vm = _VM(data, start, other, extra_safe, headerless=headerless, file_mode=False)
    try:
        vm.run()
        report.parsed = max(report.parsed, 1)
    except BudgetError as exc:
        report.complete = False
        other.events.append(
            Event("budget", Tier.SAFE, vm.op_offset, f"reading it as pickle.loads does: {exc}")
        )
    except Exception:  # a break in this view is the loader's break, not ours
        pass
    report.opcodes += other.opcodes
    seen = {(e.kind, e.name, e.detail) for e in report.events}
    for e in other.events:
        if e.kind != "malformed" and (e.kind, e.name, e.detail) not in seen:
            report.add(e)
    report.nested.extend(other.nested)


def _py3_name(module: str, name: str) -> tuple[str, str]:
    """``_pickle``'s fix_imports for protocols 0–2 (the tables are stdlib data)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class _VM:
    def __init__(
        self,
        data: bytes,
        pos: int,
        report: PickleReport,
        extra_safe: frozenset[str],
        *,
        headerless: bool = False,
        file_mode: bool = True,
    ) -> None:
        self.data = data
        self.start = pos
        self.pos = pos
        self.report = report
        self.extra_safe = extra_safe
        self.headerless = headerless
        self.stack: list[object] = []
        self.metastack: list[list[object]] = []
        self.memo: dict[int, object] = {}
        self.op_offset = pos
        self.proto = 0  # as in _pickle: 0 until a PROTO opcode says otherwise
        # Framing as _pickle reads a file: ``end`` is the end of the frame read into
        # the buffer (None: the buffer is used up and reads go straight to the file).
        self.file_mode = file_mode
        self.end: int | None = None
        self.frame_at = 0
        self.framed = False  # a frame disagreed with the opcodes

    # --- reading, as _pickle's _Unpickler_Read/_ReadInto/_Readline --------------
    def _frame_anomaly(self, detail: str) -> None:
        self.framed = True
        if len(self.report.anomalies) < MAX_ANOMALIES:
            self.report.anomalies.append((self.frame_at, detail))

    def _leave_frame(self, what: str, skips: bool) -> None:
        assert self.end is not None
        left = self.end - self.pos
        if left > 0:
            self._frame_anomaly(
                f"the FRAME at byte {self.frame_at} ends inside the opcode at byte "
                f"{self.op_offset} ({what}); "
                + (
                    f"reading a file, _pickle skips the frame's last {left} bytes and "
                    "reads on after it, pickle.loads reads them: two different streams"
                    if skips
                    else "pickle.py refuses it, _pickle reads across"
                )
            )
        if skips:
            self.pos = max(self.pos, self.end)
        self.end = None

    def read(self, n: int) -> bytes:
        if self.end is not None and self.pos + n > self.end:
            self._leave_frame(f"it reads {n} bytes", skips=True)
        stop = self.pos + n
        if n < 0 or stop > len(self.data):
            raise PickleError("pickle data was truncated")
        out = self.data[self.pos : stop]
        self.pos = stop
        return out

    def read_into(self, n: int) -> int:
        """Counted bytes (BINBYTES*, BYTEARRAY8): the buffer's rest, then the file —
        contiguous either way. Returns where the value starts (nothing is copied)."""
        if self.end is not None and self.pos + n > self.end:
            self._leave_frame(f"a {n}-byte value", skips=False)
        at = self.pos
        if n < 0 or at + n > len(self.data):
            raise PickleError("pickle data was truncated")
        self.pos = at + n
        return at

    def readline(self) -> bytes:
        """One line, newline included (as _pickle's Readline returns it)."""
        if self.end is not None and self.data.find(b"\n", self.pos, self.end) < 0:
            self._leave_frame("a text argument", skips=True)
        nl = self.data.find(b"\n", self.pos)
        if nl < 0:
            raise PickleError("pickle data was truncated (no newline)")
        out = self.data[self.pos : nl + 1]
        self.pos = nl + 1
        return out

    # --- stack -------------------------------------------------------------
    def push(self, value: object) -> None:
        if len(self.stack) > MAX_STACK:
            raise BudgetError("stack budget exceeded")
        self.stack.append(value)

    def pop(self) -> object:
        if not self.stack:
            raise PickleError("unpickling stack underflow")
        return self.stack.pop()

    def top(self) -> object:
        if not self.stack:
            raise PickleError("unpickling stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[object]:
        if not self.metastack:
            raise PickleError("could not find MARK")
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
        if self.headerless and not dynamic and not (dotted(module) and dotted(name)):
            raise PickleError(f"{module!r}.{name!r} is not an importable name")
        if len(module) + len(name) > MAX_NAME:
            # getattr chains (x.__class__.__class__…) make any length resolvable, but no
            # honest name is this long: judged as never safe, shown clipped.
            size = len(module) + len(name) + 1
            g = Global(_clip(module), _clip(name), dynamic=True)
            detail = f"imports a {size}-character name ({g.dotted})"
            self.report.add(Event(kind, Tier.NEVER, self.op_offset, detail, g.dotted))
            return g
        g = Global(module, name, dynamic)
        tier = Tier.NEVER if dynamic else classify(module, name, self.extra_safe)
        shown = _clip(g.dotted)
        detail = (
            f"resolves a name computed at run time ({shown})" if dynamic else f"imports {shown}"
        )
        self.report.add(
            Event("dynamic-import" if dynamic else kind, tier, self.op_offset, detail, shown)
        )
        return g

    def called(self, func: object, args: object, how: str) -> None:
        if isinstance(func, Global):
            tier = Tier.NEVER if func.dynamic else classify(func.module, func.name, self.extra_safe)
            shown = _clip(func.dotted)
            detail = f"calls {shown}({_short_args(args)})"
            if func.dotted in NESTED_LOADERS and tier < Tier.NEVER:
                raw = _literal_bytes(args)
                if raw is None:
                    # torch.load(weights_only=False) of bytes made at load time: the
                    # checkpoint it runs is nowhere in the file to be scanned.
                    tier = Tier.NEVER
                    detail += (
                        ": its argument is not literal bytes the file holds (a value "
                        "computed at load time, or no bytes at all), so the nested "
                        "checkpoint it loads cannot be seen"
                    )
                elif isinstance(raw, bytes) and not _nested_head(raw):
                    # no magic number: torch.load's legacy reader still unpickles it
                    self._nested(raw)
            self.report.add(
                Event("call", tier, self.op_offset, detail, shown, direct=not func.dynamic)
            )
        elif isinstance(func, CallResult):
            # A callable produced at run time (getattr(...), operator helpers, memo
            # tricks) is called: never provably safe.
            inner = func.func.dotted if isinstance(func.func, Global) else "a computed value"
            self.report.add(
                Event(
                    "call",
                    Tier.NEVER,
                    self.op_offset,
                    f"calls an object returned by {inner} ({how})",
                    inner,
                )
            )
        elif _known_type(func):
            raise PickleError(f"{how}: a {type(func).__name__} is not callable")
        else:
            self.report.add(
                Event(
                    "call",
                    Tier.UNKNOWN,
                    self.op_offset,
                    f"{how} on a non-callable value ({type(func).__name__})",
                )
            )

    def mutated(self, target: object, args: object, how: str) -> None:
        """APPEND(S)/SETITEM(S)/ADDITEMS on something that is not a plain list, dict or
        set calls that object's method: judged by the class it is an instance of."""
        owner = target.func if isinstance(target, CallResult) else target
        if isinstance(owner, Global) and isinstance(target, CallResult):
            tier = classify(owner.module, owner.name, self.extra_safe)
            if tier > Tier.SAFE:
                self.report.add(
                    Event(
                        "call",
                        tier,
                        self.op_offset,
                        f"{how} on a {owner.dotted} instance",
                        owner.dotted,
                    )
                )
        elif _known_type(target):
            raise PickleError(f"{how} on a {type(target).__name__}")
        else:
            self.called(target, args, how)

    def note_data(self, value: bytes | str) -> None:
        head = value[:4]
        head_raw = head.encode("latin-1", "ignore") if isinstance(head, str) else head
        raw: bytes
        if head_raw.startswith(BASE64_PREFIXES) and len(value) >= 16:
            # Base64 of a pickle (gAJ…, gAS…) or a zip (UEsDB…): a nested loader's input.
            text = value.encode("latin-1", "ignore") if isinstance(value, str) else value
            try:
                raw = base64.b64decode(text.strip(), validate=False)
            except (binascii.Error, ValueError):
                return
        elif head_raw.startswith((b"PK\x03\x04", b"\x80")):
            raw = value.encode("latin-1", "ignore") if isinstance(value, str) else value
        else:
            return
        if _nested_head(raw):
            self._nested(raw)

    def _nested(self, raw: bytes) -> None:
        if len(self.report.nested) < MAX_NESTED_VALUES:
            self.report.nested.append((self.op_offset, raw))
        elif self.report.complete:
            self.report.complete = False
            self.report.add(
                Event(
                    "budget",
                    Tier.SAFE,
                    self.op_offset,
                    f"more than {MAX_NESTED_VALUES} values hold a pickle or a zip: the rest "
                    "were not scanned, not proven safe",
                )
            )

    # --- the loop ----------------------------------------------------------
    def run(self) -> int:
        report = self.report
        dispatch = _DISPATCH
        data = self.data
        while True:
            report.opcodes += 1
            if report.opcodes > MAX_OPS:
                raise BudgetError(f"opcode budget ({MAX_OPS}) exhausted")
            if not report.opcodes & 0x3FF and time.thread_time() > report.deadline:
                raise BudgetError(f"time budget ({TIME_BUDGET} s) exhausted")
            self.op_offset = self.pos
            if self.end is None and self.pos < len(data):
                code = data[self.pos]
                self.pos += 1
            else:
                code = self.read(1)[0]
            handler = dispatch.get(code)
            if handler is None:
                raise PickleError(f"invalid load key 0x{code:02x}")
            if handler(self):
                if self.end is not None and self.end > self.pos:
                    self._frame_anomaly(
                        f"the FRAME at byte {self.frame_at} goes on for "
                        f"{self.end - self.pos} bytes after STOP"
                    )
                return self.pos

    # Each handler returns True on STOP.
    def op_proto(self) -> None:
        proto = self.read(1)[0]
        if proto > 5:
            raise PickleError(f"unsupported pickle protocol: {proto}")
        self.proto = proto

    def op_frame(self) -> None:
        frame_len = _binsize(self.read(8))
        if not self.file_mode:  # pickle.loads: the frame must only be there
            if self.pos + frame_len > len(self.data):
                raise PickleError("pickle data was truncated (frame)")
            return
        left = self.end - self.pos if self.end is not None else 0
        if frame_len <= left:
            # Satisfied by the frame already buffered: _pickle ignores it.
            self._frame_anomaly(
                f"a FRAME at byte {self.op_offset} starts {left} bytes before the end of the "
                f"FRAME at byte {self.frame_at}: _pickle ignores it, pickle.py refuses it"
            )
            return
        if self.end is not None:
            self._leave_frame("a new FRAME", skips=True)
        if self.pos + frame_len > len(self.data):
            raise PickleError("pickle data was truncated (frame)")
        self.frame_at = self.op_offset
        self.end = self.pos + frame_len

    def op_stop(self) -> bool:
        if not self.stack:
            raise PickleError(
                "unexpected MARK found" if self.metastack else "unpickling stack underflow"
            )
        return True

    def op_mark(self) -> None:
        if len(self.metastack) >= MAX_MARKS:
            raise BudgetError("mark budget exceeded")
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
        self.push(self.top())

    # literals
    def op_none(self) -> None:
        self.push(None)

    def op_true(self) -> None:
        self.push(True)

    def op_false(self) -> None:
        self.push(False)

    def op_int(self) -> None:
        line = self.readline()
        if len(line) < 2:
            raise PickleError("pickle data was truncated (empty INT)")
        self.push(_load_int(line))

    def op_long(self) -> None:
        line = self.readline()
        if len(line) < 2:
            raise PickleError("pickle data was truncated (empty LONG)")
        if line[-2:-1] == b"L":
            line = line[:-2]
        self.push(_pyint0(line))

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
            raise PickleError("LONG pickle has negative byte count")
        if n > BIG_VALUE:
            self.read_into(n)  # a number that large is nobody's argument that matters
            self.push(Large("int", n))
            return
        self.push(int.from_bytes(self.read(n), "little", signed=True))

    def op_float(self) -> None:
        line = self.readline()
        if len(line) < 2:
            raise PickleError("pickle data was truncated (empty FLOAT)")
        self.push(_load_float(line))

    def op_binfloat(self) -> None:
        self.push(struct.unpack(">d", self.read(8))[0])

    def op_string(self) -> None:
        line = self.readline()[:-1]
        if len(line) >= 2 and line[:1] == line[-1:] and line[:1] in (b"'", b'"'):
            line = line[1:-1]
        else:
            raise PickleError("the STRING opcode argument must be quoted")
        if len(line) > BIG_VALUE:  # not decoded: only an embedded pickle is looked for
            self.note_data(line)
            self.push(Large("str", len(line)))
            return
        if b"\\" in line:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escapes are kept, with a warning
                line = codecs.escape_decode(line)[0]
        self._str8(line)

    def _str8(self, raw: bytes) -> None:
        """A Python 2 str: decoded with the loader's ``encoding`` (ASCII for pickle.load,
        UTF-8 for torch.load, latin-1 for others): read as the most lenient would."""
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            value = raw.decode("latin-1")
        self.note_data(value)
        self.push(value)

    def op_binstring(self) -> None:
        self._counted_str8(_binsize(self.read(4)))

    def op_short_binstring(self) -> None:
        self._counted_str8(self.read(1)[0])

    def _counted_str8(self, n: int) -> None:
        if n > BIG_VALUE:
            self._large("str", self.read_into(n), n)
            return
        self._str8(self.read(n))

    def op_unicode(self) -> None:
        line = self.readline()[:-1]
        if len(line) > BIG_VALUE:
            self.note_data(line)
            self.push(Large("str", len(line)))
            return
        value = codecs.raw_unicode_escape_decode(line, "strict")[0]
        self.note_data(value)
        self.push(value)

    def _counted_text(self, n: int) -> None:
        if n > BIG_VALUE:
            self._large("str", self.read_into(n), n)
            return
        value = self.read(n).decode("utf-8", "surrogatepass")
        self.note_data(value)
        self.push(value)

    def op_binunicode(self) -> None:
        self._counted_text(_binsize(self.read(4)))

    def op_short_binunicode(self) -> None:
        self._counted_text(self.read(1)[0])

    def op_binunicode8(self) -> None:
        self._counted_text(_binsize(self.read(8)))

    def _counted_bytes(self, n: int, kind: str = "bytes") -> None:
        at = self.read_into(n)
        if n > BIG_VALUE:
            self._large(kind, at, n)
            return
        raw = self.data[at : at + n]
        self.note_data(raw)
        self.push(bytearray(raw) if kind == "bytearray" else raw)

    def _large(self, kind: str, at: int, n: int) -> None:
        """A value too large to copy: only an embedded pickle or zip is taken out. A
        str is looked at as the bytes ``_codecs.encode(str, 'latin1')`` makes of it
        (how protocols 0-2 write bytes, e.g. pickle.dumps of a large tensor)."""
        raw: bytes | None = None
        if n <= MAX_NESTED_COPY:
            head = bytes(self.data[at : at + 16])
            if kind == "str":
                head = head.decode("utf-8", "ignore").encode("latin-1", "ignore")
            if _nested_head(head):
                raw = bytes(self.data[at : at + n])
                if kind == "str":
                    try:
                        raw = raw.decode("utf-8").encode("latin-1")
                    except UnicodeError:
                        raw = None
        if raw is not None:
            self._nested(raw)
        self.push(Large(kind, n, raw is not None))

    def op_binbytes(self) -> None:
        self._counted_bytes(_binsize(self.read(4)))

    def op_short_binbytes(self) -> None:
        self._counted_bytes(self.read(1)[0])

    def op_binbytes8(self) -> None:
        self._counted_bytes(_binsize(self.read(8)))

    def op_bytearray8(self) -> None:
        self._counted_bytes(_binsize(self.read(8)), "bytearray")

    def op_next_buffer(self) -> None:
        self.push(b"<out-of-band buffer>")

    def op_readonly_buffer(self) -> None:
        self.top()

    # containers
    def op_empty_tuple(self) -> None:
        self.push(())

    def op_tuple(self) -> None:
        self.push(tuple(self.pop_mark()))

    def op_tuple1(self) -> None:
        self.push((self.pop(),))

    def op_tuple2(self) -> None:
        if len(self.stack) < 2:
            raise PickleError("unpickling stack underflow")
        b, a = self.pop(), self.pop()
        self.push((a, b))

    def op_tuple3(self) -> None:
        if len(self.stack) < 3:
            raise PickleError("unpickling stack underflow")
        c, b, a = self.pop(), self.pop(), self.pop()
        self.push((a, b, c))

    def op_empty_list(self) -> None:
        self.push([])

    def op_list(self) -> None:
        self.push(self.pop_mark())

    def op_empty_dict(self) -> None:
        self.push({})

    def op_dict(self) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise PickleError("odd number of items for DICT")
        self.push(_pairs(items))

    def op_empty_set(self) -> None:
        self.push(set())

    def op_frozenset(self) -> None:
        self.push(frozenset(_key(v) for v in self.pop_mark()))

    def op_append(self) -> None:
        if len(self.stack) < 2:
            raise PickleError("unpickling stack underflow")
        value = self.pop()
        target = self.stack[-1]
        if type(target) is list:
            target.append(value)
        else:
            self.mutated(target, (value,), "APPEND (calls .extend or .append)")

    def op_appends(self) -> None:
        items = self.pop_mark()
        target = self.top()
        if not items:
            return
        if type(target) is list:
            target.extend(items)
        else:
            self.mutated(target, tuple(items), "APPENDS (calls .extend)")

    def op_setitem(self) -> None:
        if len(self.stack) < 3:
            raise PickleError("unpickling stack underflow")
        value, key = self.pop(), self.pop()
        target = self.stack[-1]
        if type(target) is dict:
            target[_key(key)] = value
        elif type(target) is list and isinstance(key, int):
            pass  # list[i] = value
        else:
            self.mutated(target, (key, value), "SETITEM (calls __setitem__)")

    def op_setitems(self) -> None:
        items = self.pop_mark()
        target = self.top()
        if not items:
            return
        if len(items) % 2:
            raise PickleError("odd number of items for SETITEMS")
        if type(target) is dict:
            target.update(_pairs(items))
        else:
            self.mutated(target, tuple(items), "SETITEMS (calls __setitem__)")

    def op_additems(self) -> None:
        items = self.pop_mark()
        target = self.top()
        if not items:
            return
        if type(target) is set:
            target.update(_key(v) for v in items)
        else:
            self.mutated(target, tuple(items), "ADDITEMS (calls .add)")

    # memo
    def _put(self, index: int) -> None:
        value = self.top()
        if index < 0:
            raise PickleError("negative PUT argument")
        if len(self.memo) >= MAX_MEMO and index not in self.memo:
            raise BudgetError("memo budget exceeded")
        self.memo[index] = value

    def _get(self, index: int) -> None:
        if index not in self.memo:
            raise PickleError(f"Memo value not found at index {index}")
        self.push(self.memo[index])

    def op_put(self) -> None:
        line = self.readline()
        if len(line) < 2:
            raise PickleError("pickle data was truncated (empty PUT)")
        self.top()  # _pickle checks the stack before it parses the index
        self._put(_pylong(line, 10))

    def op_binput(self) -> None:
        self._put(self.read(1)[0])

    def op_long_binput(self) -> None:
        self._put(struct.unpack("<I", self.read(4))[0])

    def op_memoize(self) -> None:
        self._put(len(self.memo))

    def op_get(self) -> None:
        line = self.readline()
        if len(line) < 2:
            raise PickleError("pickle data was truncated (empty GET)")
        self._get(_pylong(line, 10))

    def op_binget(self) -> None:
        self._get(self.read(1)[0])

    def op_long_binget(self) -> None:
        self._get(struct.unpack("<I", self.read(4))[0])

    # names and calls
    def _name_line(self, encoding: str) -> str:
        line = self.readline()
        if len(line) < 2:
            raise PickleError("pickle data was truncated (empty name)")
        if len(line) > BIG_VALUE:
            raise BudgetError(f"a name of {len(line)} bytes")
        return line[:-1].decode(encoding)

    def op_global(self) -> None:
        module = self._name_line("utf-8")
        name = self._name_line("utf-8")
        self.push(self.resolve(module, name))

    def op_stack_global(self) -> None:
        if len(self.stack) < 2:
            raise PickleError("unpickling stack underflow")
        name, module = self.pop(), self.pop()
        if isinstance(module, str) and isinstance(name, str):
            self.push(self.resolve(module, name))
        elif any(_known_type(v) and not isinstance(v, str) for v in (module, name)):
            raise PickleError("STACK_GLOBAL requires str")
        else:
            self.push(self.resolve(_describe(module), _describe(name), dynamic=True))

    def op_inst(self) -> None:
        args = tuple(self.pop_mark())  # _pickle finds the MARK before it reads the name
        module = self._name_line("ascii")
        name = self._name_line("ascii")
        cls = self.resolve(module, name)
        self.called(cls, args, "INST (instantiates)")
        self.push(CallResult(cls, args))

    def op_obj(self) -> None:
        items = self.pop_mark()
        if not items:
            raise PickleError("unpickling stack underflow (OBJ without a class)")
        cls, args = items[0], tuple(items[1:])
        self.called(cls, args, "OBJ (instantiates)")
        self.push(CallResult(cls, args))

    def op_reduce(self) -> None:
        if len(self.stack) < 2:
            raise PickleError("unpickling stack underflow")
        args, func = self.pop(), self.pop()
        if _known_type(args) and not isinstance(args, tuple):
            raise PickleError("REDUCE: the argument list must be a tuple")
        self.called(func, args, "REDUCE")
        self.push(CallResult(func, args))

    def op_newobj(self) -> None:
        if len(self.stack) < 2:
            raise PickleError("unpickling stack underflow")
        args, cls = self.pop(), self.pop()
        if _known_type(args) and not isinstance(args, tuple):
            raise PickleError("NEWOBJ args argument must be a tuple")
        self.called(cls, args, "NEWOBJ (cls.__new__)")
        self.push(CallResult(cls, args))

    def op_newobj_ex(self) -> None:
        if len(self.stack) < 3:
            raise PickleError("unpickling stack underflow")
        kwargs, args, cls = self.pop(), self.pop(), self.pop()
        if (_known_type(args) and not isinstance(args, tuple)) or (
            _known_type(kwargs) and not isinstance(kwargs, dict)
        ):
            raise PickleError("NEWOBJ_EX arguments must be a tuple and a dict")
        self.called(cls, (args, kwargs), "NEWOBJ_EX (cls.__new__)")
        self.push(CallResult(cls, args))

    def op_build(self) -> None:
        if len(self.stack) < 2:
            raise PickleError("unpickling stack underflow")
        state = self.pop()
        target = self.stack[-1]
        if _known_type(target) and state is not None:
            raise PickleError(f"BUILD: a {type(target).__name__} takes no state")
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
            self.report.add(
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
            names = sorted(_short_value(k) for k in list(state[1])[:5])
            self.report.add(
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
                self.report.add(
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
            nested = _VM(
                self.data, self.pos, self.report, self.extra_safe, file_mode=self.file_mode
            )
            self.pos = nested.run()
            self.framed |= nested.framed
            self.end = None  # joblib reads on from the file after the nested stream
            return
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = self.read(1)[0]
            self.read_into(pad)
        count = 1
        shape = state.get("shape", ())
        for dim in shape if isinstance(shape, tuple) else ():
            if not isinstance(dim, int) or dim < 0:
                raise PickleError("joblib array wrapper with a bad shape")
            count *= dim
        self.read_into(count * elsize)

    def op_ext(self, size: int) -> None:
        code = int.from_bytes(self.read(size), "little", signed=size == 4)
        if code <= 0:
            raise PickleError("EXT specifies code <= 0")
        self.report.add(
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
        line = self.readline()[:-1]
        self.push(Persistent(line.decode("ascii")))

    def op_binpersid(self) -> None:
        self.push(Persistent(self.pop()))


def _binsize(raw: bytes) -> int:
    """_pickle's calc_binsize: unsigned little-endian, at most PY_SSIZE_T_MAX."""
    n = int.from_bytes(raw, "little")
    if n > _LONG_MAX:
        raise OverflowError("size exceeds the system's maximum")
    return n


def _clip(text: str, n: int = 200) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _cstr(line: bytes) -> bytes:
    """What C sees of a line: everything up to the first NUL byte."""
    nul = line.find(b"\0")
    return line if nul < 0 else line[:nul]


def _pylong(text: bytes, base: int) -> int:
    """PyLong_FromString(s, NULL, base) on the C string: whitespace around, underscores,
    0x/0o/0b prefixes for base 0; a ValueError otherwise."""
    s = _cstr(text)
    try:
        return int(s, base)
    except ValueError:
        raise PickleError(f"could not convert {s[:40]!r} to int") from None


def _pyint0(text: bytes) -> int | Large:
    """int(s, 0) as INT and LONG read it; a literal too long to matter is only checked
    (a regular expression, no big-number arithmetic) and kept as its size."""
    s = _cstr(text)
    if len(s) <= 4096:
        return _pylong(s, 0)
    if not _int_literal(s):
        raise PickleError("could not convert a long text to int")
    return Large("int", len(s))


def _int_literal(s: bytes) -> bool:
    """Whether int(s, 0) accepts ``s`` (without doing the arithmetic): a sign, a 0x/0o/0b
    prefix or a decimal without leading zeros, digits with single underscores between."""
    t = s.strip(b" \t\n\x0b\x0c\r")
    if t[:1] in (b"+", b"-"):
        t = t[1:]
    prefix = t[:2].lower()
    digits = {b"0x": b"0123456789abcdefABCDEF", b"0o": b"01234567", b"0b": b"01"}.get(prefix)
    if digits is not None:
        body = t[2:].removeprefix(b"_")
    else:
        digits, body = b"0123456789", t
        if body[:1] == b"0" and body.strip(b"0_"):
            return False  # 0123 is no Python literal
    return (
        bool(body)
        and not body.endswith(b"_")
        and b"__" not in body
        and not body.startswith(b"_")
        and not body.translate(None, digits + b"_")
    )


def _strtol(s: bytes) -> tuple[int, int, bool]:
    """glibc strtol(s, &end, 0): (value, end index, overflowed). Leading whitespace, a
    sign, 0x for hex and a leading 0 for octal; no digits at all leaves end at 0."""
    i = _WS.match(s).end()  # type: ignore[union-attr]
    n = len(s)
    sign = 1
    if i < n and s[i] in b"+-":
        sign = -1 if s[i] == 0x2D else 1
        i += 1
    base = 10
    if s[i : i + 2] in (b"0x", b"0X") and i + 2 < n and s[i + 2] in b"0123456789abcdefABCDEF":
        base, i = 16, i + 2
    elif s[i : i + 1] == b"0":
        base = 8
    j = _DIGITS[base].match(s, i).end()  # type: ignore[union-attr]
    if j == i:
        return 0, 0, False
    if j - i - (len(s[i:j]) - len(s[i:j].lstrip(b"0"))) > 22:
        return 0, j, True  # more digits than any C long has
    value = sign * int(s[i:j], base)
    return value, j, not _LONG_MIN <= value <= _LONG_MAX


def _load_int(line: bytes) -> int | bool | Large:
    """load_int: strtol in base 0 (so 010 is 8), falling back to int(s, 0) when strtol
    stops early or overflows (so 0o1, 0b1, 1_0 and huge numbers); 00/01 are bools."""
    s = _cstr(line)
    x, end, overflow = _strtol(s)
    if overflow or s[end : end + 1] not in (b"\n", b""):
        return _pyint0(s)
    if len(line) == 3 and x in (0, 1):
        return x == 1
    return x


def _load_float(line: bytes) -> float:
    """load_float: PyOS_string_to_double must consume the C string up to the newline
    (no whitespace, no underscores); overflow is an error."""
    s = _cstr(line[:-1])
    if not _FLOAT.fullmatch(s):
        raise PickleError("could not convert string to float")
    value = float(s)
    if value in (float("inf"), float("-inf")) and b"inf" not in s.lower():
        raise PickleError("FLOAT value too large")
    return value


# Library functions that load a checkpoint from their argument (weights_only=False):
# benign when that argument is literal bytes, which are then scanned as a nested stream.
NESTED_LOADERS = frozenset({"torch.storage._load_from_bytes"})
LATIN1 = frozenset({"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "l1"})


def _literal_bytes(args: object) -> bytes | bool | None:
    """The one argument of a nested loader when the file holds it as it is: bytes,
    a bytearray, ``_codecs.encode(str, 'latin1')`` (how protocols 0-2 write bytes),
    or True for a value too large to copy that was taken out and scanned; None when
    it is computed at load time (or is anything else)."""
    if not (isinstance(args, tuple) and len(args) == 1):
        return None
    (arg,) = args
    if isinstance(arg, (bytes, bytearray)):
        return bytes(arg)
    if isinstance(arg, Large):
        return True if arg.embedded and arg.kind != "int" else None
    if (
        isinstance(arg, CallResult)
        and isinstance(arg.func, Global)
        and not arg.func.dynamic
        and arg.func.dotted == "_codecs.encode"
        and isinstance(arg.args, tuple)
        and len(arg.args) == 2
        and isinstance(arg.args[0], (str, Large))
        and isinstance(arg.args[1], str)
        and arg.args[1].lower() in LATIN1
    ):
        if isinstance(arg.args[0], Large):
            return True if arg.args[0].embedded else None
        try:
            return arg.args[0].encode("latin-1")
        except UnicodeEncodeError:
            return None
    return None


def _nested_head(raw: bytes) -> bool:
    return len(raw) >= 8 and (
        raw.startswith(b"PK\x03\x04") or (raw[:1] == b"\x80" and raw[1:2] in b"\x02\x03\x04\x05")
    )


def _known_type(value: object) -> bool:
    """A value whose type the emulator knows for certain (not a name, a call result or
    a persistent_load result, which could be anything at run time)."""
    return not isinstance(value, (Global, CallResult, Persistent))


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
    return {_key(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


_HASHABLE = (str, bytes, int, float, bool, type(None), Global, CallResult, Persistent, Large)


def _key(value: object) -> object:
    """``value`` as a dict key or set item, or the error _pickle raises for an unhashable
    one. Nested tuples are walked first: hashing a deeply nested tuple recurses in C
    and can crash the interpreter, so past MAX_KEY_NODES elements it is a budget stop."""
    if isinstance(value, _HASHABLE) and not isinstance(value, Large):
        return value
    todo, seen = [value], 0
    while todo:
        v = todo.pop()
        if isinstance(v, (tuple, frozenset)):
            seen += len(v)
            if seen > MAX_KEY_NODES:
                raise BudgetError("a dict key or set item nests too many values to hash")
            todo.extend(v)
        elif not isinstance(v, _HASHABLE) or (isinstance(v, Large) and v.kind == "bytearray"):
            raise PickleError(f"unhashable type: {type(v).__name__!r} as a dict key or set item")
    return value


def _describe(value: object) -> str:
    if isinstance(value, CallResult) and isinstance(value.func, Global):
        return f"<result of {_clip(value.func.dotted)}>"
    if isinstance(value, Global):
        return _clip(value.dotted)
    return f"<{type(value).__name__}>"


def _short_args(args: object) -> str:
    if isinstance(args, tuple):
        parts = [_short_value(a) for a in args[:4]]
        return ", ".join(parts) + (", …" if len(args) > 4 else "")
    return _short_value(args)


def _short_value(v: object) -> str:
    if isinstance(v, Global):
        return _clip(v.dotted, 60)
    if isinstance(v, CallResult):
        return f"<{_describe(v)}>"
    if isinstance(v, (str, bytes)):
        text = repr(v[:60])  # never repr a whole value: it may be megabytes
        return text if len(text) <= 60 and len(v) <= 60 else text[:57] + "…"
    if isinstance(v, int) and v.bit_length() > 64:
        return f"<{v.bit_length()}-bit int>"
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
OPCODES = frozenset(_DISPATCH)
