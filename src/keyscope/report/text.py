"""Terminal rendering: the plain sentence first, then the details; colour on a TTY."""

from __future__ import annotations

from datetime import datetime

from keyscope.analyze.timefmt import instant
from keyscope.model import Explanation, Severity

_COLORS = {
    Severity.CRITICAL: "\033[1;97;41m",
    Severity.HIGH: "\033[1;31m",
    Severity.MEDIUM: "\033[1;33m",
    Severity.LOW: "\033[1;36m",
    Severity.INFO: "\033[2m",
}
_BOLD = "\033[1m"
_DIM = "\033[2m"
_RESET = "\033[0m"


def render_explain(explanations: list[Explanation], now: datetime, *, color: bool = False) -> str:
    blocks = [_one(e, color) for e in explanations]
    return "\n".join(blocks)


def _one(e: Explanation, color: bool) -> str:
    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    a = e.access
    lines = [
        f"{paint(_COLORS[e.severity], e.severity.label.upper())}  {e.sentence}",
        "",
    ]
    rows: list[tuple[str, str]] = [
        ("kind", a.kind_label),
        ("account", a.account or (a.account_note or "unknown")),
    ]
    if a.account and a.account_note:
        rows.append(("", a.account_note))
    if a.endpoint:
        rows.append(("endpoint", a.endpoint + (f"  ({a.cloud})" if a.cloud else "")))
    rows.append(("services", ", ".join(a.services) or "unknown (only in the URL)"))
    rows.append(("scope", a.scope.description))
    if a.permissions is not None:
        rows.append(("permissions", a.permissions))
    for cap in a.capabilities:
        rows.append(("", f"{cap.letter}  {cap.name}: {cap.meaning}"))
    if a.destructive:
        rows.append(("destructive", ", ".join(a.destructive)))
    rows.append(("validity", a.validity.summary))
    if a.validity.start:
        rows.append(("", f"start  {instant(a.validity.start)}"))
    if a.validity.expiry:
        rows.append(("", f"expiry {instant(a.validity.expiry)}"))
    rows.append(("network", a.network.summary))
    for key in ("signed_version", "stored_policy", "encryption_scope", "signed_resource"):
        if key in a.details:
            rows.append((key.replace("_", " "), str(a.details[key])))
    ud = a.details.get("user_delegation")
    if isinstance(ud, dict):
        for k, v in ud.items():
            rows.append(("delegation" if k == next(iter(ud)) else "", f"{k}={v}"))
    overrides = a.details.get("response_header_overrides")
    if isinstance(overrides, dict):
        rows.append(("overrides", ", ".join(f"{k}={v}" for k, v in overrides.items())))
    rows.append(("signature", e.signature.detail))
    for name, value in e.log_fingerprints.items():
        if name != "kql":
            rows.append(("log hash", value))
    rows.append(("token", e.redacted))
    rows.append(("fingerprint", e.fingerprint))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        lines.append(f"  {paint(_DIM, k.ljust(width))}  {v}")
    lines.append("")
    lines.append(f"  {paint(_BOLD, 'Severity ' + e.severity.label)} because:")
    for r in e.reasons:
        lines.append(f"    - [{r.severity.label}] {r.code}: {r.message}")
    lines.append("")
    lines.append(f"  {paint(_BOLD, 'Revoke')}: {a.revocation.summary}.")
    for step in a.revocation.steps:
        lines.append(f"    - {step.description}")
        if step.command:
            lines.append(f"      $ {step.command}")
    if a.revocation.side_effects:
        lines.append(f"    {a.revocation.side_effects}")
    if "kql" in e.log_fingerprints:
        lines.append("")
        lines.append(f"  {paint(_BOLD, 'Find its use in Azure Monitor logs')}:")
        lines.append(f"    {e.log_fingerprints['kql']}")
    if e.notes:
        lines.append("")
        for n in e.notes:
            lines.append(f"  note: {n}")
    return "\n".join(lines) + "\n"
