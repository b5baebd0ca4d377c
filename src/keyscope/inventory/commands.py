"""``keyscope inventory …``: each action's output (text, JSON, CSV).

``cli`` adds ``arguments.add_parser`` to its subcommands and calls :func:`run`; the
database work is in ``queries`` and ``outbox``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TextIO

from keyscope.config import parse_duration
from keyscope.inventory import outbox, queries
from keyscope.inventory.store import Store, default_url, open_store
from keyscope.model import Severity
from keyscope.redact import terminal_safe

LIST_COLUMNS = ("fingerprint", "severity", "status", "provider", "kind", "account", "expires",
                "live", "present", "occurrences", "first_seen", "last_seen")


def run(args: argparse.Namespace, now: datetime, out: TextIO | None = None) -> int:
    """Carry out one ``inventory`` action; the exit code."""
    out = out or sys.stdout
    with open_store(args.db or default_url()) as store:
        action = args.inventory_command
        if action == "list":
            if args.output:
                with open(args.output, "w", encoding="utf-8") as f:
                    _list(store, args, now, f)
            else:
                _list(store, args, now, out)
        elif action == "show":
            _write_story(queries.story(store, args.fingerprint), args.format, out)
        elif action == "triage":
            actor = args.by or os.environ.get("USER") or os.environ.get("LOGNAME") or "unknown"
            row = queries.triage(store, args.fingerprint, args.status, note=args.note,
                                 actor=actor, now=now)
            out.write(f"{row['fingerprint']}: {row['status']} (by {terminal_safe(actor)})\n")
        elif action == "export":
            text = json.dumps(queries.export(store, now), indent=2) + "\n"
            if args.output:
                with open(args.output, "w", encoding="utf-8") as f:
                    f.write(text)
            else:
                out.write(text)
        elif action == "outbox":
            _write_outbox(outbox.pending(store, every=args.all), args.format, out)
    return 0


def _list(store: Store, args: argparse.Namespace, now: datetime, out: TextIO) -> None:
    if args.format == "html":
        from keyscope.inventory.htmlpage import inventory_page  # only for this format

        out.write(inventory_page(store, _filters(args), now))
        return
    rows = queries.list_credentials(store, _filters(args), now)
    _write_list([queries.credential_view(r) for r in rows], args.format, out)


def _filters(args: argparse.Namespace) -> queries.Filters:
    within = None
    if args.expiring_within:
        within = timedelta(seconds=parse_duration(args.expiring_within, "--expiring-within"))
    return queries.Filters(
        statuses=tuple(args.status),
        min_severity=Severity.parse(args.severity) if args.severity else None,
        provider=args.provider,
        account=args.account,
        source=os.path.realpath(args.source) if args.source and os.path.exists(args.source)
        else args.source,
        expiring_within=within,
        live=args.live,
        present=args.present,
    )


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return terminal_safe(str(value))


def _write_list(rows: Sequence[dict[str, Any]], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        out.write(json.dumps(rows, indent=2) + "\n")
        return
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(LIST_COLUMNS)
        for r in rows:
            writer.writerow(["" if r[c] is None else r[c] for c in LIST_COLUMNS])
        return
    for r in rows:
        out.write(
            f"{r['fingerprint']}  {r['severity']:<8} {r['status']:<14} {_cell(r['provider'])} "
            f"{_cell(r['kind'])}  account {_cell(r['account'])}  expires {_cell(r['expires'])}"
            f"  live {_cell(r['live'])}  present {r['present']}/{r['occurrences']}\n"
        )
    out.write(f"{len(rows)} credential(s)\n")


def _write_story(story: dict[str, Any], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        out.write(json.dumps(story, indent=2) + "\n")
        return
    w = out.write
    w(f"{story['fingerprint']}  {story['severity']}  {story['status']}\n")
    w(f"  {_cell(story['sentence'])}\n")
    w(f"  {story['provider']} {story['kind']}, account {_cell(story['account'])}, "
      f"scope {_cell(story['scope'])}, expires {_cell(story['expires'])}\n")
    w(f"  first seen {story['first_seen']}, last seen {story['last_seen']}\n")
    if story["owners"]:
        w("  owners: " + ", ".join(_cell(o["name"]) for o in story["owners"]) + "\n")
    w("occurrences:\n")
    for o in story["occurrences"]:
        mark = "present" if o["present"] else "gone"
        commit = f" commit {o['commit'][:12]}" if o["commit"] else ""
        author = f" by {_cell(o['author'])}" if o["author"] else ""
        w(f"  [{mark}] {_cell(o['source'])}: {_cell(o['place'])}:{o['line']}{commit}{author}"
          f" (first {o['first_seen']}, last {o['last_seen']})\n")
    w("verifications:\n")
    for v in story["verifications"]:
        w(f"  {v['checked_at']} {v['status']}: {_cell(v['summary'])}\n")
    w("triage:\n")
    for t in story["triage"]:
        w(f"  {t['at']} {_cell(t['actor'])}: {_cell(t['previous'])} -> {t['status']}"
          f"{': ' + _cell(t['note']) if t['note'] else ''}\n")
    w("alerts:\n")
    for a in story["alerts"]:
        w(f"  #{a['id']} {a['trigger']} {a['created_at']}\n")
    w("revocation:\n")
    for step in story["revocation"]:
        w(f"  - {_cell(step)}\n")


def _write_outbox(rows: Sequence[dict[str, Any]], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        out.write(json.dumps(rows, indent=2) + "\n")
        return
    for r in rows:
        target = r["target"] or "(no target yet)"
        state = r["status"] or "pending"
        extra = f", next try {r['next_attempt_at']}" if state == "pending" and r["target"] else ""
        error = f", last error: {_cell(r['last_error'])}" if r["last_error"] else ""
        w = f"#{r['alert_id']} {r['trigger']} {r['fingerprint']} -> {_cell(target)}: {state}"
        out.write(f"{w} ({r['attempts'] or 0} attempt(s){extra}{error})\n")
    out.write(f"{len(rows)} delivery(ies)\n")
