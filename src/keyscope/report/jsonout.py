"""``--format json``: a documented, versioned document (schema in ``schemas/``)."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import partial
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from keyscope.analyze.timefmt import iso
from keyscope.children import forked_map
from keyscope.model import Explanation, Finding
from keyscope.redact import NOT_MASKED, mask, redacted
from keyscope.report.interface import Format
from keyscope.report.jsontext import Text, chunks, indented, written
from keyscope.report.timeline import timelines

if TYPE_CHECKING:
    from keyscope.model import RawFinding, ScanResult

EXPLAIN_SCHEMA = "https://keyscope.dev/schemas/explain-v1.json"
EXPLAIN_VERSION = 1


class JsonFormat(Format):
    """``--format json``: one document after the scan (``schemas/scan-v1.json``)."""

    explains = True

    def finish(self, result: ScanResult) -> None:
        # written as it is made: one finding's text at a time, not the whole document;
        # a large one's findings made on several cores
        for piece in chunks(scan_document(result, lazy=True, jobs=self.options.jobs)):
            self.out.write(piece)
        self.out.write("\n")

    def explain(self, explanations: list[Explanation], now: datetime) -> None:
        self.out.write(render_explain(explanations, now))


_PLAIN = frozenset({str, int, float, bool, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}


def to_data(value: Any) -> Any:
    """Dataclasses, enums, datetimes and tuples → JSON-ready values."""
    cls = type(value)
    if cls in _PLAIN:
        return value
    names = _FIELDS.get(cls)
    if names is not None:
        return {name: to_data(getattr(value, name)) for name in names}
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, datetime):
        return iso(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(value))
        return {name: to_data(getattr(value, name)) for name in names}
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_data(v) for v in value]
    return value


class MaskedData:
    """``to_data(redacted(value))`` in one walk: the JSON-ready value with every string
    masked (``redact.mask``, each distinct string once), the fields ``redacted`` leaves
    alone (``NOT_MASKED``: the secret, shown only with --show-secrets) as they are. A
    report of 10,000 findings walked twice (mask, then convert) spent more time walking
    than masking."""

    def __init__(self) -> None:
        self.strings: dict[str, str] = {}
        self.texts: dict[str, str] = {}  # a string's masked form, as JSON text

    def __call__(self, value: Any) -> Any:
        cls = type(value)
        if cls is str:
            out = self.strings.get(value)
            if out is None:
                out = self.strings[value] = mask(value)
            return out
        if cls in _PLAIN:
            return value
        names = _FIELDS.get(cls)
        if names is None:
            if isinstance(value, enum.Enum):
                return value.name.lower()
            if isinstance(value, datetime):
                return iso(value)
            if isinstance(value, str):
                return self(str(value))
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(value))
            elif isinstance(value, dict):
                return {
                    self(k) if isinstance(k, str) else str(k): self(v) for k, v in value.items()
                }
            elif isinstance(value, (list, tuple)):
                return [self(v) for v in value]
            else:
                return value
        return {
            name: to_data(getattr(value, name)) if name in _KEPT else self(getattr(value, name))
            for name in names
        }


    def write(self, value: Any, out: list[str], newline: str) -> None:
        """Append the text ``jsontext.written(self(value), newline)`` gives to ``out``,
        without making the JSON-ready value first (half the work for a finding)."""
        cls = type(value)
        if cls is str:
            text = self.texts.get(value)
            if text is None:
                text = self.texts[value] = encode_basestring(self(value))
            out.append(text)
            return
        if value is None:
            out.append("null")
            return
        if cls is bool:
            out.append("true" if value else "false")
            return
        if cls is int or cls is float:
            out.append(written(value, newline))
            return
        names = _FIELDS.get(cls)
        if names is None:
            if cls is list or cls is tuple or cls is dict:
                self._container(value, out, newline)
                return
            if isinstance(value, (enum.Enum, datetime)) or not (
                dataclasses.is_dataclass(value) and not isinstance(value, type)
            ):
                if isinstance(value, (dict, list, tuple)) and not isinstance(value, enum.Enum):
                    self._container(value, out, newline)
                else:
                    out.append(written(self(value), newline))
                return
            names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(value))
        plan = _PLANS.get((cls, newline)) or _plan(cls, names, newline)
        for name, opening, kept in plan[1]:
            out.append(opening)
            if kept:
                out.append(written(to_data(getattr(value, name)), plan[0]))
            else:
                self.write(getattr(value, name), out, plan[0])
        out.append(plan[2])

    def _container(
        self, value: dict[Any, Any] | list[Any] | tuple[Any, ...], out: list[str], newline: str
    ) -> None:
        if not value:
            out.append("{}" if isinstance(value, dict) else "[]")
            return
        inner = newline + _INDENT
        if isinstance(value, dict):
            sep = "{" + inner
            for key, item in value.items():
                out.append(sep)
                if isinstance(key, str):
                    self.write(str(key), out, inner)
                else:
                    out.append(encode_basestring(str(key)))
                out.append(": ")
                self.write(item, out, inner)
                sep = "," + inner
            out.append(newline + "}")
            return
        sep = "[" + inner
        for item in value:
            out.append(sep)
            self.write(item, out, inner)
            sep = "," + inner
        out.append(newline + "]")


_INDENT = "  "
# How a dataclass is written where a new line is ``newline``: the new line inside it,
# each field's name, the text before its value and whether it is kept unmasked, and
# the closing text
_Plan = tuple[str, tuple[tuple[str, str, bool], ...], str]
_PLANS: dict[tuple[type, str], _Plan] = {}


def _plan(cls: type, names: tuple[str, ...], newline: str) -> _Plan:
    inner = newline + _INDENT
    fields = tuple(
        (name, ("," if i else "{") + inner + encode_basestring(name) + ": ", name in _KEPT)
        for i, name in enumerate(names)
    )
    plan = _PLANS[(cls, newline)] = (inner, fields, newline + "}" if names else "{}")
    return plan


# fields ``redacted`` does not mask: the secret (--show-secrets) and the parsed credential
_KEPT = frozenset((*NOT_MASKED, "credential"))


def explain_document(explanations: list[Explanation], now: datetime) -> dict[str, Any]:
    from keyscope import __version__

    return {
        "$schema": EXPLAIN_SCHEMA,
        "schema_version": EXPLAIN_VERSION,
        "tool": {"name": "keyscope", "version": __version__},
        "now": iso(now),
        "credentials": [to_data(e) for e in redacted(explanations)],
    }


def render_explain(explanations: list[Explanation], now: datetime, *, color: bool = False) -> str:
    return indented(explain_document(explanations, now)) + "\n"


SCAN_SCHEMA = "https://keyscope.dev/schemas/scan-v1.json"
SCAN_VERSION = 1


def _members(f: Finding) -> tuple[tuple[str, Any], ...]:
    """A finding's members in the ``--format json`` document, before conversion."""
    e = f.explanation
    return (
        ("fingerprint", f.fingerprint),
        ("rule_id", f.rule_id),
        ("severity", e.severity.label),
        ("sentence", e.sentence),
        ("redacted", e.redacted),
        ("explanation", e),
        ("locations", f.locations),
        ("owners", f.owners),
    )


def finding_data(f: Finding, data: Callable[[Any], Any] = to_data) -> dict[str, Any]:
    """One finding of the ``--format json`` document; ``data`` converts its parts
    (``MaskedData()`` masks them as it goes; ``to_data`` for a finding already masked)."""
    return {name: data(value) for name, value in _members(f)}


def _finding_text(data: MaskedData, f: Finding) -> str:
    """One finding's text, where the document's findings array holds it: the text
    ``finding_data(f, data)`` is written as."""
    inner = _ITEM_NEWLINE + _INDENT
    out: list[str] = []
    sep = "{"
    for name, value in _members(f):
        out += [sep, inner, '"', name, '": ']
        data.write(value, out, inner)
        sep = ","
    out.append(_ITEM_NEWLINE + "}")
    return "".join(out)


_ITEM_NEWLINE = "\n    "  # an item of a member of the document
PIECE = 500  # findings whose text is made and sent back at once


def _pieces(count: int) -> list[tuple[int, int]]:
    return [(start, min(start + PIECE, count)) for start in range(0, count, PIECE)]


def _texts(data: MaskedData, findings: list[Finding], piece: tuple[int, int]) -> str:
    """The text of ``findings[start:end]`` as consecutive items of the findings array
    (what ``jsontext`` writes between them included): one string to send back."""
    return ("," + _ITEM_NEWLINE).join(_finding_text(data, f) for f in findings[slice(*piece)])


def _on_timeline(f: Finding) -> bool:
    """Does ``f`` have a place on a timeline (a commit, or a capture time)?"""
    return any(loc.captured or (loc.git and loc.git.commit) for loc in f.locations)


def scan_document(result: ScanResult, *, lazy: bool = False, jobs: int = 1) -> dict[str, Any]:
    """The ``--format json`` document of ``result`` (every string shown masked);
    ``lazy``: its findings an iterator, each made when :func:`jsontext.chunks` writes it
    (as its text: on ``jobs`` processes when there are thousands)."""
    from keyscope import __version__

    findings = result.findings
    data = MaskedData()  # each finding masked as it is converted, not walked twice
    result = replace(
        result,
        model_findings=redacted(result.model_findings),
        skipped=redacted(result.skipped),
        history_cut=redacted(result.history_cut),
    )
    return {
        "$schema": SCAN_SCHEMA,
        "schema_version": SCAN_VERSION,
        "tool": {"name": "keyscope", "version": __version__},
        "now": iso(result.now),
        "engine": result.engine,
        "stats": stats_data(result),
        "findings": (
            map(Text, forked_map(
                _pieces(len(findings)),
                partial(_texts, data, findings),
                jobs if len(findings) >= 2 * PIECE else 1,  # else not worth a fork
                chunk=1,
            ))
            if lazy
            else [finding_data(f, data) for f in findings]
        ),
        "model_findings": [to_data(m) for m in result.model_findings],
        "timeline": timeline_data(redacted([f for f in findings if _on_timeline(f)])),
        "skipped": skipped_data(result),
        "history_cut": history_cut(result),
    }


def stats_data(result: ScanResult) -> dict[str, Any]:
    """A scan's counts, as the JSON document's ``stats``."""
    s = result.stats
    return {
        "files": s.files,
        "bytes": s.bytes,
        "seconds": round(s.seconds, 3),
        "not_reported": dict(s.rejected.most_common()),
    }


def timeline_data(findings: list[Finding]) -> list[dict[str, Any]]:
    """The timelines of ``report/timeline.py``, as the JSON document's ``timeline``."""
    return [
        {
            "subject": t.subject,
            "events": [
                {
                    "date": ev.date,
                    "event": ev.event,
                    "commit": ev.commit,
                    "author": ev.author,
                    "path": ev.path,
                    "origin": list(ev.origin),
                    "line": ev.line,
                    "lines": list(ev.lines),
                    "fingerprint": ev.finding.fingerprint,
                    "kind": ev.finding.explanation.access.kind,
                    "severity": ev.finding.severity.label,
                    "expiry": iso(ev.finding.explanation.access.validity.effective_expiry),
                }
                for ev in t.events
            ],
        }
        for t in timelines(findings)
    ]


def skipped_data(result: ScanResult) -> list[dict[str, str]]:
    """What was not scanned, and why, as the JSON document's ``skipped``."""
    return [{"path": k.path, "reason": k.reason} for k in result.skipped]


def history_cut(result: ScanResult) -> list[dict[str, Any]]:
    """Shallow repositories: the commits their history is cut at."""
    return [{"repository": r, "commits": c} for r, c in result.history_cut.items()]


def render_scan(result: ScanResult) -> str:
    return indented(scan_document(result)) + "\n"


def jsonl_finding(raw: RawFinding) -> str:
    """One line per credential and location, written as soon as it is found."""
    e = raw.explanation
    # only what the line shows is masked (string by string, as a whole finding would be)
    sentence, shown_redacted, location, owners = redacted(
        (e.sentence, e.redacted, raw.location, raw.owners)
    )
    record = {
        "type": "finding",
        "fingerprint": e.fingerprint,
        "rule_id": raw.rule_id,
        "severity": e.severity.label,
        "sentence": sentence,
        "redacted": shown_redacted,
        "location": to_data(location),
        "owners": [to_data(o) for o in owners],
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


def jsonl_verification(finding: Finding) -> str:
    """After a live check: the verdict and the severity it led to, per credential."""
    e = redacted(finding.explanation)
    record = {
        "type": "verification",
        "fingerprint": finding.fingerprint,
        "severity": e.severity.label,
        "verification": to_data(e.verification),
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


def jsonl_model_findings(result: ScanResult) -> str:
    """One line per model-file finding (judged per file, so written at the end)."""
    return "".join(
        json.dumps({"type": "model_finding", **to_data(m)}, ensure_ascii=False) + "\n"
        for m in redacted(result.model_findings)
    )


def jsonl_incomplete(reason: str) -> str:
    """The last line of a JSON lines stream cut short (no summary follows): what was
    streamed before it is true but not the whole scan."""
    record = {"type": "incomplete", "schema_version": SCAN_VERSION, "reason": reason}
    return json.dumps(record) + "\n"


def jsonl_summary(result: ScanResult) -> str:
    masked = replace(
        result, skipped=redacted(result.skipped), history_cut=redacted(result.history_cut)
    )
    record = {
        "type": "summary",
        "schema_version": SCAN_VERSION,
        "stats": stats_data(result),
        "findings": len(result.findings),
        "model_findings": len(result.model_findings),
        "skipped": skipped_data(masked),
        "history_cut": history_cut(masked),
    }
    return json.dumps(record, ensure_ascii=False) + "\n"
