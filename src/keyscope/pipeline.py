"""One blob through detect → analyze: the work each scan process does per file.

Python runs only for anchor hits; everything else is one engine pass per blob.
"""

from __future__ import annotations

import base64
import binascii
import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime

from keyscope.analyze.policy import DEFAULT_POLICY, Policy
from keyscope.detect.capture import Capturer, Match
from keyscope.detect.engine import Engine
from keyscope.detect.literals import AnyLiteral
from keyscope.model import GitProvenance, Location, ModelFinding, RawFinding
from keyscope.modelfiles.containers import DEFAULT_REACH, Reach
from keyscope.modelfiles.kinds import model_kind
from keyscope.providers.interface import Candidate, Rejected, Site
from keyscope.providers.registry import parser
from keyscope.redact import MARGIN, window
from keyscope.sources.interface import Blob

MAX_DEPTH = 2
SNIPPET_WIDTH = 160
CONTEXT_BYTES = 2048
UTF16_MARKERS = tuple(
    "\0".join(word).encode() + b"\0"
    for word in ("sig", "SIG", "AccountKey", "SharedAccessSignature")
)
_UTF16 = AnyLiteral(UTF16_MARKERS)  # one pass for all of them
_BOMS = ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_KEY_SHAPE = re.compile(r"[A-Za-z0-9+/]{86}==")
_B64_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")



@dataclass
class BlobResult:
    findings: list[RawFinding] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    model_findings: list[ModelFinding] = field(default_factory=list)


class BlobScanner:
    """Scans blobs with one engine; holds everything compiled once per process."""

    def __init__(
        self,
        engine: Engine,
        now: datetime,
        policy: Policy = DEFAULT_POLICY,
        show_secrets: bool = False,
        secrets: bool = True,
        models: bool = True,
        keep_credentials: bool = False,
        model_reach: Reach = DEFAULT_REACH,
    ) -> None:
        self.keep_credentials = keep_credentials
        self.model_reach = model_reach  # how far the model walk of a container reads
        self.secrets = secrets
        self.models = models
        self.engine = engine
        self.capturer = Capturer(engine.rules)
        self.now = now
        self.policy = policy
        self.show_secrets = show_secrets

    def scan(
        self,
        blob: Blob,
        *,
        secrets: bool | None = None,
        models: bool | None = None,
        name: str | None = None,
    ) -> BlobResult:
        """Model check and secret scan of one blob; ``secrets``/``models`` narrow what
        this scanner was made to do for this blob (a container's raw bytes are not
        scanned for secrets when its members are). ``name``: what a member is called
        in model findings (``outer.tgz!/inner/model.pkl``); they keep the outer path,
        with the member chain first in ``where``."""
        result = BlobResult()
        secrets = self.secrets if secrets is None else secrets and self.secrets
        models = self.models if models is None else models and self.models
        name = name or blob.path
        kind = model_kind(blob.data, name) if models else None
        if kind is not None:  # sniffed once: analyze_model is told the kind
            # the readers are loaded once a model file is met, not at start-up
            from keyscope.modelfiles.analyzer import analyze_model

            try:
                allow = self.policy.model_allow
                found = analyze_model(name, blob.data, allow, kind, self.model_reach)
                result.model_findings = [
                    replace(f, path=blob.path, where=(*blob.origin, *f.where)) if blob.origin else f
                    for f in found
                ]
            except (RecursionError, MemoryError) as exc:
                result.rejected[f"model file not analysed ({type(exc).__name__})"] += 1
        if not secrets:
            return result
        data = _transcode(blob.data)
        self._scan_bytes(blob, data, 0, result, None)
        if b"\0" in data and _UTF16.found_in(data):
            # UTF-16 strings without a byte-order mark (.NET assemblies, Windows
            # resources): every other byte holds the text.
            inner = replace(blob, origin=(*blob.origin, "utf-16"))
            for start in (0, 1):  # one half at a time: a large binary's halves not both held
                self._scan_bytes(inner, data[start::2], 0, result, None)
        return result

    def _scan_bytes(
        self,
        blob: Blob,
        data: bytes,
        depth: int,
        result: BlobResult,
        outer: tuple[bytes, Match] | None,
    ) -> None:
        hits = self.engine.hits(data)
        if not hits:
            return
        if any(h.vetoed for h in hits):  # ruled out by the engine: counted, nothing more
            for h in hits:
                if h.vetoed:
                    result.rejected[self.engine.rules[h.rule].veto_reason] += 1
            hits = [h for h in hits if not h.vetoed]
        matches = self.capturer.matches(data, hits)
        found: list[tuple[Match, Candidate]] = []
        rejected: list[tuple[Match, Rejected]] = []
        holders: dict[str, list[tuple[str, int, int]]] = {}  # secret -> (rule, start, end)
        for match in matches:
            if match.rule.parser == "base64":
                if depth < MAX_DEPTH:
                    decoded = _b64(match.value)
                    if decoded is not None:
                        self._scan_bytes(blob, decoded, depth + 1, result, outer or (data, match))
                continue
            if match.rule.seen_inside and _held(match, holders):
                continue  # the same credential, at the same place, already read
            for c in self._candidates(data, match, blob.path):
                if isinstance(c, Rejected):
                    rejected.append((match, c))
                else:
                    found.append((match, c))
                    holders.setdefault(c.secret, []).append(
                        (match.rule.id, match.start, match.end)
                    )
        found = _outermost(found + _seen_again(found, rejected, result) + _repeated(data, found))
        secrets = _Secrets([(m.start, m.end, c.secret) for m, c in found], everywhere=bool(outer))
        for match, c in found:
            where_data, where = outer if outer else (data, match)
            if inline_ignored(where_data, where.start):
                result.rejected["inline keyscope:ignore"] += 1
                continue
            origin = blob.origin + (("base64",) if outer else ())
            loc = _location(
                blob.path,
                where_data,
                where.start,
                where.end,
                secrets,
                origin,
                c.secret if self.show_secrets else None,
            )
            if blob.oid is not None:
                loc = replace(loc, git=GitProvenance(blob=blob.oid, commit=None))
            if blob.image is not None:
                loc = replace(loc, image=blob.image)
            if blob.captured is not None:
                loc = replace(loc, captured=blob.captured)
            kept = c.credential if self.keep_credentials else None
            result.findings.append(RawFinding(match.rule.id, c.explanation, loc, kept))

    def _candidates(self, data: bytes, match: Match, path: str) -> list[Candidate | Rejected]:
        parse = parser(match.rule.parser)
        if parse is None:
            return [Rejected(f"no parser {match.rule.parser!r}")]

        def lines() -> str:
            lo = max(0, match.start - CONTEXT_BYTES)
            hi = min(len(data), match.end + CONTEXT_BYTES)
            return _lines_around(data, lo, hi, match)

        def line_prefix() -> str:
            line_start = data.rfind(b"\n", 0, match.start) + 1
            return data[max(line_start, match.start - 256) : match.start].decode("latin-1")

        value = match.value.decode("latin-1")
        return parse(Site(value, self.now, self.policy, lines, line_prefix, path))


IGNORE = b"keyscope:ignore"
IGNORE_NEXT = b"keyscope:ignore-next-line"


def inline_ignored(data: bytes, offset: int) -> bool:
    """The line holding ``offset`` says ``keyscope:ignore [reason]``, or the line before
    it says ``keyscope:ignore-next-line``."""
    start = data.rfind(b"\n", 0, offset) + 1
    end = data.find(b"\n", offset)
    line = data[start : end if end >= 0 else len(data)]
    if IGNORE in line and IGNORE_NEXT not in line:
        return True
    if start == 0:
        return False
    prev_start = data.rfind(b"\n", 0, start - 1) + 1
    return IGNORE_NEXT in data[prev_start : start - 1]


def _seen_again(
    found: list[tuple[Match, Candidate]],
    rejected: list[tuple[Match, Rejected]],
    result: BlobResult,
) -> list[tuple[Match, Candidate]]:
    """A key rejected for want of context (no label, no account name near) that is a
    key found elsewhere in the blob is another location of that key; the rest count
    as rejected."""
    known = {c.secret: c for _, c in found}
    again: list[tuple[Match, Candidate]] = []
    for match, r in rejected:
        c = known.get(match.value.decode("latin-1"))
        if c is not None:
            again.append((match, c))
        else:
            result.rejected[r.reason] += 1
    return again


def _repeated(data: bytes, found: list[tuple[Match, Candidate]]) -> list[tuple[Match, Candidate]]:
    """A key-shaped secret (88 Base64 characters) found in the blob and written again
    elsewhere in it, unlabelled (``credential=KEY`` further down): another location of
    that key. The key rule's anchor needs a label, so the engine does not hit there."""
    out: list[tuple[Match, Candidate]] = []
    seen: set[str] = set()
    for match, c in found:
        if c.secret in seen or not _KEY_SHAPE.fullmatch(c.secret):
            continue
        seen.add(c.secret)
        secret = c.secret.encode()
        at = data.find(secret)
        while at >= 0:
            end = at + len(secret)
            alone = (at == 0 or data[at - 1] not in _B64_BYTES) and (
                end == len(data) or data[end] not in _B64_BYTES
            )
            if alone:
                out.append((Match(rule=match.rule, start=at, end=end, value=secret), c))
            at = data.find(secret, end)
    return out


def _held(match: Match, holders: dict[str, list[tuple[str, int, int]]]) -> bool:
    """Is ``match``'s whole value the secret of a credential read from a match of one of
    its rule's ``seen_inside`` rules around it? (Then ``_outermost`` would keep that one.)"""
    places = holders.get(match.value.decode("latin-1"))
    return places is not None and any(
        rule in match.rule.seen_inside and start <= match.start and match.end <= end
        for rule, start, end in places
    )


def _outermost(found: list[tuple[Match, Candidate]]) -> list[tuple[Match, Candidate]]:
    """One secret seen by two rules at one place (a key inside its connection string) is
    one location: keep the widest match."""
    kept: list[tuple[Match, Candidate]] = []
    spans: dict[str, list[tuple[int, int]]] = {}  # fingerprint -> kept spans
    for match, c in sorted(found, key=lambda mc: (mc[0].start - mc[0].end, mc[0].start)):
        same = spans.setdefault(c.explanation.fingerprint, [])
        if not any(start <= match.start and match.end <= end for start, end in same):
            same.append((match.start, match.end))
            kept.append((match, c))
    kept.sort(key=lambda mc: mc[0].start)
    return kept


class _Secrets:
    """The secrets found in a blob, by where they are: a snippet masks those near it
    (and ``mask`` masks anything shaped like a secret anyway). A blob decoded from
    Base64 is shown by its outer text: there, every secret is masked."""

    def __init__(self, spans: list[tuple[int, int, str]], everywhere: bool = False) -> None:
        self._everywhere = everywhere
        self._spans = sorted(spans)
        self._starts = [start for start, _, _ in self._spans]
        self._longest = max((end - start for start, end, _ in spans), default=0)

    def within(self, lo: int, hi: int) -> list[str]:
        if self._everywhere:
            return [s for _, _, s in self._spans]
        first = bisect_left(self._starts, lo - self._longest)
        last = bisect_left(self._starts, hi)
        return [s for start, end, s in self._spans[first:last] if end > lo]


def _lines_around(data: bytes, lo: int, hi: int, match: Match, lines: int = 6) -> str:
    """A few lines before and after the match, centred on it."""
    start = match.start
    for _ in range(lines):
        prev = data.rfind(b"\n", lo, start)
        if prev < 0:
            start = lo
            break
        start = prev
    end = match.end
    for _ in range(lines):
        nxt = data.find(b"\n", end + 1, hi)
        if nxt < 0:
            end = hi
            break
        end = nxt
    before = data[start : match.start].decode("latin-1")
    after = data[match.end : end].decode("latin-1")
    # Pad so the match sits in the middle: account_near() measures distance from there.
    pad = " " * max(0, len(after) - len(before))
    pad_after = " " * max(0, len(before) - len(after))
    return pad + before + match.value.decode("latin-1") + after + pad_after


def _chars(data: bytes, start: int, end: int) -> int:
    """Characters (Unicode code points, as editors and SARIF count columns) in
    ``data[start:end]``: UTF-8 decoded, an undecodable byte counting as one."""
    piece = data[start:end]
    return len(piece) if piece.isascii() else len(piece.decode("utf-8", "replace"))


def _location(
    path: str,
    data: bytes,
    start: int,
    end: int,
    secrets: _Secrets,
    origin: tuple[str, ...],
    secret: str | None,
) -> Location:
    line = data.count(b"\n", 0, start) + 1
    line_start = data.rfind(b"\n", 0, start) + 1
    end_line = line + data.count(b"\n", start, end)
    end_line_start = data.rfind(b"\n", 0, end) + 1 if end_line > line else line_start
    line_end = data.find(b"\n", start)
    if line_end < 0:
        line_end = len(data)
    # Mask a wide piece of the line first, then cut: a secret the cut would split
    # is still whole when it is recognised.
    lo = max(line_start, start - MARGIN)
    stop = min(end, line_end)  # the first line of a match that spans several
    hi = min(line_end, stop + MARGIN)
    before = data[lo:start].decode("utf-8", errors="replace")
    match = data[start:stop].decode("utf-8", errors="replace")
    text = before + match + data[stop:hi].decode("utf-8", errors="replace").rstrip("\r")
    snippet = window(
        text,
        len(before),
        len(before) + len(match),
        SNIPPET_WIDTH,
        secrets.within(lo, hi),
        cut=(lo > line_start, hi < line_end),
    )
    return Location(
        path=path,
        line=line,
        column=_chars(data, line_start, start) + 1,
        end_line=end_line,
        end_column=_chars(data, end_line_start, end) + 1,
        snippet=snippet,
        origin=origin,
        secret=secret,
    )


def _transcode(data: bytes) -> bytes:
    """UTF-16 text (with a byte-order mark) is scanned as UTF-8; all else as is."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec).encode("utf-8")
            except UnicodeDecodeError:
                return data
    return data


def _b64(value: bytes) -> bytes | None:
    text = value.rstrip(b"=")
    text += b"=" * (-len(text) % 4)
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in decoded)
    return decoded if decoded and printable / len(decoded) > 0.95 else None
