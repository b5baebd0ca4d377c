"""Baselines: a reviewable file of accepted findings, so CI fails only on new ones.

Findings are matched by fingerprint (a keyed hash of the secret), so a baseline
survives line moves and file renames, and holds no secret.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from keyscope.analyze.timefmt import iso
from keyscope.errors import ConfigError
from keyscope.model import Finding, ScanResult

BASELINE_SCHEMA = "https://keyscope.dev/schemas/baseline-v1.json"
BASELINE_VERSION = 1


def baseline_document(findings: list[Finding], now: datetime) -> dict[str, Any]:
    from keyscope import __version__

    entries = [
        {
            "fingerprint": f.fingerprint,
            "rule_id": f.rule_id,
            "severity": f.severity.label,
            "sentence": f.explanation.sentence,
            "locations": [f"{loc.path}:{loc.line}" for loc in f.locations],
            "reason": "",
        }
        for f in sorted(findings, key=lambda f: f.fingerprint)
    ]
    return {
        "$schema": BASELINE_SCHEMA,
        "schema_version": BASELINE_VERSION,
        "tool": {"name": "keyscope", "version": __version__},
        "created": iso(now),
        "findings": entries,
    }


def baseline_text(findings: list[Finding], now: datetime) -> str:
    """The baseline file's content."""
    return json.dumps(baseline_document(findings, now), indent=2, ensure_ascii=False) + "\n"


def load_baseline(path: Path) -> frozenset[str]:
    """The fingerprints a baseline accepts. A bad file is a ConfigError naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--baseline {path}: cannot read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--baseline {path}: not a keyscope baseline ({exc})") from None
    except RecursionError:
        raise ConfigError(f"--baseline {path}: nested too deeply to be a baseline") from None
    if not isinstance(data, dict) or data.get("schema_version") != BASELINE_VERSION:
        raise ConfigError(f"--baseline {path}: not a keyscope baseline (schema_version 1)")
    entries = data.get("findings")
    if not isinstance(entries, list):
        raise ConfigError(f"--baseline {path}: 'findings' must be a list")
    prints = set()
    for entry in entries:
        fp = entry.get("fingerprint") if isinstance(entry, dict) else None
        if not isinstance(fp, str) or not fp.startswith("ks1:"):
            raise ConfigError(f"--baseline {path}: an entry has no ks1: fingerprint")
        prints.add(fp)
    return frozenset(prints)


def without_baselined(
    findings: list[Finding], accepted: frozenset[str]
) -> tuple[list[Finding], int]:
    """The findings not in the baseline, and how many were."""
    kept = [f for f in findings if f.fingerprint not in accepted]
    return kept, len(findings) - len(kept)


BASELINED = "accepted in the baseline (findings)"


def apply_baseline(result: ScanResult, accepted: frozenset[str]) -> None:
    """Drop from ``result`` the findings the baseline accepts; count them among the
    candidates not reported (``stats.rejected``)."""
    result.findings, baselined = without_baselined(result.findings, accepted)
    if baselined:
        result.stats.rejected[BASELINED] += baselined
