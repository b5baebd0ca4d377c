"""``keyscope posture``: from parsed arguments to the written report."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO

from keyscope.errors import KeyscopeError
from keyscope.posture import render
from keyscope.posture.arm import DEFAULT_ENDPOINT
from keyscope.posture.run import PostureOptions, run_posture
from keyscope.verify.guard import InternalHost
from keyscope.verify.transport import VerifyOptions

STDIN_LIMIT = 64 * 1024


def run(args: argparse.Namespace, now: datetime, allow_internal: bool | tuple[InternalHost, ...],
        audit_log: Path, stdin: TextIO | None = None) -> int:
    """Carry out ``keyscope posture``; the exit code."""
    stdin = stdin if stdin is not None else sys.stdin
    if args.arm_token == "-" and args.connection_string == "-":
        raise KeyscopeError("posture: --arm-token - and --connection-string - cannot both "
                            "read standard input")
    if args.arm_token not in (None, "-"):
        raise KeyscopeError("posture: --arm-token takes '-' only (a token on the command line "
                            "would be in the shell history and the process list)")
    token = _stdin(stdin, "--arm-token").strip() if args.arm_token == "-" else None
    connection = args.connection_string
    if connection == "-":
        connection = _stdin(stdin, "--connection-string").strip()
    db = args.db
    if db == "":
        from keyscope.inventory.store import default_url

        db = default_url()
    options = PostureOptions(
        now=now,
        subscriptions=tuple(args.subscription),
        arm_token=token,
        arm_endpoint=args.arm_endpoint or DEFAULT_ENDPOINT,
        connection_string=connection,
        transport=VerifyOptions(allow_internal=allow_internal, audit_log=audit_log,
                                per_host_interval=0.1, max_per_host=5000, timeout=30.0),
        db=db,
    )
    report = run_posture(options)
    if args.format == "json":
        text = json.dumps(render.document(report), indent=2, ensure_ascii=False) + "\n"
    else:
        text = render.text(report, verbose=args.verbose)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _stdin(stdin: TextIO, option: str) -> str:
    if stdin is None or stdin.isatty():
        raise KeyscopeError(f"posture: {option} -: pipe the value into standard input")
    text = stdin.read(STDIN_LIMIT)
    if not text.strip():
        raise KeyscopeError(f"posture: {option} -: standard input is empty")
    return text
