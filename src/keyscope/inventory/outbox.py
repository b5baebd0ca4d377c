"""The outbox: alerts kept in the database until every target has them.

``enqueue`` adds an alert once (its dedupe key is unique). ``due`` gives each target
name a delivery row per alert and returns the deliveries whose time has come;
``delivered``, ``skipped`` and ``failed`` close or postpone one. A failure is retried
with exponential backoff across runs (1 minute, doubling, at most 6 hours) and never
dropped. ``drain`` does all of it with one send callable per target: at least once
per target (a process killed between a send and its commit sends that one again);
a delivery is claimed for ``LEASE`` seconds before its send, so two processes
draining at once do not both send it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keyscope.inventory.store import Store, later, stamp
from keyscope.redact import mask

FIRST_RETRY = 60  # seconds
MAX_RETRY = 6 * 3600
LEASE = 300  # a claimed delivery is someone's for this long
ERROR_CHARS = 200

# Sends one alert; False: the target does not want it (below its minimum severity), so
# the delivery is marked skipped rather than delivered.
Send = Callable[[Mapping[str, object]], bool | None]


@dataclass(frozen=True)
class PendingDelivery:
    """One alert still owed to one target."""

    alert_id: int
    target: str
    trigger: str
    fingerprint: str
    payload: Mapping[str, object]
    attempts: int
    next_attempt_at: str
    created_at: str
    last_error: str | None = None


@dataclass
class DrainResult:
    delivered: list[tuple[int, str]] = field(default_factory=list)
    failed: list[tuple[int, str, str]] = field(default_factory=list)  # + the short error


def backoff(attempts: int) -> int:
    """Seconds before the next try after ``attempts`` failures: 60, 120, 240 … 6 h."""
    return int(min(FIRST_RETRY * 2 ** max(attempts - 1, 0), MAX_RETRY))


def short_error(error: object) -> str:
    """An error as stored: one line, secrets masked, at most ``ERROR_CHARS``."""
    text = " ".join(str(error).split()) or type(error).__name__
    text = mask(text)
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


@dataclass(frozen=True)
class NewAlert:
    """An alert to enqueue."""

    dedupe_key: str
    trigger: str
    fingerprint: str
    payload: Mapping[str, object]


def enqueue(
    store: Store,
    *,
    dedupe_key: str,
    trigger: str,
    fingerprint: str,
    payload: Mapping[str, object],
    now: datetime,
) -> bool:
    """Add an alert unless one with ``dedupe_key`` exists; whether it was added."""
    return enqueue_all(store, [NewAlert(dedupe_key, trigger, fingerprint, payload)], now) == 1


def enqueue_all(store: Store, new: Sequence[NewAlert], now: datetime) -> int:
    """:func:`enqueue` for many alerts at once; how many were added."""
    unique = {a.dedupe_key: a for a in new}  # one statement may not add a key twice
    done = store.insert(
        'INSERT INTO alerts (dedupe_key, "trigger", fingerprint, payload, created_at)',
        [(a.dedupe_key, a.trigger, a.fingerprint, json.dumps(a.payload, sort_keys=True),
          stamp(now)) for a in unique.values()],
        "ON CONFLICT (dedupe_key) DO NOTHING",
    )
    return sum(int(r["count"]) for r in done)


def due(store: Store, targets: Sequence[str], now: datetime) -> list[PendingDelivery]:
    """Create the missing delivery rows (one per alert and target name) and return the
    pending deliveries of ``targets`` whose next attempt is due, oldest alert first."""
    if not targets:
        return []
    at = stamp(now)
    marks = ", ".join("?" for _ in targets)
    with store.transaction():
        for target in targets:
            store.execute(
                "INSERT INTO deliveries (alert_id, target, status, attempts, next_attempt_at) "
                "SELECT a.id, ?, 'pending', 0, a.created_at FROM alerts a "
                "WHERE NOT EXISTS (SELECT 1 FROM deliveries d "
                "WHERE d.alert_id = a.id AND d.target = ?) "
                "ON CONFLICT (alert_id, target) DO NOTHING",
                (target, target),
            )
        rows = store.rows(
            'SELECT d.alert_id, d.target, a."trigger" AS trigger, a.fingerprint, a.payload, '
            "d.attempts, d.next_attempt_at, a.created_at, d.last_error "
            "FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
            f"WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND d.target IN ({marks}) "
            "ORDER BY d.alert_id, d.target",
            (at, *targets),
        )
    return [_pending(row) for row in rows]


def pending(store: Store, *, every: bool = False) -> list[dict[str, Any]]:
    """Deliveries not yet delivered (``every``: all of them), and alerts no target has
    taken yet (``target`` None), for ``inventory outbox``."""
    where = "" if every else "WHERE d.status IS NULL OR d.status = 'pending'"
    return store.rows(
        'SELECT a.id AS alert_id, a."trigger" AS trigger, a.fingerprint, a.created_at, '
        "d.target, d.status, d.attempts, d.next_attempt_at, d.last_error, d.delivered_at "
        f"FROM alerts a LEFT JOIN deliveries d ON d.alert_id = a.id {where} "
        "ORDER BY a.id, d.target"
    )


def delivered(store: Store, alert_id: int, target: str, now: datetime) -> None:
    """The target has the alert."""
    store.execute(
        "UPDATE deliveries SET status = 'delivered', delivered_at = ?, "
        "attempts = attempts + 1, last_error = NULL WHERE alert_id = ? AND target = ?",
        (stamp(now), alert_id, target),
    )


def skipped(store: Store, alert_id: int, target: str, now: datetime, reason: str = "") -> None:
    """The target does not want this alert (e.g. below its minimum severity)."""
    store.execute(
        "UPDATE deliveries SET status = 'skipped', delivered_at = ?, last_error = ? "
        "WHERE alert_id = ? AND target = ?",
        (stamp(now), short_error(reason) if reason else None, alert_id, target),
    )


def failed(store: Store, alert_id: int, target: str, now: datetime, error: object) -> None:
    """The send failed: try again after :func:`backoff`; never dropped."""
    with store.transaction():
        attempts = store.scalar(
            "SELECT attempts FROM deliveries WHERE alert_id = ? AND target = ?",
            (alert_id, target),
        )
        attempts = int(attempts or 0) + 1
        store.execute(
            "UPDATE deliveries SET status = 'pending', attempts = ?, next_attempt_at = ?, "
            "last_error = ? WHERE alert_id = ? AND target = ?",
            (attempts, later(stamp(now), backoff(attempts)), short_error(error), alert_id,
             target),
        )


def _claim(store: Store, delivery: PendingDelivery, now: datetime) -> bool:
    """Take the delivery for :data:`LEASE` seconds; False if another process has it."""
    return (
        store.execute(
            "UPDATE deliveries SET next_attempt_at = ? WHERE alert_id = ? AND target = ? "
            "AND status = 'pending' AND next_attempt_at = ?",
            (later(stamp(now), LEASE), delivery.alert_id, delivery.target,
             delivery.next_attempt_at),
        )
        == 1
    )


def drain(store: Store, targets: Mapping[str, Send], now: datetime) -> DrainResult:
    """Send every due delivery through its target's callable; an exception marks it
    failed (retried on a later run). Returns what was delivered and what failed."""
    result = DrainResult()
    for delivery in due(store, list(targets), now):
        if not _claim(store, delivery, now):
            continue
        try:
            wanted = targets[delivery.target](delivery.payload)
        except Exception as exc:
            failed(store, delivery.alert_id, delivery.target, now, exc)
            result.failed.append((delivery.alert_id, delivery.target, short_error(exc)))
            continue
        if wanted is False:
            skipped(store, delivery.alert_id, delivery.target, now, "not wanted by the target")
            continue
        delivered(store, delivery.alert_id, delivery.target, now)
        result.delivered.append((delivery.alert_id, delivery.target))
    return result


def _pending(row: Mapping[str, Any]) -> PendingDelivery:
    return PendingDelivery(
        alert_id=int(row["alert_id"]),
        target=str(row["target"]),
        trigger=str(row["trigger"]),
        fingerprint=str(row["fingerprint"]),
        payload=json.loads(row["payload"]),
        attempts=int(row["attempts"]),
        next_attempt_at=str(row["next_attempt_at"]),
        created_at=str(row["created_at"]),
        last_error=row["last_error"],
    )
