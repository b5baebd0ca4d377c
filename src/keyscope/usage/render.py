"""``keyscope usage`` output: the JSON document (``schemas/usage-v1.json``) and text.
Nothing here holds a secret: credentials are shown by their redacted form, log text
(user agents) is masked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from keyscope.analyze.timefmt import iso
from keyscope.redact import mask, terminal_safe
from keyscope.report.jsontext import indented
from keyscope.usage.matching import STRENGTHS
from keyscope.usage.run import UsageResult
from keyscope.usage.tally import Tally
from keyscope.usage.watched import Watched

SCHEMA = "https://keyscope.dev/schemas/usage-v1.json"
VERSION = 1
TOP = 20  # operations, callers and user agents shown in text


def usage_data(w: Watched, t: Tally | None) -> dict[str, Any]:
    """One credential's usage as JSON-ready data."""
    t = t or Tally()
    return {
        "label": mask(w.label),
        "fingerprint": w.fingerprint,
        "kind": w.kind,
        "account": w.account,
        "leaked_at": iso(w.leaked_at),
        "used": t.outcomes["accepted"] + t.outcomes["failed"] > 0,
        "requests": t.requests,
        "accepted": t.outcomes["accepted"],
        "refused": t.outcomes["refused"],
        "failed": t.outcomes["failed"],
        "first_use": iso(t.first),
        "last_use": iso(t.last),
        "first_accepted": iso(t.first_accepted),
        "last_accepted": iso(t.last_accepted),
        "after_leak": {
            "count": t.after_leak,
            "first": iso(t.first_after_leak),
            "last": iso(t.last_after_leak),
        },
        "writes": dict(sorted(t.writes.items())),
        "deletes": dict(sorted(t.deletes.items())),
        "bytes_read": t.bytes_read,
        "bytes_written": t.bytes_written,
        "signing_keys": dict(sorted(t.signers.items())),
        "match": {s: t.strengths[s] for s in STRENGTHS},
        "log_forms": dict(sorted(t.forms.items())),
        "operations": [
            {"operation": op, "status": status, "status_text": text, "count": n}
            for (op, status, text), n in sorted(t.operations.items(),
                                                key=lambda kv: (-kv[1], kv[0]))
        ],
        "refused_reasons": dict(sorted(t.refused.items())),
        "callers": [
            {"address": ip, "first": iso(c.first), "last": iso(c.last), "count": c.count}
            for ip, c in sorted(t.callers.items(), key=lambda kv: (-kv[1].count, kv[0]))
        ],
        "user_agents": [
            {"user_agent": mask(agent), "count": n}
            for agent, n in sorted(t.agents.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    }


def usage_document(result: UsageResult, now: datetime) -> dict[str, Any]:
    from keyscope import __version__

    c = result.counts
    return {
        "$schema": SCHEMA,
        "schema_version": VERSION,
        "tool": {"name": "keyscope", "version": __version__},
        "now": iso(now),
        "logs": {
            "files": result.files,
            "lines": c.lines,
            "bytes": c.bytes,
            "parsed": c.candidates,
            "malformed": c.malformed,
            "oversize": c.oversize,
            "seconds": round(result.seconds, 3),
            "skipped": [{"path": mask(p), "reason": mask(r)} for p, r in c.skipped],
        },
        "credentials": [
            usage_data(w, result.tallies.get(i)) for i, w in enumerate(result.watched)
        ],
    }


def render_json(result: UsageResult, now: datetime) -> str:
    return indented(usage_document(result, now)) + "\n"


def render_text(result: UsageResult, now: datetime) -> str:
    doc = usage_document(result, now)
    logs = doc["logs"]
    lines = [
        f"Read {logs['lines']:,} log lines in {logs['files']} file(s); parsed "
        f"{logs['parsed']:,} candidate line(s), {logs['malformed']:,} malformed, "
        f"{logs['oversize']:,} over the line limit.",
    ]
    for s in logs["skipped"]:
        lines.append(f"  skipped {s['path']}: {s['reason']}")
    for cred in doc["credentials"]:
        lines.append("")
        lines += _credential_text(cred)
    return "\n".join(terminal_safe(line) for line in lines) + "\n"


def _credential_text(c: dict[str, Any]) -> list[str]:
    head = f"{c['label']}  ({c['kind']}, {c['fingerprint']})"
    if not c["requests"]:
        return [head, "  not seen in these logs"]
    verdict = "USED" if c["used"] else "only refused requests"
    out = [head, f"  {verdict}: {c['requests']} request(s): {c['accepted']} accepted, "
                 f"{c['failed']} accepted by auth but failed, {c['refused']} refused"]
    out.append(f"  first {c['first_use']}, last {c['last_use']}")
    leak = c["after_leak"]
    if c["leaked_at"]:
        flag = "!! " if leak["count"] else ""
        out.append(f"  {flag}after the leak ({c['leaked_at']}): {leak['count']} accepted "
                   f"request(s)" + (f", first {leak['first']}, last {leak['last']}"
                                   if leak["count"] else ""))
    if c["writes"]:
        out.append("  !! writes: " + ", ".join(f"{k} ×{v}" for k, v in c["writes"].items()))
    if c["deletes"]:
        out.append("  !! deletes: " + ", ".join(f"{k} ×{v}" for k, v in c["deletes"].items()))
    out.append(f"  bytes read {c['bytes_read']:,}, written {c['bytes_written']:,}")
    if c["signing_keys"]:
        out.append("  signed with " + ", ".join(f"{k} ({v})" for k, v in
                                                 c["signing_keys"].items())
                   + ": rotate that key to revoke")
    out.append("  match: " + ", ".join(f"{k} {v}" for k, v in c["match"].items() if v)
               + ("  (weak: parameters shared by any token minted with the same values)"
                  if c["match"]["weak"] else ""))
    if c["refused_reasons"]:
        out.append("  refused: " + ", ".join(f"{k} ×{v}"
                                             for k, v in c["refused_reasons"].items()))
    out.append("  operations:")
    for op in c["operations"][:TOP]:
        out.append(f"    {op['count']:>8}  {op['operation']} {op['status']} {op['status_text']}")
    out.append("  callers:")
    for ip in c["callers"][:TOP]:
        out.append(f"    {ip['count']:>8}  {ip['address']}  {ip['first']} … {ip['last']}")
    out.append("  user agents:")
    for ua in c["user_agents"][:TOP]:
        out.append(f"    {ua['count']:>8}  {ua['user_agent'][:160]}")
    return out
