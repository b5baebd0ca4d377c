"""``keyscope inventory``'s arguments (imported by every CLI start: kept light; the
actions load ``commands`` when one runs)."""

from __future__ import annotations

import argparse

from keyscope.inventory import STATUSES
from keyscope.model import Severity


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``inventory`` command and its actions."""
    p = sub.add_parser(
        "inventory",
        help="the credentials recorded by 'scan --db': list, show, triage, export, outbox",
        description="Every credential recorded by 'keyscope scan --db' (fingerprints, never "
        "secrets). The database: --db URL, else $KEYSCOPE_DB, else "
        "$XDG_DATA_HOME/keyscope/inventory.sqlite3.",
    )
    actions = p.add_subparsers(dest="inventory_command", metavar="ACTION", required=True)

    ls = actions.add_parser("list", help="credentials, worst first, filtered")
    ls.add_argument("--status", action="append", default=[], choices=STATUSES,
                    help="only this triage status (repeatable)")
    ls.add_argument("--severity", metavar="LEVEL",
                    choices=[s.label for s in Severity], help="only this severity or worse")
    ls.add_argument("--provider", metavar="NAME", help="e.g. azure-storage, aws, gcp")
    ls.add_argument("--account", metavar="NAME", help="only credentials of this account")
    ls.add_argument("--source", metavar="SOURCE",
                    help="only credentials seen in this source (a path or URL as scanned)")
    ls.add_argument("--expiring-within", metavar="DURATION",
                    help="only credentials not yet expired that expire within DURATION (30d)")
    ls.add_argument("--live", action="store_true", help="only those the last live check accepted")
    ls.add_argument("--present", action="store_true",
                    help="only those the latest scan of a source still found")
    ls.add_argument("--format", choices=("text", "json", "csv", "html"), default="text",
                    help="html: one self-contained page (the scan report's), with each "
                    "credential's occurrences, verification history, triage and owners")
    ls.add_argument("-o", "--output", metavar="FILE", help="write there instead of stdout")

    show = actions.add_parser("show", help="one credential: every occurrence and its history")
    show.add_argument("fingerprint", metavar="FINGERPRINT")
    show.add_argument("--format", choices=("text", "json"), default="text")

    tri = actions.add_parser("triage", help="set a credential's status (who, when, why kept)")
    tri.add_argument("fingerprint", metavar="FINGERPRINT")
    tri.add_argument("--status", required=True, choices=STATUSES)
    tri.add_argument("--note", default="", metavar="TEXT", help="why")
    tri.add_argument("--by", metavar="NAME", help="who (default: $USER)")

    exp = actions.add_parser("export", help="the whole inventory as JSON for other tools")
    exp.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")

    box = actions.add_parser("outbox", help="alerts not yet delivered to every target")
    box.add_argument("--all", action="store_true", help="also delivered and skipped ones")
    box.add_argument("--format", choices=("text", "json"), default="text")

    for action in (ls, show, tri, exp, box):
        action.add_argument("--db", metavar="URL",
                            help="postgresql://… or a SQLite file (default: $KEYSCOPE_DB, "
                            "else the user data directory)")
        action.add_argument("--now", metavar="TIME", help=argparse.SUPPRESS)
