"""The alert payload, ``keyscope.alert/1``: one dict per alert, the same for every
destination (the inventory's outbox hands one over; :func:`alert_payload` makes one
from a finding)::

    {"schema": "keyscope.alert/1",
     "trigger": "new" | "severity-raised" | "live" | "expiring" | "revoked-still-present"
                | "used-after-leak",
     "fingerprint": "ks1:…", "provider": "azure-storage", "kind": "account-sas",
     "account": "acmeprod" | null, "severity": "high", "sentence": "…",
     "expires": ISO-8601 | null, "first_seen": ISO-8601, "scan_id": "…",
     "locations": [{"source", "location", "commit", "author"}, …], "more": N,
     "revocation": ["step", …], "owners": [{"name", "email", "via"} | "name", …]}

It never holds the secret: it is built from the redacted explanation, and every string
in it is masked again (``redact.mask``) before a notifier renders it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from keyscope.analyze.timefmt import iso
from keyscope.model import Finding, Severity
from keyscope.notify.interface import DeliveryError, Payload
from keyscope.redact import redacted
from keyscope.report.interface import member_place

SCHEMA = "keyscope.alert/1"
TRIGGERS = {
    "new": "new credential",
    "severity-raised": "severity raised",
    "live": "verified live",
    "expiring": "expiring soon",
    "revoked-still-present": "marked revoked, still present",
    "used-after-leak": "used after the leak (storage logs)",
}
REQUIRED = (
    "schema", "trigger", "fingerprint", "provider", "kind", "account", "severity",
    "sentence", "expires", "first_seen", "scan_id", "locations", "revocation", "owners",
)  # fmt: skip
LOCATIONS_SENT = 10  # the rest are counted in "more"
ADDRESS = re.compile(r"[^\s@<>()\",;:]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}")


def alert_payload(
    finding: Finding,
    trigger: str,
    *,
    scan_id: str,
    first_seen: datetime | str,
    limit: int = LOCATIONS_SENT,
) -> dict[str, Any]:
    """The alert for ``finding`` (masked: nothing of the secret)."""
    e = redacted(finding.explanation)
    locations = [
        {
            "source": "git" if loc.git else "image" if loc.image else "file",
            "location": f"{member_place(loc.path, loc.origin)}:{loc.line}",
            "commit": loc.git.commit if loc.git else None,
            "author": loc.git.author if loc.git else None,
        }
        for loc in finding.locations[:limit]
    ]
    payload: dict[str, Any] = {
        "schema": SCHEMA,
        "trigger": trigger,
        "fingerprint": finding.fingerprint,
        "provider": e.access.provider,
        "kind": e.access.kind,
        "account": e.access.account,
        "severity": e.severity.label,
        "sentence": e.sentence,
        "expires": iso(e.access.validity.effective_expiry),
        "first_seen": first_seen if isinstance(first_seen, str) else iso(first_seen),
        "scan_id": scan_id,
        "locations": locations,
        "revocation": [
            s.description + (f": {s.command}" if s.command else "")
            for s in e.access.revocation.steps
        ],
        "owners": [{"name": o.name, "email": o.email, "via": list(o.via)} for o in finding.owners],
    }
    if len(finding.locations) > limit:
        payload["more"] = len(finding.locations) - limit
    return redacted(payload)


def sample_payload(now: datetime) -> dict[str, Any]:
    """A test alert (``keyscope notify test``): the shape of a real one, no credential."""
    return {
        "schema": SCHEMA,
        "trigger": "new",
        "fingerprint": "ks1:" + "0" * 32,
        "provider": "azure-storage",
        "kind": "account-sas",
        "account": "keyscopetest",
        "severity": "high",
        "sentence": "This is a test alert from keyscope: if you can read it, this "
        "destination receives keyscope's alerts.",
        "expires": None,
        "first_seen": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "scan_id": "test-" + now.strftime("%Y%m%dT%H%M%SZ"),
        "locations": [
            {"source": "file", "location": "example/settings.py:1", "commit": None,
             "author": None},
        ],
        "revocation": ["Nothing to revoke: no credential was found."],
        "owners": [],
    }  # fmt: skip


def checked(payload: Payload) -> dict[str, Any]:
    """``payload`` masked, once its shape is checked; a payload that is not a
    ``keyscope.alert/1`` is a DeliveryError that no retry can fix."""
    missing = [k for k in REQUIRED if k not in payload]
    if payload.get("schema") != SCHEMA or missing:
        what = f"missing {', '.join(missing)}" if missing else f"schema {payload.get('schema')!r}"
        raise DeliveryError(f"not a {SCHEMA} payload ({what})", retryable=False)
    if payload["trigger"] not in TRIGGERS:
        raise DeliveryError(f"unknown trigger {payload['trigger']!r}", retryable=False)
    if not isinstance(payload["locations"], list) or not isinstance(payload["owners"], list):
        raise DeliveryError("locations and owners must be lists", retryable=False)
    return redacted(dict(payload))


def delivery_id(payload: Payload) -> str:
    """The same for every attempt at one alert, so a receiver can drop repeats."""
    key = "\0".join(str(payload.get(k)) for k in ("fingerprint", "trigger", "scan_id"))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def title(p: Payload) -> str:
    """``HIGH, new credential: account-sas of acmeprod (azure-storage)``."""
    label = str(p["severity"]).upper()
    what = str(p["kind"]) + (f" of {p['account']}" if p.get("account") else "")
    return f"keyscope: {label}, {TRIGGERS.get(str(p['trigger']), p['trigger'])}: {what}"


def location_lines(p: Payload) -> list[str]:
    lines = []
    for loc in p["locations"]:
        if not isinstance(loc, Mapping):
            continue
        line = f"{loc.get('location')} ({loc.get('source')})"
        if loc.get("commit"):
            line += f", commit {str(loc['commit'])[:10]}"
        if loc.get("author"):
            line += f" by {loc['author']}"
        lines.append(line)
    if p.get("more"):
        lines.append(f"… and {p['more']} more")
    return lines


def owner_names(p: Payload) -> list[str]:
    out = []
    for o in p["owners"]:
        if isinstance(o, Mapping):
            name, email = str(o.get("name") or ""), o.get("email")
            out.append(f"{name} <{email}>" if email and email != name else name)
        else:
            out.append(str(o))
    return out


def owner_addresses(p: Payload) -> list[str]:
    """The owners' e-mail addresses (entries with ``email``, or written as one)."""
    out: list[str] = []
    for o in p["owners"]:
        text = str(o.get("email") or "") if isinstance(o, Mapping) else str(o)
        m = ADDRESS.search(text)
        if m and m[0] not in out:
            out.append(m[0])
    return out


def facts(p: Payload) -> list[tuple[str, str]]:
    """What every destination shows beside the sentence, as (label, value)."""
    return [
        ("Severity", str(p["severity"])),
        ("Kind", f"{p['kind']} ({p['provider']})"),
        ("Account", str(p.get("account") or "unknown")),
        ("Expires", str(p.get("expires") or "not known / until revoked")),
        ("First seen", str(p["first_seen"])),
        ("Fingerprint", str(p["fingerprint"])),
        ("Scan", str(p["scan_id"])),
    ]


def plain_text(p: Payload) -> str:
    """The alert as plain text (e-mail body; every destination carries the same)."""
    lines = [title(p), "", str(p["sentence"]), ""]
    lines += [f"{k.lower():<12} {v}" for k, v in facts(p)]
    lines += ["", "Where:"] + [f"  - {x}" for x in location_lines(p)]
    steps = [str(s) for s in p["revocation"]]
    if steps:
        lines += ["", "Revoke it:"] + [f"  {i}. {s}" for i, s in enumerate(steps, 1)]
    owners = owner_names(p)
    if owners:
        lines += ["", "Owners: " + ", ".join(owners)]
    lines += ["", "The secret itself is never sent; find it with its fingerprint."]
    return "\n".join(lines) + "\n"


def severity_of(p: Payload) -> Severity | None:
    try:
        return Severity.parse(str(p["severity"]))
    except ValueError:
        return None
