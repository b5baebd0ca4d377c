"""Model formats without pickles, where code hides in configuration: GGUF chat
templates (Jinja rendered by inference servers), Keras configs (Lambda layers,
arbitrary modules), and safetensors headers (which must describe only tensors)."""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass

MAX_GGUF_KV = 100_000
MAX_STRING = 64 * 1024 * 1024
_TEMPLATE_GADGETS = re.compile(
    r"__class__|__subclasses__|__globals__|__builtins__|__import__|__mro__|__base__|"
    r"__init__|\bimport\b|popen|\bos\.|subprocess|\beval\b|\bexec\b|cycler|joiner|lipsum"
)
SAFETENSORS_DTYPES = frozenset(
    "BOOL U8 I8 F8_E5M2 F8_E4M3 F8_E8M0 F4 F6_E2M3 F6_E3M2 I16 U16 F16 BF16 I32 U32 F32 "
    "F64 I64 U64 C64".split()
)
KERAS_MODULE = re.compile(r"^(keras|tf_keras|tensorflow\.keras)(\.|$)")


@dataclass(frozen=True)
class StructuredIssue:
    where: tuple[str, ...]
    severity: str  # critical | high | medium | low
    verdict: str  # executes-code | unknown-import | anomaly
    detail: str


def gguf_issues(data: bytes) -> list[StructuredIssue]:
    """A chat template that reaches Python internals renders into code execution on
    servers that do not sandbox Jinja."""
    try:
        template = _gguf_string(data, "tokenizer.chat_template")
    except (struct.error, ValueError, UnicodeDecodeError, IndexError, OverflowError):
        return [StructuredIssue((), "low", "anomaly", "GGUF metadata cannot be read")]
    if template is None:
        return []
    hits = sorted(set(_TEMPLATE_GADGETS.findall(template)))
    if not hits:
        return []
    return [
        StructuredIssue(
            ("tokenizer.chat_template",),
            "critical",
            "executes-code",
            "the chat template reaches Python internals "
            f"({', '.join(hits[:6])}): an unsandboxed Jinja renderer runs it",
        )
    ]


def _gguf_string(data: bytes, wanted: str) -> str | None:
    pos = 4
    (version,) = struct.unpack_from("<I", data, pos)
    pos += 4
    if version < 2:
        raise ValueError("old GGUF")
    _tensors, kv_count = struct.unpack_from("<QQ", data, pos)
    pos += 16
    for _ in range(min(kv_count, MAX_GGUF_KV)):
        key, pos = _gstr(data, pos)
        (vtype,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if vtype == 8:
            value, pos = _gstr(data, pos)
            if key == wanted:
                return value
        else:
            pos = _gskip(data, pos, vtype)
    return None


_GGUF_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _gstr(data: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<Q", data, pos)
    if n > MAX_STRING or pos + 8 + n > len(data):
        raise ValueError("GGUF string out of range")
    return data[pos + 8 : pos + 8 + n].decode("utf-8"), pos + 8 + n


def _gskip(data: bytes, pos: int, vtype: int) -> int:
    if vtype in _GGUF_SIZES:
        return pos + _GGUF_SIZES[vtype]
    if vtype == 8:
        return _gstr(data, pos)[1]
    if vtype == 9:
        item, count = struct.unpack_from("<IQ", data, pos)
        pos += 12
        if item in _GGUF_SIZES:
            pos += count * _GGUF_SIZES[item]
        else:
            for _ in range(min(count, MAX_GGUF_KV)):
                pos = _gskip(data, pos, item)
        if pos > len(data):  # an array count near 2**64 points far past the end
            raise ValueError("GGUF array runs past the end of the file")
        return pos
    raise ValueError(f"GGUF value type {vtype}")


def keras_config_issues(config_text: str, where: tuple[str, ...]) -> list[StructuredIssue]:
    """Lambda layers carry bytecode; configs that name non-Keras modules import them."""
    issues: list[StructuredIssue] = []
    try:
        config = json.loads(config_text)
    except (json.JSONDecodeError, RecursionError):
        return [StructuredIssue(where, "low", "anomaly", "Keras config is not valid JSON")]
    for node in _walk_json(config):
        cls = node.get("class_name")
        module = node.get("module")
        if cls in ("Lambda", "TFSMLayer"):
            issues.append(
                StructuredIssue(
                    where,
                    "critical",
                    "executes-code",
                    f"a Keras {cls} layer: loading it runs code "
                    "(Lambda bytecode, or an external SavedModel)",
                )
            )
        elif isinstance(module, str) and module and not KERAS_MODULE.match(module):
            issues.append(
                StructuredIssue(
                    where,
                    "medium",
                    "unknown-import",
                    f"the config imports module {module!r} (class {cls!r})",
                )
            )
    return issues


def _walk_json(value: object) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    stack = [value]
    while stack and len(out) < 100_000:
        v = stack.pop()
        if isinstance(v, dict):
            out.append(v)
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return out


def h5_keras_issues(data: bytes) -> list[StructuredIssue]:
    """HDF5 Keras models keep their config as a JSON attribute; look for it in place."""
    issues: list[StructuredIssue] = []
    if re.search(rb'"class_name":\s*"(Lambda|TFSMLayer)"', data):
        issues.append(
            StructuredIssue(
                ("model_config",),
                "critical",
                "executes-code",
                "a Keras Lambda/TFSMLayer layer in the HDF5 model config: loading it runs code",
            )
        )
    return issues


def safetensors_issues(data: bytes) -> list[StructuredIssue]:
    """The header must be JSON describing tensors that lie inside the file."""
    if len(data) < 8:
        return [StructuredIssue((), "low", "anomaly", "safetensors file is truncated")]
    (n,) = struct.unpack_from("<Q", data, 0)
    try:
        header = json.loads(data[8 : 8 + n])
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return [StructuredIssue((), "low", "anomaly", "safetensors header is not valid JSON")]
    if not isinstance(header, dict):
        return [StructuredIssue((), "low", "anomaly", "safetensors header is not an object")]
    size = len(data) - 8 - n
    for name, t in header.items():
        if name == "__metadata__":
            continue
        dtype = t.get("dtype") if isinstance(t, dict) else None
        if not isinstance(dtype, str) or dtype not in SAFETENSORS_DTYPES:
            return [
                StructuredIssue(
                    (), "low", "anomaly", f"safetensors tensor {name!r} has no known dtype"
                )
            ]
        offsets = t.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= size
        ):
            return [
                StructuredIssue(
                    (), "low", "anomaly", f"safetensors tensor {name!r} points outside the file"
                )
            ]
    return []
