"""SARIF 2.1.0 for code scanning: one result per location, rule help, severities."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from keyscope.model import Explanation, Finding, Location, ModelFinding, RuleInfo, Severity
from keyscope.report.interface import Format, image_story, owner_text, shown, split_origin

if TYPE_CHECKING:
    from keyscope.model import ScanResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/keyscope/keyscope"
# GitHub code scanning reads these: >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium.
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


class SarifFormat(Format):
    """``--format sarif``: SARIF 2.1.0 for code scanning, after the scan."""

    def finish(self, result: ScanResult) -> None:
        self.out.write(render_scan(result, self.options.roots))


def sarif_document(result: ScanResult, roots: Sequence[str] = ()) -> dict[str, Any]:
    """One run; each result unique (one secret at one place, however many commits
    brought it there), its URI relative to the scanned root and no local path."""
    from keyscope import __version__

    result = shown(result)
    base = source_root(roots)
    rule_index = {r.id: i for i, r in enumerate(result.rules)}
    worst: dict[str, Severity] = {}
    for f in result.findings:
        worst[f.rule_id] = max(worst.get(f.rule_id, Severity.INFO), f.severity)
    results: list[dict[str, Any]] = []
    seen: set[str] = set()
    nested = _NestedArtifacts()
    for f in result.findings:
        for loc in f.locations:
            r = _result(f, loc, rule_index[f.rule_id], base)
            where = r["locations"][0]["physicalLocation"]
            members = split_origin(loc.origin)[0]
            key = json.dumps(
                [
                    f.fingerprint,
                    where["artifactLocation"],
                    loc.line,
                    loc.column,
                    members,  # archive members: distinct places
                ]
            )
            if key not in seen:
                seen.add(key)
                if members:
                    nested.relate(r, members)
                results.append(r)
    model_rules = sorted({m.verdict for m in result.model_findings})
    offset = len(result.rules)
    for m in result.model_findings:
        r = _model_result(m, offset + model_rules.index(m.verdict), base)
        if m.where:
            nested.relate(r, m.where)
        results.append(r)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "keyscope",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [_rule(r, worst.get(r.id)) for r in result.rules]
                        + [_model_rule(v, result) for v in model_rules],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "originalUriBaseIds": {
                    "%SRCROOT%": {"description": {"text": "The scanned repository or directory."}}
                },
                "results": results,
                **({"artifacts": nested.artifacts} if nested.artifacts else {}),
                **_history_cut(result, base),
            }
        ],
    }


def render_scan(result: ScanResult, roots: Sequence[str] = ()) -> str:
    return json.dumps(sarif_document(result, roots), indent=2, ensure_ascii=False) + "\n"


def _rule(rule: RuleInfo, worst: Severity | None) -> dict[str, Any]:
    severity = worst if worst is not None else Severity.CRITICAL
    refs = "\n".join(f"- {r}" for r in rule.references)
    markdown = (
        f"**{rule.name}**\n\n{rule.description}\n\n"
        "Run `keyscope explain` on the value to see what it unlocks, until when, and the "
        "exact commands to revoke it. Deleting the file does not revoke the credential: "
        "history, forks and clones keep it.\n\n" + (f"References:\n{refs}\n" if refs else "")
    )
    entry: dict[str, Any] = {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.replace(".", "-").split("-")),
        "shortDescription": {"text": rule.name},
        "fullDescription": {"text": rule.description},
        "help": {"text": markdown.replace("**", "").replace("`", ""), "markdown": markdown},
        "defaultConfiguration": {"level": LEVEL[severity]},
        "properties": {
            "tags": ["security", "secret", "credential"],
            "precision": "high",
            "security-severity": SECURITY_SEVERITY[severity],
        },
    }
    if rule.references:
        entry["helpUri"] = rule.references[0]
    return entry


def _result(f: Finding, loc: Location, index: int, base: str) -> dict[str, Any]:
    e = f.explanation
    region: dict[str, Any] = {
        "startLine": loc.line,
        "startColumn": loc.column,
        "endLine": loc.end_line,
        "endColumn": max(loc.end_column, 1),
        "snippet": {"text": loc.snippet},
    }
    message = e.sentence
    if e.verification is not None:
        message += f" Live check: {e.verification.summary}"
    if loc.origin:
        message += " (found inside: " + " > ".join(loc.origin) + ")"
    if loc.image is not None:
        message += f" Image layers: {image_story(loc.image)}."
    return {
        "ruleId": f.rule_id,
        "ruleIndex": index,
        "level": LEVEL[e.severity],
        "message": {"text": message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": _artifact(loc.path, base),
                    "region": region,
                }
            }
        ],
        "partialFingerprints": {"keyscope/secret/v1": f.fingerprint},
        "properties": {
            "severity": e.severity.label,
            "security-severity": SECURITY_SEVERITY[e.severity],
            "kind": e.access.kind,
            "account": e.access.account,
            "expiry": e.access.validity.summary,
            "reasons": [f"{r.code}: {r.message}" for r in e.reasons],
            "revocation": e.access.revocation.summary,
            "redacted": e.redacted,
            **({"owners": [owner_text(o) for o in f.owners]} if f.owners else {}),
            **_verification_properties(e),
            **_git_properties(loc),
            **_image_properties(loc),
        },
    }


def _verification_properties(e: Explanation) -> dict[str, Any]:
    v = e.verification
    if v is None:
        return {}
    return {
        "verification": {
            "status": v.status,
            "live": v.live,
            "summary": v.summary,
            "checkedAt": v.checked_at,
            "probes": [
                {
                    "probe": p.probe,
                    "request": f"{p.method} {p.url}",
                    "status": p.status,
                    "httpStatus": p.http_status,
                    "errorCode": p.error_code,
                    "detail": p.detail,
                }
                for p in v.probes
            ],
        }
    }


MODEL_RULES = {
    "executes-code": "Model file runs code when loaded",
    "unknown-import": "Model file imports names (or uses custom ops) no allowlist knows",
    "library-class": "Model file instantiates library classes when loaded",
    "inconclusive": "Model file could not be proven safe",
    "anomaly": "Model container anomaly (loader and scanner may read different bytes)",
}


def _model_rule(verdict: str, result: ScanResult) -> dict[str, Any]:
    worst = max(m.severity for m in result.model_findings if m.verdict == verdict)
    text = (
        f"{MODEL_RULES[verdict]}. keyscope reads model files by their bytes and never loads "
        "them: it emulates every pickle a loader would run (torch.load, pickle, joblib, numpy "
        "with allow_pickle) and judges each import and call against an allowlist modelled on "
        "torch.load(weights_only=True); it reads ONNX, TensorFlow SavedModel, TFLite, Keras "
        "and GGUF files structurally for file access, Python callbacks, code in configs and "
        "templates, and paths that leave the model's directory. Prefer safetensors, or "
        "torch.load(weights_only=True), and load models only from authors you trust."
    )
    return {
        "id": f"model-{verdict}",
        "name": "Model" + "".join(p.capitalize() for p in verdict.split("-")),
        "shortDescription": {"text": MODEL_RULES[verdict]},
        "fullDescription": {"text": text},
        "help": {"text": text, "markdown": text},
        "defaultConfiguration": {"level": LEVEL[worst]},
        "properties": {
            "tags": ["security", "deserialization", "model"],
            "precision": "high",
            "security-severity": SECURITY_SEVERITY[worst],
        },
    }


def _model_result(m: ModelFinding, index: int, base: str) -> dict[str, Any]:
    return {
        "ruleId": f"model-{m.verdict}",
        "ruleIndex": index,
        "level": LEVEL[m.severity],
        "message": {"text": m.sentence},
        "locations": [{"physicalLocation": {"artifactLocation": _artifact(m.path, base)}}],
        "partialFingerprints": {
            "keyscope/model/v1": f"{m.verdict}:{'/'.join(m.where)}:{m.offset}",
        },
        "properties": {
            "severity": m.severity.label,
            "security-severity": SECURITY_SEVERITY[m.severity],
            "member": " > ".join(m.where),
            "offset": m.offset,
            "details": list(m.details),
        },
    }


def _git_properties(loc: Location) -> dict[str, Any]:
    g = loc.git
    if g is None:
        return {}
    return {
        "commit": g.commit,
        "author": f"{g.author} <{g.email}>" if g.author else None,
        "date": g.date,
        "message": g.message,
        "blob": g.blob,
        "removedFromHead": g.removed_from_head,
        "removedIn": g.removed_in,
        "lastPresent": g.last_present,
        "presentAtBoundary": g.at_boundary,
    }


def _image_properties(loc: Location) -> dict[str, Any]:
    p = loc.image
    if p is None:
        return {}
    return {
        "image": {
            "layer": p.layer,
            "digest": p.digest,
            "createdBy": p.created_by,
            "removedIn": p.removed_in,
            "removedBy": p.removed_by,
            "overwritten": p.overwritten,
            "story": image_story(p),
        }
    }


def _history_cut(result: ScanResult, base: str) -> dict[str, Any]:
    from keyscope.report.jsonout import history_cut

    cut = [
        {**c, "repository": _artifact(c["repository"], base)["uri"]} for c in history_cut(result)
    ]
    return {"properties": {"historyCut": cut}} if cut else {}


def source_root(roots: Sequence[str]) -> str:
    """The directory results are relative to: the top of the git repository holding the
    scanned paths, else the directory they share (the working directory if none is local)."""
    local = [os.path.abspath(r) for r in roots if r != "-" and os.path.exists(r)]
    dirs = [r if os.path.isdir(r) else os.path.dirname(r) for r in local]
    base = os.path.commonpath(dirs) if dirs else os.getcwd()
    here = base
    while True:
        if os.path.exists(os.path.join(here, ".git")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return base
        here = parent


class _NestedArtifacts:
    """``run.artifacts`` for findings inside archives: the outer file, then each member
    with ``parentIndex`` (its container). A result stays on the outer file (what code
    scanning can show), without a region: a member's line is no line of the outer
    file. Its related location is the innermost member, with the member's region."""

    def __init__(self) -> None:
        self.artifacts: list[dict[str, Any]] = []
        self._index: dict[str, int] = {}

    def _add(self, key: str, artifact: dict[str, Any]) -> int:
        if key not in self._index:
            self._index[key] = len(self.artifacts)
            self.artifacts.append(artifact)
        return self._index[key]

    def relate(self, r: dict[str, Any], members: tuple[str, ...]) -> None:
        """Move ``r``'s region (if any) to the member ``members`` name inside its file."""
        where = r["locations"][0]["physicalLocation"]
        region = where.pop("region", None)
        outer = where["artifactLocation"]
        key = json.dumps(outer)
        index = self._add(key, {"location": dict(outer)})
        outer["index"] = index
        for name in members:
            key = json.dumps([key, name])
            artifact = {"location": {"uri": _quote(name)}, "parentIndex": index}
            index = self._add(key, artifact)
        inner: dict[str, Any] = {"artifactLocation": {"index": index}}
        if region is not None:
            inner["region"] = region
        r["relatedLocations"] = [
            {
                "id": 1,
                "physicalLocation": inner,
                "message": {"text": "inside " + "!/".join((outer["uri"], *members))},
            }
        ]


def _artifact(path: str, base: str) -> dict[str, str]:
    """Relative to ``base``; standard input by its name, never an absolute path."""
    if path.startswith("<"):  # <stdin>
        return {"uri": _quote(path)}
    if path.startswith(("https://", "http://")):  # a crawled page: its URL as it is
        return {"uri": path}
    rel = os.path.relpath(os.path.abspath(path), base)
    return {"uri": _quote(rel.replace(os.sep, "/")), "uriBaseId": "%SRCROOT%"}


def _quote(path: str) -> str:
    # A file name that is not UTF-8 (surrogate escapes) is quoted as its raw bytes.
    return quote(path, errors="surrogateescape")
