"""``keyscope posture`` as text and as JSON (``schemas/posture-v1.json``)."""

from __future__ import annotations

from typing import Any

from keyscope import __version__
from keyscope.posture.types import AccountPosture, PostureReport
from keyscope.redact import mask, terminal_safe

SCHEMA = "https://keyscope.dev/schemas/posture-v1.json"


def account_data(a: AccountPosture) -> dict[str, Any]:
    """One account as the JSON document holds it."""
    return {
        "account": a.account,
        "severity": a.severity.label,
        "sources": list(a.sources),
        "subscription": a.subscription,
        "resource_group": a.resource_group,
        "resource_id": a.resource_id,
        "endpoint": a.endpoint,
        "found_in_inventory": bool(a.inventory),
        "inventory": [
            {"fingerprint": h.fingerprint, "kind": h.kind, "status": h.status,
             "severity": h.severity.label, "rerated": h.rerated.label, "reason": h.reason}
            for h in a.inventory
        ],
        "verdict": [
            {"kind": v.kind, "label": v.label, "state": v.state, "severity": v.severity.label,
             "summary": v.summary, "can": list(v.can), "limited_by": list(v.limited_by),
             "would_contain": list(v.would_contain)}
            for v in a.verdicts
        ],
        "checks": [
            {"code": c.code, "severity": c.severity.label, "setting": c.setting,
             "title": c.title, "detail": c.detail, "contains": list(c.contains),
             "fixes": [{"what": f.what, "command": f.command} for f in c.fixes]}
            for c in a.checks
        ],
        "settings": a.settings,
        "errors": list(a.errors),
    }


def document(report: PostureReport) -> dict[str, Any]:
    """The whole JSON document."""
    methods = sorted({r.method for r in report.requests})
    return {
        "$schema": SCHEMA,
        "schema_version": 1,
        "tool": {"name": "keyscope", "version": __version__},
        "generated_at": report.generated_at,
        "requests": {
            "methods": methods,
            "count": len(report.requests),
            "list_keys_called": False,
            "sent": [{"method": r.method, "url": mask(r.url), "status": r.status}
                     for r in report.requests],
        },
        "notes": list(report.notes),
        "accounts": [account_data(a) for a in report.accounts],
    }


def text(report: PostureReport, verbose: bool = False) -> str:
    """The report for a terminal: each account's verdicts, then its checks with fixes."""
    out: list[str] = []
    for a in report.accounts:
        where = ", ".join(a.sources)
        out.append(f"storage account '{a.account}' [{a.severity.label}] ({where})")
        if a.inventory:
            out.append("  found leaked (inventory):")
            for h in a.inventory:
                out.append(f"    {h.fingerprint[:16]} {h.kind} ({h.status}): "
                           f"{h.severity.label} -> {h.rerated.label}: {h.reason}")
        for v in a.verdicts:
            out.append(f"  a leaked {v.label}: {v.state} [{v.severity.label}]: {v.summary}")
            if verbose:
                out.extend(f"      can {c}" for c in v.can)
            for limit in v.limited_by:
                out.append(f"      limited: {limit}")
            if v.would_contain:
                out.append(f"      fixing these would contain or limit it: "
                           f"{', '.join(v.would_contain)}")
        if a.checks:
            out.append("  settings to change:")
        for c in a.checks:
            out.append(f"    [{c.severity.label}] {c.code} ({c.setting}): {c.detail}")
            for f in c.fixes:
                out.append(f"      fix: {f.what}" + (":" if f.command else ""))
                if f.command:
                    out.append(f"        {f.command}")
        for error in a.errors:
            out.append(f"  not read: {error}")
        out.append("")
    methods = sorted({r.method for r in report.requests}) or ["none"]
    out.append(f"{len(report.requests)} requests sent, methods: {', '.join(methods)}; "
               "listKeys never called")
    out.extend(report.notes)
    return "".join(terminal_safe(mask(line)) + "\n" for line in out)
