"""Which targets of a target list a ``--cluster --db`` scan finished, kept in the
inventory (table ``scan_targets``) as each one ends, in the transaction after its
findings. A run of the same targets with the same settings that finds rows left by
an interrupted run scans only the targets not finished there; a run that ends
forgets its rows. Targets are kept without credentials (a URL's ``user:token@``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime

from keyscope.inventory.store import Store, stamp
from keyscope.redact import mask
from keyscope.sources.remote import split_credentials


def shown_target(target: str) -> str:
    """The target as stored and shown: no credentials in it."""
    return mask(split_credentials(target)[0])


def run_key(targets: Iterable[str], settings: Mapping[str, object]) -> str:
    """One key per target list and scan settings (order and repeats aside)."""
    text = json.dumps([sorted({shown_target(t) for t in targets}), settings],
                      sort_keys=True, default=str)  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()


class TargetLog:
    """The finished targets of one run key."""

    def __init__(self, store: Store, key: str, scan_id: int) -> None:
        self.store = store
        self.key = key
        self.scan_id = scan_id

    def finished(self) -> dict[str, int]:
        """Target (as shown) → the scan that finished it, from an interrupted run."""
        rows = self.store.rows(
            "SELECT target, scan_id FROM scan_targets WHERE run_key = ? AND status = 'done'",
            (self.key,),
        )
        return {str(r["target"]): int(r["scan_id"] or 0) for r in rows}

    def done(
        self, target: str, now: datetime, *, failed: str | None, size: int, findings: int
    ) -> None:
        """``target`` ended: scanned (``failed`` None) or not, with the reason."""
        self.store.atomic(lambda s: s.execute(
            "INSERT INTO scan_targets (run_key, target, status, reason, scan_id, bytes, "
            "findings, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_key, target) DO UPDATE SET status = excluded.status, "
            "reason = excluded.reason, scan_id = excluded.scan_id, bytes = excluded.bytes, "
            "findings = excluded.findings, finished_at = excluded.finished_at",
            (self.key, shown_target(target), "failed" if failed else "done", failed,
             self.scan_id, size, findings, stamp(now)),
        ))  # fmt: skip

    def forget(self) -> None:
        """The run ended: the next run of the same list scans every target again."""
        self.store.atomic(
            lambda s: s.execute("DELETE FROM scan_targets WHERE run_key = ?", (self.key,))
        )
