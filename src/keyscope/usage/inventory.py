"""``keyscope usage --db``: the credentials to look for come from the inventory, and
each one's usage goes back into it (a use after the leak raises an alert)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import parse_qsl

from keyscope.inventory import logkeys
from keyscope.inventory.store import Store
from keyscope.usage.records import Malformed, parse_time
from keyscope.usage.render import usage_data
from keyscope.usage.run import UsageResult
from keyscope.usage.watched import Watched


def watched_from_db(store: Store) -> tuple[list[Watched], list[int]]:
    """The inventory's Azure credentials as :class:`Watched`, and their row ids."""
    out: list[Watched] = []
    ids: list[int] = []
    for row in logkeys.keys(store):
        leaked = None
        if row["leaked_at"]:
            try:
                leaked = parse_time(str(row["leaked_at"]))
            except Malformed:
                leaked = None
        is_sas = bool(row["sas_hash"])
        out.append(Watched(
            label=f"{row['kind']} of {row['account'] or 'an unknown account'}",
            fingerprint=str(row["fingerprint"]),
            kind="sas" if is_sas else "account-key",
            sas_hash=row["sas_hash"] or None,
            key_hash=row["key_hash"] or None,
            params=tuple(parse_qsl(str(row["unsigned_parameters"] or ""),
                                   keep_blank_values=True)),
            account=row["account"] or None,
            path=row["resource_path"] or None,
            leaked_at=leaked,
        ))
        ids.append(int(row["id"]))
    return out, ids


def record_usage(store: Store, result: UsageResult, ids: Sequence[int],
                 now: datetime) -> int:
    """One usage check per credential of ``ids`` (aligned with ``result.watched``);
    how many ``used-after-leak`` alerts were enqueued."""
    added = 0
    for index, cid in enumerate(ids):
        data = usage_data(result.watched[index], result.tallies.get(index))
        added += logkeys.record_check(store, cid, data, now)
    return added
