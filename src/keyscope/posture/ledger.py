"""The inventory side of ``posture``: which accounts a token or key was found for (their
blast radius re-rated by the account's settings), and the results recorded (``--db``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from keyscope.inventory.store import Store, stamp
from keyscope.model import Severity
from keyscope.posture.types import AccountPosture, InventoryHit, KindVerdict
from keyscope.redact import mask

# explain's Access.kind → the verdict that speaks for it (None: no verdict applies)
VERDICT_OF = {
    "account-sas": "account-sas",
    "service-sas": "service-sas",
    "service-policy-sas": "service-sas",
    "account-key": "account-key",
}


def found_credentials(store: Store, accounts: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The Azure Storage credentials recorded for these accounts, by account."""
    if not accounts:
        return {}
    marks = ", ".join("?" for _ in accounts)
    rows = store.rows(
        "SELECT fingerprint, kind, status, severity, account FROM credentials "
        f"WHERE provider = 'azure-storage' AND account IN ({marks}) "
        "ORDER BY severity DESC, fingerprint",
        accounts,
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(str(row["account"]), []).append(row)
    return out


def rerate(posture: AccountPosture, rows: list[dict[str, Any]]) -> None:
    """Each recorded credential of the account, its severity seen through the verdict."""
    verdicts = {v.kind: v for v in posture.verdicts}
    hits = []
    for row in rows:
        kind = str(row["kind"])
        before = Severity(int(row["severity"]))
        verdict: KindVerdict | None = verdicts.get(VERDICT_OF.get(kind, ""))
        if verdict is None:
            after, reason = before, (
                "a user delegation SAS is not signed with a key: Shared Key settings do not "
                "contain it" if kind == "user-delegation-sas" else "no account setting changes it")
        elif verdict.state == "blocked":
            after, reason = Severity.INFO, verdict.summary
        elif verdict.state == "restricted":
            after = min(before, verdict.severity)
            reason = verdict.summary
        else:
            after = before
            reason = "nothing on this account contains it: " + verdict.summary
        hits.append(InventoryHit(str(row["fingerprint"]), kind, str(row["status"]), before,
                                 after, reason))
    posture.inventory = hits


def record(store: Store, accounts: list[AccountPosture], document: list[dict[str, Any]],
           now: datetime) -> int:
    """One row per account (its JSON as the report shows it, masked again); rows written."""
    rows = [
        (stamp(now), a.account, a.subscription, json.dumps(a.sources), int(a.severity),
         mask(json.dumps(doc, sort_keys=True)))
        for a, doc in zip(accounts, document, strict=True)
    ]
    with store.transaction():
        store.insert("INSERT INTO posture_checks (checked_at, account, subscription, sources, "
                     "severity, document)", rows)
    return len(rows)
