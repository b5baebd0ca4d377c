"""``keyscope inventory list --format html``: the inventory drawn by the scan report's
page (``report/html.render_page``: the same self-contained page, script, style and
Content-Security-Policy).

Each credential becomes one of the page's findings, with what the inventory holds:
its occurrences as locations (source and place, commit and author, first and last
seen, still there or not), its verification history, its triage status and its
owners. The timeline of an account shows when keyscope first saw each occurrence
and, for one no longer found, the last scan that saw it. The inventory holds no
secret, and every string is masked again on the way out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from keyscope.inventory import queries
from keyscope.inventory.store import Store, stamp
from keyscope.redact import redacted
from keyscope.report.html import location_link, render_page
from keyscope.sources.remote import is_remote


def inventory_page(store: Store, filters: queries.Filters, now: datetime) -> str:
    """The page of the credentials ``filters`` selects, worst first."""
    stories = queries.stories(store, queries.list_credentials(store, filters, now))
    [count] = store.rows("SELECT COUNT(*) AS n FROM scans")
    data = page_data(stories, now, int(count["n"]))
    return render_page(data, f"keyscope inventory: {len(stories)} credentials",
                       "written <time>{now}</time> from the inventory")


def page_data(stories: list[dict[str, Any]], now: datetime, scans: int) -> dict[str, Any]:
    """The page's data (``report/html.page_data``'s shape) from ``queries.story``s."""
    at = stamp(now)
    shared: list[Any] = [[]]  # 0: no capabilities (the inventory keeps none)
    findings = []
    # one timeline per account (else per credential), as the page groups its cards
    timelines: dict[str, list[dict[str, Any]]] = {}
    for s in stories:
        shared.append({"summary": "", "steps": [
            {"description": step, "command": None} for step in s["revocation"]]})
        findings.append(_finding(s, at, len(shared) - 1))
        subject = (f"storage account '{s['account']}'" if s["account"]
                   else f"credential {s['fingerprint']}")
        timelines.setdefault(subject, []).extend(_events(s))
    data: dict[str, Any] = {
        "now": at,
        "stats": {},
        "findings": findings,
        "shared": shared,
        "model_findings": [],
        "timeline": [{"subject": k, "events": sorted(v, key=lambda e: str(e["date"]))}
                     for k, v in timelines.items() if v],
        "skipped": [],
        "history_cut": [],
        "secrets_shown": False,
        "inventory": {"scans": scans},
    }
    result: dict[str, Any] = redacted(data)
    return result


def _finding(s: dict[str, Any], now: str, revocation: int) -> dict[str, Any]:
    verifications = s["verifications"]
    expires = s["expires"]
    return {
        "fingerprint": s["fingerprint"],
        "rule_id": s["rule_id"],
        "severity": s["severity"],
        "sentence": s["sentence"],
        "redacted": s["fingerprint"],  # the inventory keeps no part of the secret
        "provider": s["provider"],
        "kind_label": s["kind"],
        "account": s["account"],
        "services": [],
        "scope": s["scope"],
        "permissions": None,
        "capabilities": 0,
        "destructive": [],
        "validity": {
            "start": None, "expiry": expires, "expired": bool(expires and expires <= now),
            "summary": f"expires {expires}" if expires else "no expiry recorded",
        },
        "network": None,
        "revocation": revocation,
        "verification": verifications[-1]["summary"] if verifications else None,
        "locations": [_location(o) for o in s["occurrences"]],
        "owners": s["owners"],
        "inventory": {
            "status": s["status"], "status_at": s["status_at"],
            "first_seen": s["first_seen"], "last_seen": s["last_seen"],
            "verifications": verifications, "triage": s["triage"],
        },
    }


def _location(o: dict[str, Any]) -> dict[str, Any]:
    source, place, commit = o["source"], o["place"], o["commit"]
    inside = "!/" in place
    if is_remote(source):
        base = source.removesuffix(".git").rstrip("/")
        href = location_link(place, o["line"], inside, commit, ((".", base, ""),))
    else:
        href = location_link(f"{source}/{place}", o["line"], inside, commit, ())
    return {
        "path": f"{source}/{place}",
        "line": o["line"],
        "origin": [],
        "snippet": "",
        "href": href,
        "git": None if not commit else {
            "commit": commit, "date": None, "author": o["author"], "removed_in": None,
            "removed_date": None, "removed_from_head": False, "present_at_head": o["present"],
        },
        "image": None,
        "captured": None,
        "secret": None,
        "seen": {"first": o["first_seen"], "last": o["last_seen"], "present": o["present"]},
    }


def _events(s: dict[str, Any]) -> list[dict[str, Any]]:
    """When keyscope first saw each occurrence, and the last scan that saw one gone."""
    out = []
    for o in s["occurrences"]:
        common = {"commit": o["commit"] or "", "author": o["author"] or "",
                  "path": f"{o['source']}/{o['place']}", "origin": [], "line": o["line"],
                  "lines": [o["line"]], "fingerprint": s["fingerprint"], "kind": s["kind"],
                  "severity": s["severity"], "expiry": s["expires"]}
        out.append({"date": o["first_seen"], "event": "first-seen", **common})
        if not o["present"]:
            out.append({"date": o["last_seen"], "event": "gone", **common})
    return out
