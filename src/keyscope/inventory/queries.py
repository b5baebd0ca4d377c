"""What the triage commands ask of the inventory: lists, one credential's whole
story, a status change, the export document."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from keyscope import __version__
from keyscope.errors import KeyscopeError
from keyscope.inventory import STATUSES
from keyscope.inventory.record import set_status
from keyscope.inventory.store import Row, Store, stamp
from keyscope.model import Severity

EXPORT_SCHEMA = "https://keyscope.dev/schemas/inventory-v1.json"


@dataclass(frozen=True)
class Filters:
    """``inventory list``'s filters; every one given must hold."""

    statuses: tuple[str, ...] = ()
    min_severity: Severity | None = None
    provider: str | None = None
    account: str | None = None
    source: str | None = None  # a credential with an occurrence in this source
    expiring_within: timedelta | None = None  # not yet expired, expiring before now + this
    live: bool = False  # the last live check accepted it
    present: bool = False  # still found by the latest scan of some source


def list_credentials(store: Store, filters: Filters, now: datetime) -> list[Row]:
    """Credentials matching ``filters``, worst first, with occurrence counts."""
    where: list[str] = []
    params: list[object] = []
    if filters.statuses:
        where.append(f"c.status IN ({', '.join('?' for _ in filters.statuses)})")
        params.extend(filters.statuses)
    if filters.min_severity is not None:
        where.append("c.severity >= ?")
        params.append(int(filters.min_severity))
    if filters.provider:
        where.append("c.provider = ?")
        params.append(filters.provider)
    if filters.account:
        where.append("c.account = ?")
        params.append(filters.account)
    if filters.source:
        where.append("EXISTS (SELECT 1 FROM occurrences s WHERE s.credential_id = c.id "
                     "AND s.source = ?)")
        params.append(filters.source)
    if filters.expiring_within is not None:
        where.append("c.expires IS NOT NULL AND c.expires > ? AND c.expires <= ?")
        params.extend([stamp(now), stamp(now + filters.expiring_within)])
    if filters.live:
        where.append("c.live = 1")
    if filters.present:
        where.append("EXISTS (SELECT 1 FROM occurrences p WHERE p.credential_id = c.id "
                     "AND p.present = 1)")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return store.rows(
        "SELECT c.*, (SELECT count(*) FROM occurrences o WHERE o.credential_id = c.id) "
        "AS occurrences, (SELECT count(*) FROM occurrences o WHERE o.credential_id = c.id "
        f"AND o.present = 1) AS present FROM credentials c {clause} "
        "ORDER BY c.severity DESC, c.first_seen, c.fingerprint",
        params,
    )


def resolve(store: Store, fingerprint: str) -> Row:
    """The credential a fingerprint (or a unique prefix of at least 8 of its hex digits,
    ``ks1:`` optional) names."""
    text = fingerprint.strip()
    if not text.startswith("ks1:"):
        text = "ks1:" + text
    rows = store.rows(
        "SELECT * FROM credentials WHERE fingerprint = ? OR (length(?) >= 12 AND "
        "substr(fingerprint, 1, length(?)) = ?) ORDER BY fingerprint LIMIT 2",
        (text, text, text, text),
    )
    exact = [r for r in rows if r["fingerprint"] == text]
    if exact:
        return exact[0]
    if len(rows) == 1:
        return rows[0]
    if rows:
        raise KeyscopeError(f"{fingerprint}: more than one credential starts with this")
    raise KeyscopeError(f"{fingerprint}: no such credential in the inventory")


def story(store: Store, fingerprint: str) -> dict[str, Any]:
    """One credential with every occurrence, verification, triage event and alert."""
    [one] = stories(store, [resolve(store, fingerprint)])
    return one


_CHUNK = 500  # credentials per ``IN (…)`` query


def stories(store: Store, rows: list[Row]) -> list[dict[str, Any]]:
    """``story`` of each credential row (``credentials`` rows, as ``list_credentials``
    returns them), in their order: a few queries per 500 credentials, not per one."""
    if not rows:
        return []
    parts: dict[int, dict[str, list[Any]]] = {
        int(r["id"]): {"occurrences": [], "verifications": [], "triage": [], "alerts": []}
        for r in rows
    }
    by_fingerprint = {str(r["fingerprint"]): int(r["id"]) for r in rows}
    ids = list(parts)
    for n in range(0, len(ids), _CHUNK):
        chunk = ids[n : n + _CHUNK]
        marks = ", ".join("?" for _ in chunk)
        for o in store.rows(
            f"SELECT * FROM occurrences WHERE credential_id IN ({marks}) "
            "ORDER BY present DESC, source, place, line, commit_id", chunk):
            parts[int(o["credential_id"])]["occurrences"].append(occurrence_view(o))
        for v in store.rows(
            "SELECT credential_id, checked_at, status, live, summary, scan_id FROM "
            f"verifications WHERE credential_id IN ({marks}) ORDER BY id", chunk):
            cid = int(v.pop("credential_id"))
            parts[cid]["verifications"].append(
                {**v, "live": None if v["live"] is None else bool(v["live"])})
        for t in store.rows(
            "SELECT credential_id, at, actor, status, previous, note FROM triage_events "
            f"WHERE credential_id IN ({marks}) ORDER BY id", chunk):
            parts[int(t.pop("credential_id"))]["triage"].append(t)
        fingerprints = [str(r["fingerprint"]) for r in rows[n : n + _CHUNK]]
        for a in store.rows(
            'SELECT id, "trigger" AS trigger, created_at, fingerprint FROM alerts '
            f"WHERE fingerprint IN ({marks}) ORDER BY id", fingerprints):
            parts[by_fingerprint[str(a.pop("fingerprint"))]]["alerts"].append(a)
    out = []
    for r in rows:
        view = credential_view(r)
        view.pop("present", None)  # list_credentials' counts: the lists below say more
        out.append({**view, **parts[int(r["id"])]})
    return out


def triage(
    store: Store, fingerprint: str, status: str, *, note: str, actor: str, now: datetime
) -> Row:
    """Set a credential's status; the row as it is now."""
    if status not in STATUSES:
        raise KeyscopeError(f"--status {status!r}: expected one of {', '.join(STATUSES)}")
    with store.transaction():
        row = resolve(store, fingerprint)
        set_status(store, int(row["id"]), status, actor=actor, note=note, now=now)
        return resolve(store, str(row["fingerprint"]))


def export(store: Store, now: datetime) -> dict[str, Any]:
    """The whole inventory as one JSON document (``schemas/inventory-v1.json``)."""
    credentials = stories(store, list_credentials(store, Filters(), now))
    scans = store.rows(
        "SELECT id, started_at, finished_at, keyscope_version, sources, options, complete, "
        "findings FROM scans ORDER BY id"
    )
    for scan in scans:
        scan["sources"] = json.loads(scan["sources"])
        scan["options"] = json.loads(scan["options"])
        scan["complete"] = bool(scan["complete"])
    return {
        "$schema": EXPORT_SCHEMA,
        "schema_version": 1,
        "tool": {"name": "keyscope", "version": __version__},
        "exported_at": stamp(now),
        "scans": scans,
        "credentials": credentials,
    }


def credential_view(row: Row) -> dict[str, Any]:
    """A ``credentials`` row as the commands show it."""
    return {
        "fingerprint": row["fingerprint"],
        "provider": row["provider"],
        "kind": row["kind"],
        "rule_id": row["rule_id"],
        "account": row["account"],
        "scope": row["scope"],
        "severity": Severity(int(row["severity"])).label,
        "expires": row["expires"],
        "sentence": row["sentence"],
        "revocation": json.loads(row["revocation"]),
        "owners": json.loads(row["owners"]),
        "first_seen": row["first_seen"],
        "last_seen": row["last_seen"],
        "status": row["status"],
        "status_at": row["status_at"],
        "live": None if row["live"] is None else bool(row["live"]),
        "verified_at": row["verified_at"],
        **({"occurrences": int(row["occurrences"]), "present": int(row["present"])}
           if "occurrences" in row else {}),
    }


def occurrence_view(row: Row) -> dict[str, Any]:
    return {
        "source": row["source"],
        "place": row["place"],
        "line": int(row["line"]),
        "commit": row["commit_id"] or None,
        "author": row["author"],
        "author_email": row["author_email"],
        "committer": row["committer"],
        "first_seen": row["first_seen"],
        "last_seen": row["last_seen"],
        "present": bool(row["present"]),
    }
