"""When a credential deserves an alert, and what the alert says.

Five triggers, each with a dedupe key so that it is enqueued once however many scans
see the same state: ``new`` (first time in the inventory), ``severity-raised`` (to a
level not alerted before), ``live`` (a live check accepted it, after it was not
live), ``expiring`` (its expiry is within ``expiring_days``; once per expiry),
``revoked-still-present`` (marked revoked ``revoked_grace_days`` ago and still
found; once per marking). A credential new and live in the same scan alerts once,
as ``live``. ``used-after-leak`` comes from ``keyscope usage --db`` (storage logs
show the credential accepted after the commit that leaked it; once per first such
use). The payload (schema ``keyscope.alert/1``) never holds the
secret: the fingerprint, the explanation, where it was seen, how to revoke it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyscope.errors import ConfigError
from keyscope.model import Severity

SCHEMA = "keyscope.alert/1"
TRIGGERS = ("new", "severity-raised", "live", "expiring", "revoked-still-present",
            "used-after-leak")
MAX_LOCATIONS = 20
# No alert for a credential the security team already judged (but "live" still
# alerts for false positives: a live credential is no false positive).
QUIET_STATUSES = ("false-positive", "accepted-risk")


@dataclass(frozen=True)
class AlertRules:
    """The time-based triggers' thresholds (the config file's ``[alerts]`` table:
    ``expiring-days``, ``revoked-grace-days``)."""

    expiring_days: int = 30
    revoked_grace_days: int = 7


_SETTINGS = {"expiring-days": "expiring_days", "revoked-grace-days": "revoked_grace_days"}
MAX_DAYS = 3650


def alert_rules_from_mapping(data: object, source: str) -> AlertRules:
    """The ``[alerts]`` table as rules; ``ConfigError`` names a wrong key or value."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: [alerts] must be a table")
    values: dict[str, int] = {}
    for key, value in data.items():
        if key not in _SETTINGS:
            known = ", ".join(_SETTINGS)
            raise ConfigError(f"{source}: alerts.{key}: unknown setting (known: {known})")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
            raise ConfigError(
                f"{source}: alerts.{key}: a whole number of days from 0 to {MAX_DAYS}"
            )
        values[_SETTINGS[key]] = value
    return AlertRules(**values)


def load_alert_rules(path: Path | None = None, start: Path | None = None) -> AlertRules:
    """The ``[alerts]`` table of the config file (see ``config.config_table``); the
    default thresholds without one."""
    from keyscope.config import config_table  # the rule registry with it: only when asked

    found = config_table(path, start)
    if found is None or "alerts" not in found[1]:
        return AlertRules()
    return alert_rules_from_mapping(found[1]["alerts"], str(found[0]))


def dedupe_key(trigger: str, fingerprint: str, detail: str = "") -> str:
    """``trigger:fingerprint[:detail]``: the same key is never enqueued twice."""
    return f"{trigger}:{fingerprint}" + (f":{detail}" if detail else "")


def payload(
    trigger: str,
    credential: Mapping[str, Any],
    locations: Sequence[Mapping[str, object]],
    total: int,
    scan_id: int,
) -> dict[str, object]:
    """The alert's JSON body from a ``credentials`` row and its locations (each
    ``{"source", "location", "commit", "author"}``; ``total``: how many there are)."""
    shown = [dict(loc) for loc in locations[:MAX_LOCATIONS]]
    body: dict[str, object] = {
        "schema": SCHEMA,
        "trigger": trigger,
        "fingerprint": credential["fingerprint"],
        "provider": credential["provider"],
        "kind": credential["kind"],
        "account": credential["account"],
        "severity": Severity(int(credential["severity"])).label,
        "sentence": credential["sentence"],
        "expires": credential["expires"],
        "first_seen": credential["first_seen"],
        "scan_id": scan_id,
        "locations": shown,
        "revocation": list(json.loads(credential["revocation"])),
        "owners": list(json.loads(credential.get("owners") or "[]")),
    }
    if total > len(shown):
        body["more"] = total - len(shown)
    return body
