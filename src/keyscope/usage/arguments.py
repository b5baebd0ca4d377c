"""``keyscope usage``'s arguments (imported by every CLI start: kept light; the
command loads ``usage.command`` when it runs)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``usage`` command."""
    p = sub.add_parser(
        "usage",
        help="was a leaked Azure Storage credential used? match it against the account's logs",
        description="Read storage logs (Azure Monitor resource-log JSON lines, Log Analytics "
        "CSV/JSON exports of StorageBlobLogs/File/Queue/TableLogs, classic $logs v1.0/v2.0; "
        "files, directories, gzip) and report, per credential, every request made with it: "
        "by AuthenticationHash (exact) or, in classic logs, by the token's unsigned "
        "parameters (strength stated). Exit 1 when a credential was accepted after its "
        "leak (or, leak date unknown, at all).",
    )
    p.add_argument("--logs", nargs="+", default=[], metavar="PATH",
                   help="log files or directories (gzip read as is)")
    p.add_argument("--credential", action="append", default=[], metavar="TOKEN",
                   help="a SAS URL, SAS query, connection string or key ('-': read it from "
                   "standard input, out of shell history); repeatable")
    p.add_argument("--from-scan", type=Path, metavar="REPORT",
                   help="the credentials of a 'scan --format json' report (log hashes and "
                   "unsigned parameters; the leak date is the introducing commit's)")
    p.add_argument("--db", nargs="?", const="", metavar="URL",
                   help="the inventory's credentials; their usage is recorded there and a "
                   "use after the leak raises a used-after-leak alert (default URL: "
                   "$KEYSCOPE_DB, else the default inventory)")
    p.add_argument("--leaked-at", metavar="TIME",
                   help="the leak date of the --credential tokens (ISO-8601)")
    p.add_argument("--fetch-logs", metavar="CREDENTIAL",
                   help="also download the account's own $logs and insights-logs-storage* "
                   "blobs with this owner's credential (account SAS with l+r, or a "
                   "connection string with the key; '-': standard input). Read-only: List "
                   "Blobs and Get Blob, recorded in the audit log")
    p.add_argument("--fetch-prefix", default="", metavar="PREFIX",
                   help="only blobs whose names start with PREFIX (e.g. blob/2026/12/)")
    p.add_argument("--fetch-dir", type=Path, metavar="DIR",
                   help="keep the fetched blobs here (default: a temporary directory)")
    p.add_argument("--allow-internal", action="store_true",
                   help="--fetch-logs may reach private and loopback addresses; "
                   "--allow-internal=HOST[:PORT],... only those")
    p.add_argument("--allow-internal-only", action="append", default=[],
                   help=argparse.SUPPRESS)
    p.add_argument("--audit-log", type=Path, metavar="FILE",
                   help="where --fetch-logs records its requests")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the report here")
    p.add_argument("-j", "--jobs", type=int, default=0, metavar="N",
                   help="worker processes (default: one per core)")
    p.add_argument("--now", metavar="TIME", help="the report's time (ISO-8601)")
