"""What ``keyscope usage --db`` needs from the inventory, and what it writes back.

``remember`` (called by each recorded scan batch) keeps, per Azure credential, the
hashes its requests carry in Azure Monitor logs, its unsigned SAS parameters and path
(classic ``$logs``), and the leak date (the earliest introducing commit's author date):
never the secret. ``keys`` reads them back; ``record_check`` stores one usage check and
enqueues a ``used-after-leak`` alert when the logs show the credential accepted after
its leak.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from keyscope.analyze.timefmt import parse_datetime
from keyscope.errors import ParseError
from keyscope.inventory import alerts, outbox
from keyscope.inventory.store import Row, Store, stamp
from keyscope.model import Finding

_HEX64 = re.compile(r"[0-9A-Fa-f]{64}")
TRIGGER = "used-after-leak"


def leak_date(finding: Finding) -> str | None:
    """The earliest author date of the commits that introduced the finding (stamped)."""
    dates: list[datetime] = []
    for loc in finding.locations:
        if loc.git is not None and loc.git.date:
            try:
                dates.append(parse_datetime(loc.git.date, "date"))
            except ParseError:
                continue
    return stamp(min(dates)) if dates else None


def remember(s: Store, credentials: Sequence[tuple[int, Finding]]) -> None:
    """Keep the log-matching data of each (credential id, finding) with an Azure hash."""
    rows: list[tuple[object, ...]] = []
    for cid, finding in credentials:
        logs = finding.explanation.log_fingerprints
        found = _HEX64.search(logs.get("AuthenticationHash", ""))
        if not found:
            continue
        h = found.group(0).upper()
        is_sas = logs["AuthenticationHash"].startswith("SasSignature(")
        rows.append((cid, h if is_sas else None, None if is_sas else h,
                     logs.get("unsigned_parameters", ""), logs.get("resource_path"),
                     leak_date(finding)))
    if not rows:
        return
    s.insert(
        "INSERT INTO usage_keys (credential_id, sas_hash, key_hash, unsigned_parameters, "
        "resource_path, leaked_at)",
        rows,
        "ON CONFLICT (credential_id) DO UPDATE SET sas_hash = excluded.sas_hash, "
        "key_hash = excluded.key_hash, unsigned_parameters = excluded.unsigned_parameters, "
        "resource_path = coalesce(excluded.resource_path, usage_keys.resource_path), "
        "leaked_at = CASE WHEN excluded.leaked_at IS NOT NULL AND (usage_keys.leaked_at IS "
        "NULL OR excluded.leaked_at < usage_keys.leaked_at) THEN excluded.leaked_at "
        "ELSE usage_keys.leaked_at END",
    )


def keys(s: Store) -> list[Row]:
    """Every credential usage can look for: its inventory row's fields and its keys."""
    return s.rows(
        "SELECT c.id, c.fingerprint, c.kind, c.account, c.sentence, c.first_seen, "
        "k.sas_hash, k.key_hash, k.unsigned_parameters, k.resource_path, k.leaked_at "
        "FROM usage_keys k JOIN credentials c ON c.id = k.credential_id ORDER BY c.id"
    )


def record_check(s: Store, credential_id: int, summary: Mapping[str, object],
                 now: datetime) -> bool:
    """Store one usage check of a credential (``summary``: the usage JSON of it); when
    it shows accepted requests after the leak, enqueue the alert. Whether one was added."""

    def number(name: str) -> int:
        value = summary.get(name)
        return int(value) if isinstance(value, int) else 0

    after = summary.get("after_leak")
    after_leak = after if isinstance(after, Mapping) else {}
    writes = summary.get("writes")
    deletes = summary.get("deletes")
    n_writes = sum(writes.values()) if isinstance(writes, Mapping) else 0
    n_deletes = sum(deletes.values()) if isinstance(deletes, Mapping) else 0

    def work(tx: Store) -> bool:
        tx.execute(
            "INSERT INTO usage_checks (credential_id, checked_at, requests, accepted, refused, "
            "after_leak, writes, deletes, first_use, last_use, summary) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (credential_id, stamp(now), number("requests"), number("accepted"),
             number("refused"), int(after_leak.get("count") or 0), n_writes, n_deletes,
             summary.get("first_use"), summary.get("last_use"),
             json.dumps(summary, sort_keys=True)),
        )
        if not after_leak.get("count"):
            return False
        row = tx.one("SELECT * FROM credentials WHERE id = ?", (credential_id,))
        if row is None:
            return False
        located = tx.rows(
            "SELECT * FROM occurrences WHERE credential_id = ? ORDER BY present DESC, "
            "source, place, line, commit_id", (credential_id,))
        shown = [{"source": o["source"], "location": f"{o['place']}:{o['line']}",
                  "commit": o["commit_id"] or None, "author": o["author"]}
                 for o in located[: alerts.MAX_LOCATIONS]]
        body = alerts.payload(TRIGGER, row, shown, len(located), int(row["last_scan_id"]))
        body["scan_id"] = str(row["last_scan_id"])  # a string, as alert-v1.json says
        callers = summary.get("callers")
        body["usage"] = {
            "leaked_at": summary.get("leaked_at"),
            "requests": number("requests"),
            "accepted": number("accepted"),
            "after_leak": int(after_leak.get("count") or 0),
            "first_after_leak": after_leak.get("first"),
            "last_after_leak": after_leak.get("last"),
            "writes": n_writes,
            "deletes": n_deletes,
            "callers": [str(c.get("address")) for c in callers[:10] if isinstance(c, Mapping)]
            if isinstance(callers, list) else [],
        }
        fp = str(row["fingerprint"])
        return outbox.enqueue(
            tx, dedupe_key=alerts.dedupe_key(TRIGGER, fp, str(after_leak.get("first") or "")),
            trigger=TRIGGER, fingerprint=fp, payload=body, now=now,
        )

    return s.atomic(work)
