"""``keyscope posture``'s arguments (imported at every CLI start: kept light; the action
loads ``command`` when it runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
examples:
  az account get-access-token --query accessToken -o tsv |
    keyscope posture --subscription SUB-ID --arm-token -
  keyscope posture --subscription SUB-ID          (azure-identity: pip install 'keyscope[azure]')
  keyscope posture --connection-string - < cs.txt  (one account's Blob service)
  keyscope posture --connection-string - --allow-internal   (Azurite on loopback)

Only GET requests are sent, through the same guard as --verify (HTTPS, internal
addresses only with --allow-internal, every request in the audit log); listKeys and
every other write are never called. For each account: what a leaked account SAS,
service SAS or account key could do given its settings, which settings would contain
it, and the az command that changes each.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """The ``posture`` command; the caller adds ``--allow-internal``."""
    p = sub.add_parser(
        "posture",
        help="check your own storage accounts: how bad would a leaked SAS or key be",
        description="Read your own Azure Storage accounts' settings (read-only) and say, per "
        "account, what a leaked account SAS, service SAS or account key could do there.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--subscription", action="append", default=[], metavar="ID",
                   help="read every storage account of this subscription (repeatable)")
    p.add_argument("--arm-token", metavar="-",
                   help="'-': read the management bearer token from standard input "
                   "(default: azure-identity's DefaultAzureCredential)")
    p.add_argument("--arm-endpoint", metavar="URL", default=None,
                   help="the Azure Resource Manager endpoint (default: "
                   "https://management.azure.com)")
    p.add_argument("--connection-string", metavar="CS",
                   help="read one account's Blob service with this connection string, or '-' "
                   "to read it from standard input")
    p.add_argument("--db", nargs="?", const="", metavar="URL",
                   help="inventory: accounts with a recorded token come first, re-rated; the "
                   "results are recorded (bare: $KEYSCOPE_DB or the default database)")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="output format (default: text)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="text: also list every capability of each credential kind")
    p.add_argument("--audit-log", type=Path, metavar="FILE",
                   help="JSON lines audit log of every request (default: the --verify log)")
    p.add_argument("--now", metavar="TIME", help=argparse.SUPPRESS)
    return p
