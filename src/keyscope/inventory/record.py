"""Write one scan into the inventory.

:class:`Recording` first writes the scan (unfinished), then each batch of findings
in one transaction (credentials, occurrences, verifications, the alerts their
changes call for), then, in a last transaction, which occurrences the scan no longer
found and the time-based alerts, and marks the scan finished. A process killed at
any point leaves whole batches and an unfinished scan; the next scan goes on from
there. An unchanged rescan adds a scan row and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from keyscope import __version__
from keyscope.inventory import alerts, logkeys, outbox
from keyscope.inventory.alerts import AlertRules
from keyscope.inventory.places import Roots, masked
from keyscope.inventory.store import Row, Store, stamp
from keyscope.model import Explanation, Finding, Location
from keyscope.redact import mask

BATCH = 500  # findings per transaction
REOPENED = "verified live again after it was marked revoked"


@dataclass
class RecordStats:
    credentials: int = 0
    new_credentials: int = 0
    occurrences: int = 0
    alerts: int = 0


@dataclass
class Recording:
    """One scan being written. ``start``, then ``record`` (any number of times), then
    ``finish``."""

    store: Store
    scan_id: int
    roots: Roots
    now: datetime
    rules: AlertRules = field(default_factory=AlertRules)
    stats: RecordStats = field(default_factory=RecordStats)
    _seen: dict[str, int] = field(default_factory=dict)  # fingerprint → credential id

    @classmethod
    def start(
        cls,
        store: Store,
        roots: Sequence[str],
        options: Mapping[str, object],
        now: datetime,
        rules: AlertRules | None = None,
    ) -> Recording:
        """Write the scan row (unfinished) and return the recording."""
        shape = Roots.of(roots)
        with store.transaction():
            scan_id = int(
                store.scalar(
                    "INSERT INTO scans (started_at, keyscope_version, sources, options, "
                    "complete) VALUES (?, ?, ?, ?, 0) RETURNING id",
                    (stamp(now), __version__, json.dumps(shape.sources),
                     json.dumps(options, sort_keys=True, default=str)),
                )
            )
        return cls(store, scan_id, shape, now, rules or AlertRules())

    def record(self, findings: Iterable[Finding]) -> RecordStats:
        """Write ``findings``, :data:`BATCH` per transaction."""
        batch: list[Finding] = []
        for finding in findings:
            batch.append(finding)
            if len(batch) >= BATCH:
                self._write(batch)
                batch = []
        if batch:
            self._write(batch)
        return self.stats

    def _write(self, batch: Sequence[Finding]) -> None:
        self.store.atomic(lambda s: self._batch(s, batch))

    def finish(self, *, complete: bool) -> RecordStats:
        """Close the scan. ``complete``: it read its sources whole, so what it did not
        find there is no longer present."""
        self.store.atomic(lambda s: self._finish(s, complete))
        return self.stats

    # -- one batch ---------------------------------------------------------------

    def _batch(self, s: Store, findings: Sequence[Finding]) -> None:
        at = stamp(self.now)
        by_fp: dict[str, Finding] = {}
        for f in findings:  # one per fingerprint (a caller's repeats are merged)
            seen = by_fp.get(f.fingerprint)
            by_fp[f.fingerprint] = f if seen is None else replace(
                seen, locations=[*seen.locations, *f.locations]
            )
        fps = sorted(by_fp)
        old = {r["fingerprint"]: r for r in self._select(s, fps, lock=True)}
        rows = {r["fingerprint"]: r for r in s.insert(
            "INSERT INTO credentials (fingerprint, provider, kind, rule_id, account, scope, "
            "severity, expires, sentence, revocation, first_seen, last_seen, first_scan_id, "
            "last_scan_id, owners)",
            [(*_credential(by_fp[fp].explanation, by_fp[fp].rule_id), at, at, self.scan_id,
              self.scan_id, _owners(by_fp[fp])) for fp in fps],
            "ON CONFLICT (fingerprint) DO UPDATE SET provider = excluded.provider, "
            "kind = excluded.kind, rule_id = excluded.rule_id, account = excluded.account, "
            "scope = excluded.scope, severity = excluded.severity, "
            "expires = excluded.expires, sentence = excluded.sentence, "
            "revocation = excluded.revocation, "
            "owners = CASE WHEN excluded.owners <> '[]' THEN excluded.owners "
            "ELSE credentials.owners END, "
            "last_seen = CASE WHEN excluded.last_seen > credentials.last_seen "
            "THEN excluded.last_seen ELSE credentials.last_seen END, "
            "last_scan_id = CASE WHEN excluded.last_scan_id > credentials.last_scan_id "
            "THEN excluded.last_scan_id ELSE credentials.last_scan_id END RETURNING *",
        )}
        located = [(fp, loc, *self.roots.place(loc)) for fp in fps for loc in by_fp[fp].locations]
        places = masked([place for _, _, _, place in located])
        occurrences: dict[tuple[int, str, str, int, str], tuple[object, ...]] = {}
        placed: dict[str, list[dict[str, object]]] = {fp: [] for fp in fps}
        for fp in fps:
            self._seen[fp] = int(rows[fp]["id"])
        logkeys.remember(s, [(self._seen[fp], by_fp[fp]) for fp in fps])
        for (fp, loc, source, _), place in zip(located, places, strict=True):
            cid = self._seen[fp]
            commit, author, email, committer = _git(loc)
            key = (cid, source, place, loc.line, commit)
            occurrences[key] = (*key, author, email, committer, at, at, self.scan_id,
                                self.scan_id)
            placed[fp].append({"source": source, "location": f"{place}:{loc.line}",
                               "commit": commit or None, "author": _person(author, email)})
        s.insert(
            "INSERT INTO occurrences (credential_id, source, place, line, commit_id, author, "
            "author_email, committer, first_seen, last_seen, first_scan_id, last_scan_id)",
            [occurrences[k] for k in sorted(occurrences)],
            "ON CONFLICT (credential_id, source, place, line, commit_id) DO UPDATE SET "
            "present = 1, author = coalesce(excluded.author, occurrences.author), "
            "author_email = coalesce(excluded.author_email, occurrences.author_email), "
            "committer = coalesce(excluded.committer, occurrences.committer), "
            "last_seen = CASE WHEN excluded.last_seen > occurrences.last_seen "
            "THEN excluded.last_seen ELSE occurrences.last_seen END, "
            "last_scan_id = CASE WHEN excluded.last_scan_id > occurrences.last_scan_id "
            "THEN excluded.last_scan_id ELSE occurrences.last_scan_id END",
        )
        due: list[outbox.NewAlert] = []
        for fp in fps:
            for trigger, detail in self._changes(s, by_fp[fp], old.get(fp), rows[fp]):
                body = alerts.payload(trigger, rows[fp], placed[fp], len(placed[fp]),
                                      self.scan_id)
                due.append(outbox.NewAlert(alerts.dedupe_key(trigger, fp, detail), trigger,
                                           fp, body))
        added = outbox.enqueue_all(s, due, self.now)
        # counted last: a batch PostgreSQL aborted (deadlock) runs again from the start
        self.stats.credentials += len(fps)
        self.stats.new_credentials += sum(fp not in old for fp in fps)
        self.stats.occurrences += len(occurrences)
        self.stats.alerts += added

    def _select(self, s: Store, fps: Sequence[str], *, lock: bool) -> list[Row]:
        marks = ", ".join("?" for _ in fps)
        lock_clause = " FOR UPDATE" if lock and s.dialect == "postgresql" else ""
        return s.rows(
            "SELECT * FROM credentials WHERE fingerprint IN "
            f"({marks}) ORDER BY fingerprint{lock_clause}",
            fps,
        )

    def _changes(
        self, s: Store, finding: Finding, old: Row | None, row: Row
    ) -> list[tuple[str, str]]:
        """Verification history and reopening; the alerts (trigger, dedupe detail) this
        finding calls for."""
        cid = int(row["id"])
        status = str(row["status"])
        triggers: list[tuple[str, str]] = []
        verification = finding.explanation.verification
        if verification is not None:
            live = None if verification.live is None else int(verification.live)
            s.execute(
                "INSERT INTO verifications (credential_id, scan_id, checked_at, status, live, "
                "summary) VALUES (?, ?, ?, ?, ?, ?)",
                (cid, self.scan_id, verification.checked_at or stamp(self.now),
                 verification.status, live, mask(verification.summary)),
            )
            was_live = old is not None and old["live"] == 1
            # live after it was not, or after someone marked it revoked
            became_live = live == 1 and (not was_live or status == "revoked")
            times = int(row["times_live"]) + int(became_live)
            s.execute(
                "UPDATE credentials SET live = ?, verified_at = ?, times_live = ? WHERE id = ?",
                (live, verification.checked_at or stamp(self.now), times, cid),
            )
            if became_live:
                if status == "revoked":
                    set_status(s, cid, "open", actor="keyscope", note=REOPENED, now=self.now)
                    status = "open"
                if status != "accepted-risk":
                    triggers.append(("live", str(times)))
        if old is None:
            if not triggers:
                triggers.append(("new", ""))
        elif int(row["severity"]) > int(old["severity"]) and status not in alerts.QUIET_STATUSES:
            triggers.append(("severity-raised", finding.severity.label))
        return triggers

    # -- the end of the scan -----------------------------------------------------

    def _finish(self, s: Store, complete: bool) -> None:
        at = stamp(self.now)
        if complete:
            for source in self.roots.sources:
                s.execute(
                    "UPDATE occurrences SET present = 0 WHERE source = ? AND present = 1 "
                    "AND last_scan_id < ?",
                    (source, self.scan_id),
                )
        soon = stamp(self.now + timedelta(days=self.rules.expiring_days))
        grace = stamp(self.now - timedelta(days=self.rules.revoked_grace_days))
        ids = sorted(self._seen.values())
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            marks = ", ".join("?" for _ in chunk)
            for row in s.rows(
                f"SELECT * FROM credentials WHERE id IN ({marks}) AND ("
                "(expires IS NOT NULL AND expires > ? AND expires <= ? "
                "AND status IN ('open', 'acknowledged')) "
                "OR (status = 'revoked' AND status_at <= ?)) ORDER BY id",
                (*chunk, at, soon, grace),
            ):
                if row["status"] == "revoked":
                    self._alert_from_db(s, "revoked-still-present", row, str(row["status_at"]))
                else:
                    self._alert_from_db(s, "expiring", row, str(row["expires"]))
        s.execute(
            "UPDATE scans SET finished_at = ?, complete = ?, findings = ? WHERE id = ?",
            (at, int(complete), len(self._seen), self.scan_id),
        )

    def _alert_from_db(self, s: Store, trigger: str, row: Row, detail: str) -> None:
        located = occurrences_of(s, int(row["id"]), present_only=True)
        shown = [
            {"source": o["source"], "location": f"{o['place']}:{o['line']}",
             "commit": o["commit_id"] or None,
             "author": _person(o["author"], o["author_email"])}
            for o in located[: alerts.MAX_LOCATIONS]
        ]
        body = alerts.payload(trigger, row, shown, len(located), self.scan_id)
        if outbox.enqueue(
            s, dedupe_key=alerts.dedupe_key(trigger, str(row["fingerprint"]), detail),
            trigger=trigger, fingerprint=str(row["fingerprint"]), payload=body, now=self.now,
        ):
            self.stats.alerts += 1


def describe(options: object) -> dict[str, object]:
    """The plain settings of an options dataclass, nested ones (the selection, the
    policy's thresholds) too, for the scan row: numbers, flags, strings (masked) and
    lists of them; anything else is left out."""
    described: dict[str, object] = {}
    for f in fields(options) if is_dataclass(options) else ():
        value = getattr(options, f.name)
        if is_dataclass(value) and not isinstance(value, type):
            described[f.name] = describe(value)
        elif isinstance(value, bool | int | str) or value is None:
            described[f.name] = mask(value) if isinstance(value, str) else value
        elif isinstance(value, tuple | list) and all(isinstance(v, str | Path) for v in value):
            described[f.name] = [mask(str(v)) for v in value]
    return described


def occurrences_of(s: Store, credential_id: int, *, present_only: bool = False) -> list[Row]:
    """A credential's occurrences, present ones first."""
    where = " AND present = 1" if present_only else ""
    return s.rows(
        f"SELECT * FROM occurrences WHERE credential_id = ?{where} "
        "ORDER BY present DESC, source, place, line, commit_id",
        (credential_id,),
    )


def set_status(
    s: Store, credential_id: int, status: str, *, actor: str, note: str, now: datetime
) -> None:
    """Change a credential's triage status and record who, when and why."""
    with s.transaction():
        previous = s.scalar("SELECT status FROM credentials WHERE id = ?", (credential_id,))
        s.execute(
            "UPDATE credentials SET status = ?, status_at = ? WHERE id = ?",
            (status, stamp(now), credential_id),
        )
        s.execute(
            "INSERT INTO triage_events (credential_id, at, actor, status, previous, note) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (credential_id, stamp(now), actor, status, previous, mask(note)),
        )


def _credential(exp: Explanation, rule_id: str) -> tuple[object, ...]:
    access = exp.access
    validity = access.validity
    expiry = validity.effective_expiry or validity.expiry
    scope, sentence, *steps = masked([
        access.scope.description, exp.sentence,
        *(step.description + (f": {step.command}" if step.command else "")
          for step in access.revocation.steps),
    ])
    return (
        exp.fingerprint, access.provider, access.kind, rule_id, access.account, scope,
        int(exp.severity), stamp(expiry) if expiry else None, sentence, json.dumps(steps),
    )


def _owners(finding: Finding) -> str:
    """The finding's owners (``owners/``) as the ``owners`` column's JSON."""
    return json.dumps([{"name": o.name, "email": o.email, "via": list(o.via)}
                       for o in finding.owners])


def _git(loc: Location) -> tuple[str, str | None, str | None, str | None]:
    """(commit or "", author, author e-mail, committer) of a location."""
    g = loc.git
    if g is None:
        return "", None, None, None
    return g.commit or "", g.author, g.email, g.committer


def _person(name: Any, email: Any) -> str | None:
    if name and email:
        return f"{name} <{email}>"
    return str(name or email) if (name or email) else None
