"""Command line: wires arguments to the library; no logic a library caller would need.

Exit codes: 0 success; 1 findings at or above --fail-on (scan); 2 usage or input error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from keyscope import __version__
from keyscope.analyze.policy import load_policy
from keyscope.errors import KeyscopeError
from keyscope.explain import explain, resolve_now
from keyscope.report import jsonout, text

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2

EXPLAIN_EPILOG = """\
examples:
  keyscope explain 'https://acct.blob.core.windows.net/models/w.pt?sv=…&sig=…'
  pbpaste | keyscope explain -            (keeps the secret out of shell history)
  keyscope explain --account acct 'KEY=='  (an account key needs its account)
  keyscope explain --key "$KEY" 'sv=…&ss=bfqt&…&sig=…'  (was it signed with this key?)

Accepts a SAS URL on any Azure Storage host (blob, dfs, file, queue, table,
-secondary, sovereign clouds, Azurite, custom domains), a bare SAS query string
(any order; URL-, HTML- or JSON-escaped), a connection string, or an account key.
Nothing is sent over the network. Exit status: 0 explained, 2 not a valid credential.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keyscope",
        description="Find leaked cloud-storage credentials and explain what they unlock.",
    )
    parser.add_argument("--version", action="version", version=f"keyscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "explain",
        help="decode a credential offline: what it unlocks, until when, how to revoke it",
        description="Decode an Azure Storage credential offline into its blast radius.",
        epilog=EXPLAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "value",
        nargs="?",
        default="-",
        help="the credential, or - (default) to read it from standard input",
    )
    p.add_argument(
        "--account",
        metavar="NAME",
        help="storage account name, for a bare key or a SAS given without its URL",
    )
    p.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="KEY",
        help="a co-leaked account key: check whether it signed the SAS (repeatable)",
    )
    p.add_argument(
        "--now",
        metavar="TIME",
        help="evaluate lifetimes at this ISO-8601 time, for reproducible output",
    )
    p.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="policy file (default: keyscope.toml or [tool.keyscope] in "
        "pyproject.toml, searched upwards)",
    )
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the terminal output (default: auto, on a TTY)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        if args.command == "explain":
            return _explain(args)
    except KeyscopeError as exc:
        print(f"keyscope: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("keyscope: interrupted", file=sys.stderr)
        return 130
    return EXIT_ERROR


def _explain(args: argparse.Namespace) -> int:
    value: str = args.value
    if value == "-":
        if sys.stdin is None or sys.stdin.isatty():
            print("keyscope: error: give a credential, or pipe one in and use '-'", file=sys.stderr)
            return EXIT_ERROR
        value = sys.stdin.buffer.read(2 << 20).decode("utf-8", errors="replace")
    now = resolve_now(args.now)
    policy = load_policy(args.config)
    explanations = explain(value, now, account=args.account, keys=tuple(args.key), policy=policy)
    color = _use_color(args.color)
    render = jsonout.render_explain if args.format == "json" else text.render_explain
    sys.stdout.write(render(explanations, now, color=color))
    return EXIT_OK


def _use_color(choice: str) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()
