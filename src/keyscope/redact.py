"""Keep secrets out of every output: mask known secrets and anything shaped like one,
before any text is cut to width; escape what a terminal would obey."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import re
from collections.abc import Callable, Collection, Iterable
from typing import Any, TypeVar, cast
from urllib.parse import quote

MASK = "…"
SHOWN = 4  # characters of a secret left visible
# Room either side of a snippet that is masked along with it: a secret that a cut
# would split is whole in here, so it is recognised and masked before the cut.
MARGIN = 1024
# name=value, URL-encoded once or twice, JSON-escaped, or a JSON member "name": "value"
_ASSIGN = r"(?:=|%3d|%253d|\\u003d|\"\s*:\s*\")"
# The value after sig= (SAS), AccountKey= / SharedAccessKey= (connection strings).
_SIG_VALUE = re.compile(rf"(?i)sig{_ASSIGN}(?!REDACTED)([A-Za-z0-9%+/=\\]{{4,}})")
_KEY_FIELD = re.compile(rf"(?i)(?:account|sharedaccess)key{_ASSIGN}([A-Za-z0-9%+/=\\]{{8,}})")
# AWS: a presigned URL's signature and session token, a secret access key or session
# token by its name (INI, env, JSON, YAML, keyword arguments).
_AWS_FIELD = re.compile(
    rf"(?i)(?:x-amz-signature|(?<=[?&;])signature|x-amz-security-token|secret_?access_?key"
    rf"|secret_?key|session_?token|security_?token)(?:{_ASSIGN}|[\"']?[ \t]*[:=][ \t]*[\"']?)"
    r"([A-Za-z0-9%+/=\\]{8,})"
)
# What _AWS_FIELD's names hold, lower-cased (``secret_?access_?key`` holds "secret_?key"
# or "secretaccess"/"secret_access").
_AWS_WORDS = ("x-amz-signature", "?signature", "&signature", ";signature", "x-amz-security-token",
              "secretaccess", "secret_access", "secretkey", "secret_key", "sessiontoken",
              "session_token", "securitytoken", "security_token")
# The letters outside ASCII that a case-insensitive pattern takes for ASCII ones and
# lower() does not turn into them (K, the Kelvin sign, lower() does).
_FOLD = {0x130: "i", 0x131: "i", 0x17F: "s"}
_FOLDED = re.compile("[\u0130\u0131\u017f]")
# What follows "sig" in _SIG_VALUE (_ASSIGN's first characters), and "secret" in _GCP_FIELD.
_SIG_GATE = re.compile(r'sig[=%\\"]')
_GCP_GATE = re.compile(r'(?<![a-z_])secret[=%\\"\'\t :]')
# Google Cloud: a V4 signed URL's signature, an HMAC secret by its name, the body of a
# PEM private key (a service-account key, also with JSON's escaped line breaks), and
# API keys (shown as ``AIza…``).
_GCP_FIELD = re.compile(
    rf"(?i)(?:x-goog-signature|(?<![a-z_])secret)(?:{_ASSIGN}|[\"']?[ \t]*[:=][ \t]*[\"']?)"
    r"([A-Za-z0-9%+/=\\]{8,})"
)
_PEM_BODY = re.compile(
    r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"
    r"((?:(?:Proc-Type|DEK-Info):[^\r\n\\]*|\\+[rn]|[\r\n]|[A-Za-z0-9+/=]){8,})"
)
# Platform tokens (their prefix shown), the secret part of Slack and Teams webhook URLs,
# JWTs, PuTTY private lines, and W&B / Kaggle keys by their label.
_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_-])(?:hf_|api_org_|sk-ant-|r8_|dapi|gh[pousr]_|github_pat_|GR1348941|KGAT_"
    r"|wandb_v1_"
    r"|gl(?:pat|dt|rt|ptt|ft|imt|agent|oas|soat|cbt)-|xox[bpare]-|xoxe\.xox[bp]-|xapp-)"
    r"([A-Za-z0-9_.-]{16,400})"
    r"|(?<![A-Za-z0-9_-])sk-([A-Za-z0-9_-]{0,220}T3BlbkFJ[A-Za-z0-9_-]*)"
    r"|hooks\.slack\.com/(?:services|workflows|triggers)/[A-Z0-9]+/[A-Z0-9]+/([A-Za-z0-9/]{8,})"
    r"|/IncomingWebhook/([0-9a-f]{32}/[0-9a-f-]{36}(?:/V2[A-Za-z0-9_-]+)?)"
    r"|(?<![A-Za-z0-9_-])(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)"
    r"|Private-Lines: \d+\r?\n"
    r"([A-Za-z0-9+/=]{1,80}(?:\r?\n[A-Za-z0-9+/=]{1,80}(?![A-Za-z0-9+/=-]))*)"
    r"|(?i:wandb[_-]?api[_-]?key|kaggle[_-]?key|\"key\"|api\.wandb\.ai\s+login\s+\S+\s+password)"
    r"[\"']?[ \t]*[=:]?[ \t]*[\"']?([0-9a-fA-F]{32,40})"
)
# Where _TOKEN can match: its case-sensitive prefixes (in the text; the labels of its
# case-insensitive part, "wandb", "kaggle" and '"key"', are looked for in lower case).
_TOKEN_HINT = re.compile(
    r"hf_|api_org_|sk-|r8_|dapi|gh[pousr]_|github_pat_|GR1348941|KGAT_|wandb_v1_"
    r"|gl(?:pat|dt|rt|ptt|ft|imt|agent|oas|soat|cbt)-|xox[bpare]-|xoxe\.xox|xapp-"
    r"|hooks\.slack\.com/|/IncomingWebhook/|eyJ|Private-Lines: "
)
_API_KEY = re.compile(r"AIza[0-9A-Za-z_-]{35}")
# An account key: 64 bytes in Base64, also URL-encoded.
_KEY_VALUE = re.compile(r"[A-Za-z0-9+/]{86}==")
_KEY_VALUE_QUOTED = re.compile(r"(?:[A-Za-z0-9+/]|%2[BbFf]){86}(?:==|%3[Dd]%3[Dd])")
# A Base64 run long enough to hide a credential (a Kubernetes Secret, a data: URL).
# (Each run is tried from its first character only: a shorter run fails wherever it starts.)
_B64_RUN = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40,}={0,2}")
_HEX = re.compile(r"[0-9A-Fa-f]+")
# A run of the characters a secret value is made of (Base64, URL-encoded, escaped).
_RUN = re.compile(r"[A-Za-z0-9%+/=\\]*")
_RUN_END = re.compile(r"[A-Za-z0-9%+/=\\]*\Z")
_T = TypeVar("_T")


def mask_secret(secret: str) -> str:
    """The first four characters, then an ellipsis."""
    return secret[:SHOWN] + MASK


def _forms(secrets: Iterable[str]) -> list[str]:
    out: set[str] = set()
    for secret in secrets:
        plain = {secret, quote(secret, safe=""), quote(secret, safe="/")}
        out |= plain | {f.replace("/", "\\/") for f in plain}  # JSON-escaped slashes
    return sorted((f for f in out if len(f) >= 8), key=len, reverse=True)


@functools.lru_cache(maxsize=4096)  # a report repeats its hashes and fingerprints
def _decodes_to_secret(run: str, depth: int) -> bool:
    """A Base64 run whose decoded text (at any alignment) holds something secret-shaped."""
    for skip in range(4):
        body = run[skip:].rstrip("=")
        body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
        try:
            decoded = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        if _spans(decoded.decode("latin-1"), (), depth + 1):
            return True
    return False


def _may_hold_token(text: str) -> bool:
    """Does ``text`` hold something every ``_TOKEN_HINT`` needs (``_``, ``-``, or one of
    the hints without either)? Several times faster than the pattern's search."""
    return (
        "_" in text
        or "-" in text
        or "eyJ" in text
        or "dapi" in text
        or "GR1348941" in text
        or "xoxe." in text
        or "hooks." in text
        or "/IncomingWebhook/" in text
    )


# Base64 characters as "a", all else (any byte of UTF-8) as a space: a run of 40 "a"s
# in the translated text is where _B64_RUN matches (found by one substring search)
_B64_BYTES = bytes(
    ord("a") if chr(i).isascii() and (chr(i).isalnum() or chr(i) in "+/") else ord(" ")
    for i in range(256)
)
_B64_40 = b"a" * 40


def _has_b64_run(text: str) -> bool:
    """Does ``text`` hold a run of 40 Base64 characters (where ``_B64_RUN`` can match)?"""
    return _B64_40 in text.encode("utf-8", "surrogatepass").translate(_B64_BYTES)


def _b64_runs(text: str) -> list[tuple[int, int]]:
    """Where ``_B64_RUN`` matches in ``text``; for ASCII text found by substring searches
    in its translation (several times faster than the pattern's search)."""
    if not text.isascii():
        return [m.span() for m in _B64_RUN.finditer(text)] if _has_b64_run(text) else []
    shape = text.encode("ascii").translate(_B64_BYTES)
    runs: list[tuple[int, int]] = []
    start = shape.find(_B64_40)
    while start >= 0:
        end = shape.find(b" ", start + 40)
        end = len(text) if end < 0 else end
        pad = end
        while pad < len(text) and pad - end < 2 and text[pad] == "=":
            pad += 1
        runs.append((start, pad))
        start = shape.find(_B64_40, pad)
    return runs


def _spans(text: str, forms: Collection[str], depth: int = 0) -> list[tuple[int, int]]:
    """Where secrets sit in ``text``: merged, sorted ``(start, end)`` ranges."""
    found: list[tuple[int, int]] = []
    for form in forms:
        i = text.find(form)
        while i >= 0:
            found.append((i, i + len(form)))
            i = text.find(form, i + len(form))
    # Each pattern runs only where the words it needs occur (the case-insensitive ones
    # looked for in the lower-cased text): most strings of a report need none of them.
    folded = not text.isascii() and _FOLDED.search(text)
    lower = (text.translate(_FOLD) if folded else text).lower()
    if "sig" in lower and _SIG_GATE.search(lower):
        found.extend(m.span(1) for m in _SIG_VALUE.finditer(text))
    if "accountkey" in lower or "sharedaccesskey" in lower:
        found.extend(m.span(1) for m in _KEY_FIELD.finditer(text))
    if (
        "signature" in lower or "secret" in lower or "session" in lower or "security" in lower
    ) and any(word in lower for word in _AWS_WORDS):
        found.extend(m.span(1) for m in _AWS_FIELD.finditer(text))
    if "x-goog-signature" in lower or ("secret" in lower and _GCP_GATE.search(lower)):
        found.extend(m.span(1) for m in _GCP_FIELD.finditer(text))
    if "PRIVATE KEY-----" in text:
        found.extend(m.span(1) for m in _PEM_BODY.finditer(text))
    if (
        _may_hold_token(text) and _TOKEN_HINT.search(text)
    ) or "wandb" in lower or "kaggle" in lower or '"key"' in lower:
        found.extend(
            next(m.span(i) for i in range(1, 8) if m.start(i) >= 0)
            for m in _TOKEN.finditer(text)
        )
    if "AIza" in text:
        found.extend(m.span() for m in _API_KEY.finditer(text))
    if "==" in text:
        found.extend(m.span() for m in _KEY_VALUE.finditer(text))
    if "%3d%3d" in lower:
        found.extend(m.span() for m in _KEY_VALUE_QUOTED.finditer(text))
    if depth < 2 and len(text) >= 40:
        # a run already masked whole (a known secret, a key) is not decoded again, nor a
        # run of hex digits (a commit, a blob id, a log hash): Base64 of any real text
        # holds other letters, and what hex digits decode to is not a credential's text
        found.extend(
            (start, end)
            for start, end in _b64_runs(text)
            if not any(lo <= start and end <= hi for lo, hi in found)
            and not _HEX.fullmatch(text, start, end)
            and _decodes_to_secret(text[start:end], depth)
        )
    found.sort()
    merged: list[tuple[int, int]] = []
    for start, end in found:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _apply(
    text: str, spans: list[tuple[int, int]], start: int = 0, end: int = 0
) -> tuple[str, int, int]:
    """``text`` with each span masked, and where ``start`` and ``end`` land in it (one
    inside a span moves to the masked span's edge, so the mask stays whole)."""
    out: list[str] = []
    new_start, new_end = start, end
    last = 0
    delta = 0
    for lo, hi in spans:
        out.append(text[last:lo])
        shown = mask_secret(text[lo:hi]) if hi - lo > SHOWN else text[lo:hi]
        out.append(shown)
        if lo < start < hi:
            new_start = lo + delta
        elif start >= hi:
            new_start = start + delta + len(shown) - (hi - lo)
        if lo < end < hi:
            new_end = lo + delta + len(shown)
        elif end >= hi:
            new_end = end + delta + len(shown) - (hi - lo)
        delta += len(shown) - (hi - lo)
        last = hi
    out.append(text[last:])
    return "".join(out), new_start, new_end


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each known secret (in its plain, URL- and JSON-encoded forms), every
    ``sig=`` / ``AccountKey=`` value, every account-key-shaped run and every Base64 run
    that decodes to one of these masked."""
    spans = _spans(text, _forms(secrets) if secrets else ())
    if all(end - start <= SHOWN for start, end in spans):
        return text  # nothing, or only what a mask shows anyway (already masked)
    return _apply(text, spans)[0]


def window(
    text: str,
    start: int,
    end: int,
    width: int,
    secrets: Iterable[str] = (),
    cut: tuple[bool, bool] = (False, False),
) -> str:
    """``text[start:end]`` with context, at most about ``width`` characters, masked first
    and cut after, so a cut never leaves part of a secret unrecognised. ``…`` marks a cut
    (``cut`` says whether ``text`` itself was already cut before and after)."""
    if cut[0]:  # a secret cut off by the edge is no longer recognisable: drop it
        run = _RUN.match(text)
        drop = min(run.end() if run else 0, start)
        text, start, end = text[drop:], start - drop, end - drop
    if cut[1]:
        tail = _RUN_END.search(text, end)
        text = text[: tail.start()] if tail else text
    masked, start, end = _apply(text, _spans(text, _forms(secrets)), start, end)
    lo = max(0, start - width // 2)
    hi = min(len(masked), max(end + 24, start + width // 2))
    hi = min(hi, lo + max(width, end - start + 64))
    shown = masked[lo:hi].rstrip("\r")
    return ("…" if lo > 0 or cut[0] else "") + shown + ("…" if hi < len(masked) or cut[1] else "")


# C0/C1 controls (tab kept), DEL, invisible format characters (zero-width, bidi marks,
# overrides and isolates, the byte-order mark), line/paragraph separators, and lone
# surrogates (which a UTF-8 terminal stream cannot even encode)
_CONTROL = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
    "\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\e"}


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    if c in _NAMED:
        return _NAMED[c]
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def terminal_safe(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\e``, ``\\n``,
    ``\\x07``, ``\\u202e``), so printing it cannot move the cursor, retitle the window,
    clear the screen or fake a line."""
    return _CONTROL.sub(_escape, text)


def map_strings(
    value: _T,
    fn: Callable[[str], str],
    skip: Collection[str] = (),
    in_skipped: Callable[[str], str] | None = None,
) -> _T:
    """A copy of ``value`` (dataclasses, lists, tuples, dicts) with ``fn`` applied to
    every string; in dataclass fields named in ``skip``, ``in_skipped`` (if given)
    instead. Objects with nothing to change are kept, not copied."""
    return cast(_T, _Walk(fn, frozenset(skip), in_skipped).map(value))


class _Walk:
    def __init__(
        self, fn: Callable[[str], str], skip: frozenset[str], other: Callable[[str], str] | None
    ) -> None:
        self.fn = fn
        self.skip = skip
        self.other = other
        self.strings: dict[str, str] = {}
        self.objects: dict[int, Any] = {}

    def map(self, value: Any) -> Any:
        kind = _KINDS.get(type(value))
        if kind is None:
            kind = _kind(type(value))
        if kind is _STR:
            out = self.strings.get(value)
            if out is None:
                out = self.strings[value] = self.fn(value)
            # an unchanged string is the caller's own object, so its holder is kept
            return value if out == value else out
        if kind is _LEAF:
            return value
        key = id(value)
        if key in self.objects:
            return self.objects[key]
        out = self._map(value, kind)
        self.objects[key] = out
        return out

    def _map(self, value: Any, kind: str) -> Any:
        if kind is _SEQ:
            items = [self.map(v) for v in value]
            if all(a is b for a, b in zip(items, value, strict=True)):
                return value
            return type(value)(items) if isinstance(value, list) else tuple(items)
        if kind is _DICT:
            pairs = {self.map(k): self.map(v) for k, v in value.items()}
            return value if pairs == value else type(value)(pairs)
        changes = {}
        for name in _field_names(type(value)):
            old = getattr(value, name)
            if name in self.skip:
                new = old if self.other is None else _Walk(self.other, _NONE, None).map(old)
            else:
                new = self.map(old)
            if new is not old:
                changes[name] = new
        return dataclasses.replace(value, **changes) if changes else value


# What the walk does with a value, by its type: mask it, keep it, or look inside.
_STR, _LEAF, _SEQ, _DICT, _DATA = "str", "leaf", "sequence", "dict", "dataclass"
_KINDS: dict[type, str] = {}


def _kind(cls: type) -> str:
    if issubclass(cls, str):
        kind = _STR
    elif cls is type(None) or issubclass(cls, (int, float)):
        kind = _LEAF
    elif issubclass(cls, (list, tuple)):
        kind = _SEQ
    elif issubclass(cls, dict):
        kind = _DICT
    elif dataclasses.is_dataclass(cls):  # an instance's class (a class itself is a leaf)
        kind = _DATA
    else:
        kind = _LEAF
    _KINDS[cls] = kind
    return kind


_FIELDS: dict[type, tuple[str, ...]] = {}
_NONE: frozenset[str] = frozenset()
_NEVER = frozenset({"credential"})  # the parsed credential: never output, never copied


def _field_names(cls: type) -> tuple[str, ...]:
    """The fields the walk looks at (``_NEVER`` ones left out)."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(
            f.name for f in dataclasses.fields(cls) if f.init and f.name not in _NEVER
        )
    return names


# The field that holds the secret itself, shown only with --show-secrets.
NOT_MASKED = ("secret",)


def redacted(value: _T) -> _T:
    """``value`` with every string in it masked (see :func:`mask`)."""
    return map_strings(value, mask, NOT_MASKED)


def _for_terminal(text: str) -> str:
    return terminal_safe(mask(text))


def for_terminal(value: _T) -> _T:
    """``value`` masked, and with every string escaped for a terminal."""
    return map_strings(value, _for_terminal, NOT_MASKED, terminal_safe)
