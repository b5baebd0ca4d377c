"""``keyscope usage``: gather the credentials, read (and optionally fetch) the logs,
report, record in the inventory."""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from keyscope.analyze.timefmt import parse_datetime
from keyscope.errors import KeyscopeError, ParseError
from keyscope.usage.render import render_json, render_text
from keyscope.usage.run import UsageResult, find_usage
from keyscope.usage.watched import Watched, from_report, from_tokens

if TYPE_CHECKING:
    from keyscope.usage.fetch import Fetched

EXIT_USED = 1


def run(args: argparse.Namespace, now: datetime, audit_log: Path | None) -> int:
    """Run the command; the exit code (1: a credential was used after its leak)."""
    if args.jobs < 0:
        raise KeyscopeError("--jobs must be 0 (one per core) or more")
    if args.credential.count("-") + (args.fetch_logs == "-") > 1:
        raise KeyscopeError("standard input can give one value: --credential - or "
                            "--fetch-logs -")
    stdin = sys.stdin.read() if "-" in args.credential or args.fetch_logs == "-" else ""
    leaked = None
    if args.leaked_at:
        try:
            leaked = parse_datetime(args.leaked_at, "--leaked-at")
        except ParseError as exc:
            raise KeyscopeError(str(exc)) from None
    tokens = [stdin if t == "-" else t for t in args.credential]
    try:
        watched: list[Watched] = from_tokens(tokens, leaked) if tokens else []
    except ParseError as exc:
        raise KeyscopeError(f"--credential: {exc}") from None
    if args.from_scan:
        watched += from_report(args.from_scan)
    store = None
    ids: list[int] = []
    first_db = 0
    if args.db is not None:
        from keyscope.inventory.store import open_store
        from keyscope.usage.inventory import watched_from_db

        store = open_store(args.db or None)
        from_db, ids = watched_from_db(store)
        first_db = len(watched)
        watched += from_db
    try:
        if not watched:
            raise KeyscopeError("no Azure Storage credential to look for: give --credential, "
                                "--from-scan REPORT or --db (with Azure credentials in it)")
        paths: list[str | Path] = list(args.logs)
        with tempfile.TemporaryDirectory(prefix="keyscope-logs-") as tmp:
            fetched_skips: list[tuple[str, str]] = []
            if args.fetch_logs:
                fetched = _fetch(args, stdin if args.fetch_logs == "-" else args.fetch_logs,
                                 Path(args.fetch_dir or tmp), audit_log)
                paths.append(fetched.directory)
                fetched_skips = fetched.skipped
            if not paths:
                raise KeyscopeError("no logs to read: give --logs PATH… or --fetch-logs")
            result = find_usage(paths, watched, args.jobs)
            result.counts.skipped += fetched_skips
        text = render_json(result, now) if args.format == "json" else render_text(result, now)
        if args.output:
            args.output.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        if store is not None:
            from keyscope.usage.inventory import record_usage

            db_result = UsageResult(
                watched[first_db:],
                {i - first_db: t for i, t in result.tallies.items() if i >= first_db},
            )
            record_usage(store, db_result, ids, now)
    finally:
        if store is not None:
            store.close()
    return EXIT_USED if _used_after_leak(result) else 0


def _used_after_leak(result: UsageResult) -> bool:
    for i, tally in result.tallies.items():
        leaked = result.watched[i].leaked_at
        if (tally.after_leak if leaked else tally.outcomes["accepted"]) > 0:
            return True
    return False


def _fetch(args: argparse.Namespace, credential: str, directory: Path,
           audit_log: Path | None) -> Fetched:
    from keyscope.usage.fetch import fetch_logs
    from keyscope.verify.guard import allowed_internal
    from keyscope.verify.transport import VerifyOptions

    try:
        allow = allowed_internal(args.allow_internal, args.allow_internal_only)
    except ValueError as exc:
        raise KeyscopeError(f"--allow-internal: {exc}") from None
    options = VerifyOptions(allow_internal=allow, timeout=60.0, audit_log=audit_log)
    return fetch_logs(credential.strip(), directory, options, prefix=args.fetch_prefix)
