"""Command line: wires arguments to the library; no logic a library caller would need.

Exit codes (see keyscope.runtime): 0 success; 1 findings at or above --fail-on; 2 usage,
input or configuration error; 130/143 interrupted by SIGINT/SIGTERM; 141 closed pipe.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from keyscope import __version__
from keyscope.config import load_policy
from keyscope.crawl.options import SCOPES, CrawlOptions
from keyscope.errors import KeyscopeError
from keyscope.explain import resolve_now
from keyscope.inventory.arguments import add_parser as add_inventory_parser
from keyscope.posture.arguments import add_parser as add_posture_parser
from keyscope.report.interface import FormatOptions
from keyscope.report.registry import explain_formats, scan_formats
from keyscope.runtime import (
    EXIT_CODES_HELP,
    EXIT_ERROR,
    EXIT_FINDINGS,
    EXIT_OK,
    exit_process,
    run_guarded,
)
from keyscope.scan import ScanOptions, max_jobs
from keyscope.sources.git import Selection
from keyscope.usage.arguments import add_parser as add_usage_parser
from keyscope.workflow import (
    Report,
    check_paths,
    crawl_and_report,
    create_baseline,
    explain_and_report,
    scan_and_report,
    send_test_alerts,
)

if TYPE_CHECKING:
    from keyscope.notify.interface import NotifyOptions
    from keyscope.verify.guard import InternalHost
    from keyscope.verify.transport import VerifyOptions

__all__ = ["EXIT_ERROR", "EXIT_FINDINGS", "EXIT_OK", "build_parser", "main"]

EXPLAIN_EPILOG = """\
examples:
  keyscope explain 'https://acct.blob.core.windows.net/models/w.pt?sv=…&sig=…'
  pbpaste | keyscope explain -            (keeps the secret out of shell history)
  keyscope explain --account acct 'KEY=='  (an account key needs its account)
  keyscope explain --key "$KEY" 'sv=…&ss=bfqt&…&sig=…'  (was it signed with this key?)
  keyscope explain --verify 'https://…?sv=…&sig=…'  (is it still live? read-only)

Accepts a SAS URL on any Azure Storage host (blob, dfs, file, queue, table,
-secondary, sovereign clouds, Azurite, custom domains), a bare SAS query string
(any order; URL-, HTML- or JSON-escaped), a connection string, or an account key.
Nothing is sent over the network unless --verify is given.
Exit status: 0 explained, 2 not a valid credential or a usage error,
130/143 interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keyscope",
        description="Find leaked cloud-storage credentials and explain what they unlock.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        "--format", choices=explain_formats(), default="text", help="output format (default: text)"
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
    _add_verify_arguments(p)
    _add_scan_parser(sub)
    add_inventory_parser(sub)
    add_usage_parser(sub)
    _add_notify_parser(sub)
    _add_allow_internal(add_posture_parser(sub), "also read an emulator on a loopback address")
    return parser


def _add_notify_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    n = sub.add_parser(
        "notify",
        help="check the alert destinations of the config file ([[notify]])",
        description="Alert destinations are [[notify]] entries of keyscope.toml (or "
        "[[tool.keyscope.notify]] in pyproject.toml); see README.",
    )
    nsub = n.add_subparsers(dest="notify_command", metavar="ACTION", required=True)
    t = nsub.add_parser(
        "test",
        help="send a sample alert (no credential in it) to each destination",
        description="Send a sample alert to each configured destination (or those named "
        "with --only) and say which received it. Exit status: 0 all delivered, 1 one or "
        "more not delivered, 2 a configuration error (a missing environment variable).",
    )
    t.add_argument("--config", type=Path, metavar="FILE", help="config file (see explain)")
    t.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="only this destination"
    )
    _add_allow_internal(t, "also send to private, loopback and link-local addresses")
    t.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="timeout per connection and per answer (default: 10)",
    )


SCAN_EPILOG = """\
examples:
  keyscope scan .                           scan a tree (respects .gitignore)
  keyscope scan --format sarif -o k.sarif . for GitHub code scanning
  git diff | keyscope scan -                scan standard input
  keyscope scan --fail-on high src/         fail CI only on high and critical
  keyscope scan --verify .                  also check, read-only, which are still live

Secrets are redacted in every format unless --show-secrets is given.
Jupyter notebooks are scanned as Jupyter shows them: "nb.ipynb!/cell 14 output 1:3:5"
is line 3 of the first output of cell 14 (cells counted from 1, in notebook order).

""" + EXIT_CODES_HELP + "\n"


def _add_scan_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "scan",
        help="find cloud credentials and tokens in files, git history, archives, apps, "
        "images, web archives or stdin",
        description="Find credentials (Azure Storage, AWS, Google Cloud, platform tokens, "
        "private keys, JWTs) in files and directories (all bytes, binaries included), "
        "archives and app packages, container images, web archives and git history, and "
        "explain each one.",
        epilog=SCAN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_scan_arguments(p)
    _add_verify_arguments(p)
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="do not report findings accepted in this baseline file",
    )
    p.add_argument(
        "--db",
        metavar="URL",
        help="record this scan in the inventory: --db (the default: $KEYSCOPE_DB, else "
        "$XDG_DATA_HOME/keyscope/inventory.sqlite3), --db=FILE, --db=postgresql://…; "
        "its new alerts go to the config's [[notify]] destinations",
    )
    _add_fleet_arguments(p)

    m = sub.add_parser(
        "models",
        help="find model files that would run code when loaded (pickle-based checkpoints)",
        description="Judge model files by content (raw pickles, PyTorch zip and legacy "
        "checkpoints, NumPy object arrays, joblib, compressed and archived pickles) without "
        "ever loading them. Same options, formats and exit status as scan.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_scan_arguments(m, secrets=False)

    b = sub.add_parser(
        "baseline",
        help="record the current findings as accepted, so CI fails only on new ones",
        description="Baselines hold fingerprints (keyed hashes), never secrets.",
    )
    bsub = b.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)
    create = bsub.add_parser(
        "create",
        help="scan and write every finding to FILE",
        description="Scan like 'keyscope scan' and write every finding to FILE; then pass "
        "--baseline FILE to 'keyscope scan'. Review the file: each entry has a 'reason'.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    create.add_argument("baseline_file", type=Path, metavar="FILE")
    _add_scan_arguments(create, report=False)

    h = sub.add_parser(
        "hook",
        help="for pre-commit: scan the staged files, --all-files, or the pushed commits",
        description="The pre-commit hook. Scans the FILEs pre-commit passes (the staged "
        "change, or every file with --all-files); in the pre-push stage, where pre-commit "
        "sets PRE_COMMIT_FROM_REF and PRE_COMMIT_TO_REF, scans every blob the pushed "
        "commits introduced instead, so a key added and removed again is still caught.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_scan_arguments(h, paths_help="files to scan (given by pre-commit)")
    h.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="do not report findings accepted in this baseline file",
    )
    _add_crawl_parser(sub)


CRAWL_EPILOG = """\
examples:
  keyscope crawl https://example.com/                 same-site, polite defaults
  keyscope crawl --scope prefix https://example.com/docs/ --max-pages 50
  keyscope crawl --format sarif -o site.sarif https://example.com/

Only what a browser is shown is read: pages, scripts, styles, JSON, sitemaps and the
source maps scripts name (findings in a bundle name the original file and line).
robots.txt is honoured; one request at a time per host, --rate seconds apart.
Private, loopback and link-local addresses are refused unless --allow-internal.
A web archive (.warc, .warc.gz) is scanned with 'keyscope scan'.

""" + EXIT_CODES_HELP + "\n"


def _add_crawl_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "crawl",
        help="crawl a website (same site, polite) and scan its pages, bundles and source maps",
        description="Crawl from each URL within the --scope and scan what is fetched, "
        "with scan's output options and exit status.",
        epilog=CRAWL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_scan_arguments(p, paths_help="URLs to start from (https:// preferred)")
    _add_verify_arguments(p)
    g = p.add_argument_group("crawl")
    g.add_argument("--scope", choices=SCOPES, default="same-site",
                   help="same-site (default): the start's site; same-origin: scheme, host "
                   "and port; prefix: URLs under the start URL's folder")  # fmt: skip
    g.add_argument("--depth", type=_depth, default=CrawlOptions.depth, metavar="N",
                   help=f"links away from a start URL (default: {CrawlOptions.depth})")
    g.add_argument("--max-pages", type=_depth, default=CrawlOptions.max_pages, metavar="N",
                   help=f"requests in all (default: {CrawlOptions.max_pages})")
    g.add_argument("--max-bytes", default="256M", metavar="SIZE",
                   help="bytes downloaded in all (default: 256M); one answer is read to "
                   "--max-file-size")  # fmt: skip
    g.add_argument("--rate", type=float, default=CrawlOptions.rate, metavar="SECONDS",
                   help="least time between two requests to one host (default: 1; "
                   "a longer robots.txt Crawl-delay wins)")  # fmt: skip
    g.add_argument("--timeout", type=float, default=CrawlOptions.timeout, metavar="SECONDS",
                   help="per connection and per answer (default: 10)")
    g.add_argument("--contact", metavar="URL",
                   help="put in the User-Agent, for site owners (default: the project page)")
    g.add_argument("--fetch-models", action="store_true",
                   help="download linked model files (.pt, .ckpt, .pkl, .bin, .safetensors …) "
                   "within --max-bytes and judge them (default: listed as skipped)")  # fmt: skip


VERIFY_HELP = """\
Off unless asked for: without --verify keyscope sends nothing over the network.
--verify sends, for each credential, one side-effect-free request. Azure: Get Account
Information on the token's own resource, or a read-only service call for
queue/table/file tokens; Shared Key-signed for account keys (--verify=deep also
lists at most one container/blob and reads blob service properties where the token
allows it). AWS key pair: sts:GetCallerIdentity (needs no permission; CloudTrail
logs it in the key owner's account). S3 / Cloud Storage signed URL: GET of the first
byte (Range: bytes=0-0, nothing kept) or HEAD, only for URLs signed for a read.
Google service-account key: the anonymous public-key lookup of its account.
Never a download, never a dequeue, never a write. The requests are listed before
they are sent; the owner's logs record them with your IP address.
HTTPS only (plain HTTP only to a local emulator);
private, loopback and link-local destinations are refused unless --allow-internal
(--allow-internal=HOST:PORT,... allows only those);
no redirects are followed; every request is written to the audit log."""


def _add_fleet_arguments(p: argparse.ArgumentParser) -> None:
    """Many targets (``fleet/``): a target list, forge organisations, a Dask cluster."""
    g = p.add_argument_group(
        "many targets",
        "PATH may also be github:ORG or gitlab:GROUP: the organisation's repositories, "
        "listed through the forge's API (token from GITHUB_TOKEN / GITLAB_TOKEN)",
    )
    g.add_argument("--targets", type=Path, metavar="FILE",
                   help="scan every target listed in FILE (a repository URL, path, web "
                   "archive or artifact per line; # comments)")  # fmt: skip
    g.add_argument("--cluster", metavar="ADDRESS",
                   help="run each target as a task on a Dask cluster: tcp://HOST:8786 (a "
                   "running scheduler) or local:N (N local workers)")  # fmt: skip
    g.add_argument("--split-size", metavar="SIZE", default="128M",
                   help="--cluster: a gzip web archive larger than this is scanned in pieces "
                   "of about this size, each a task, and a repository whose history holds "
                   "more blob content (each blob counted as 4K at least) in ranges of "
                   "blob ids; 0: never (default: 128M)")  # fmt: skip
    g.add_argument("--include-forks", action="store_true", help="github:/gitlab:: forks too")
    g.add_argument("--include-archived", action="store_true",
                   help="github:/gitlab:: archived repositories too")  # fmt: skip
    g.add_argument("--forge-api", metavar="URL",
                   help="the forge's API base (GitHub Enterprise, a self-hosted GitLab)")


def _add_verify_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("live check (opt-in)", VERIFY_HELP)
    g.add_argument(
        "--verify",
        dest="verify",
        action="store_const",
        const="basic",
        default=None,
        help="check read-only whether each credential is live (--verify=deep: more probes)",
    )
    g.add_argument(
        "--verify-deep", dest="verify", action="store_const", const="deep", help=argparse.SUPPRESS
    )
    _add_allow_internal(
        g,
        "also probe private, loopback and link-local addresses",
        " (e.g. a local Azurite: 127.0.0.1:10000)",
    )
    g.add_argument(
        "--audit-log",
        type=Path,
        metavar="FILE",
        help="append every request sent to FILE as JSON lines "
        "(default: keyscope/verify-audit.jsonl in the user state directory)",
    )
    g.add_argument(
        "--verify-endpoint",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="send the checks of a credential without a URL (aws-sts, gcp-certs, a platform's "
        "who-am-I) to URL instead (a regional endpoint; a loopback test server needs "
        "--allow-internal)",
    )
    g.add_argument(
        "--verify-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="timeout per connection and per answer (default: 10)",
    )
    g.add_argument(
        "--verify-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="least time between two requests to one host (default: 1)",
    )


def _add_allow_internal(
    p: argparse.ArgumentParser | argparse._ArgumentGroup, what: str, example: str = ""
) -> None:
    """``--allow-internal`` and ``--allow-internal=HOST[:PORT],…`` (rewritten by
    ``main`` to ``--allow-internal-only``)."""
    p.add_argument(
        "--allow-internal",
        action="store_true",
        help=f"{what}; --allow-internal=HOST[:PORT],... only those{example}",
    )
    p.add_argument("--allow-internal-only", action="append", default=[], help=argparse.SUPPRESS)


def _allow_internal(args: argparse.Namespace) -> bool | tuple[InternalHost, ...]:
    from keyscope.verify.guard import allowed_internal

    try:
        return allowed_internal(args.allow_internal, args.allow_internal_only)
    except ValueError as exc:
        raise KeyscopeError(f"--allow-internal: {exc}") from None


def _verify_options(args: argparse.Namespace) -> VerifyOptions | None:
    if getattr(args, "verify", None) is None:
        return None
    from keyscope.verify.transport import VerifyOptions

    if args.verify_timeout <= 0 or args.verify_interval < 0:
        raise KeyscopeError("--verify-timeout must be > 0 and --verify-interval >= 0")
    endpoints: tuple[tuple[str, str], ...] = ()
    if args.verify_endpoint:
        from keyscope.verify.endpoints import parse_endpoint

        try:
            endpoints = tuple(parse_endpoint(text) for text in args.verify_endpoint)
        except ValueError as exc:
            raise KeyscopeError(f"--verify-endpoint: {exc}") from None
    return VerifyOptions(
        deep=args.verify == "deep",
        allow_internal=_allow_internal(args),
        endpoints=endpoints,
        timeout=args.verify_timeout,
        per_host_interval=args.verify_interval,
        audit_log=args.audit_log or default_audit_log(),
    )


def default_audit_log() -> Path:
    """``$XDG_STATE_HOME/keyscope/verify-audit.jsonl`` (``~/.local/state`` by default)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "keyscope" / "verify-audit.jsonl"


def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= n <= max_jobs():
        raise argparse.ArgumentTypeError(f"{n}: expected 0 (all cores) to {max_jobs()}")
    return n


def _depth(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n}: expected 0 (unpack nothing) or more")
    return n


def _add_scan_arguments(
    p: argparse.ArgumentParser,
    *,
    report: bool = True,
    secrets: bool = True,
    paths_help: str = "files or directories to scan, or - for standard input (default: .)",
) -> None:
    """The walk and detection options; ``report``: the report options too (not for
    ``baseline create``, which writes a baseline); ``secrets``: the credential
    options too (not for ``models``)."""
    p.add_argument("paths", nargs="*", default=[], metavar="PATH", help=paths_help)
    if report:
        p.add_argument(
            "--format",
            choices=scan_formats(),
            default="text",
            help="output format (default: text; jsonl streams findings as found)",
        )
        p.add_argument(
            "-o",
            "--output",
            type=Path,
            metavar="FILE",
            help="write the report to FILE instead of standard output (written "
            "whole or not at all)",
        )
        p.add_argument(
            "--fail-on",
            default="low",
            metavar="SEVERITY",
            choices=("info", "low", "medium", "high", "critical", "never"),
            help="exit 1 when a finding is at or above this severity (default: low; "
            "never: always exit 0)",
        )
    if report and secrets:
        p.add_argument(
            "--show-secrets",
            action="store_true",
            help="print the secrets themselves (redacted by default)",
        )
    p.add_argument(
        "--all-locations",
        action="store_true",
        help="text report: list every place a secret was seen (default: the first few per file)",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        default=0,
        metavar="N",
        help=f"worker processes (default 0: all cores; at most {max_jobs()}, "
        "4 per core)",
    )
    p.add_argument("--no-ignore", action="store_true", help="scan files that .gitignore excludes")
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip paths matching GLOB (repeatable)",
    )
    p.add_argument("--follow-symlinks", action="store_true", help="follow symbolic links")
    p.add_argument(
        "--max-file-size",
        default="64M",
        metavar="SIZE",
        help="skip (and report) larger files (default: 64M; K, M, G suffixes)",
    )
    p.add_argument("--download-limit", default="4G", metavar="SIZE",
                   help="PATH may be an http(s) URL of a web archive or artifact (.warc.gz, "
                   ".zip, .apk, …): downloaded up to SIZE, else skipped (default: 4G)")  # fmt: skip
    if secrets:
        p.add_argument(
            "--rules",
            action="append",
            default=[],
            type=Path,
            metavar="DIR",
            help="add the *.toml rule files in DIR (repeatable)",
        )
        p.add_argument(
            "--engine",
            choices=("auto", "hyperscan", "re"),
            default="auto",
            help="matching engine (default: auto = hyperscan when installed)",
        )
        p.add_argument(
            "--unpack-depth",
            type=_depth,
            default=ScanOptions.unpack_depth,
            metavar="N",
            help="scan inside archives (zip, jar, whl, apk, tar, gzip, bzip2, xz, zstd, 7z, "
            "deb), nested up to N deep (default: "
            f"{ScanOptions.unpack_depth}; 0: archives are opaque bytes); per file at most "
            "1 GiB unpacked, 100000 members, 200x its size, 60 s: past a limit, a skipped entry",
        )
    g = p.add_argument_group(
        "git history",
        "A PATH that is a repository's top level (or a remote URL: https://, git@, file://) "
        "is scanned as every unique blob reachable from every ref, plus uncommitted changes.",
    )
    mode = g.add_mutually_exclusive_group()
    mode.add_argument(
        "--git",
        dest="git",
        action="store_true",
        default=None,
        help="PATH must be a git repository: scan its history",
    )
    mode.add_argument(
        "--no-git",
        dest="git",
        action="store_false",
        help="scan the files on disk only, even in a repository",
    )
    g.add_argument(
        "--all-objects",
        action="store_true",
        help="also every unreachable object (rewritten history, dropped stashes)",
    )
    which = g.add_mutually_exclusive_group()
    which.add_argument(
        "--since", metavar="REV", help="only blobs reachable from refs but not from REV"
    )
    which.add_argument(
        "--range",
        metavar="A..B",
        dest="revision_range",
        help="only blobs introduced by the commits in A..B",
    )
    which.add_argument("--branch", metavar="NAME", help="only the history of NAME")
    which.add_argument(
        "--staged",
        action="store_true",
        help="only the staged changes (the index against HEAD), for pre-commit",
    )
    p.add_argument("--now", metavar="TIME", help="evaluate lifetimes at this ISO-8601 time")
    p.add_argument("--config", type=Path, metavar="FILE", help="policy file (see explain)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display or summary")
    if report:
        p.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            help="list every skipped file and why candidates were not reported",
        )
        p.add_argument(
            "--color",
            choices=("auto", "always", "never"),
            default="auto",
            help="colour the terminal output (default: auto)",
        )


def entry() -> None:
    """The ``keyscope`` command: :func:`main`, then the process ends with its code."""
    exit_process(main())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg.startswith("--verify="):
            level = arg.split("=", 1)[1]
            if level not in ("basic", "deep"):
                parser.error(f"--verify={level}: expected --verify or --verify=deep")
            argv[i] = "--verify-deep" if level == "deep" else "--verify"
        elif arg.startswith("--allow-internal="):  # not "--allow-internal LIST": a path
            argv[i] = "--allow-internal-only=" + arg.split("=", 1)[1]
        elif arg == "--db" and argv[:1] == ["scan"]:  # bare: the default inventory
            from keyscope.inventory.store import is_database_url

            taken = i + 1 < len(argv) and is_database_url(argv[i + 1])
            argv[i] = "--db=" + (argv.pop(i + 1) if taken else "")
    args, extra = parser.parse_known_args(argv)
    if hasattr(args, "paths"):
        # Paths may come after options (scan -j 1 A B, baseline create FILE -j 1 A).
        stray = [e for e in extra if e.startswith("-") and e != "-"]
        if stray:
            parser.error(f"unrecognized arguments: {' '.join(stray)}")
        # The hook scans only what pre-commit passes: no file, nothing to scan.
        args.paths = [*args.paths, *extra] or ([] if args.command == "hook" else ["."])
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    commands = {"explain": _explain, "scan": _scan, "models": _scan, "baseline": _baseline}
    commands["hook"] = _hook
    commands["crawl"] = _crawl
    commands["inventory"] = _inventory
    commands["notify"] = _notify
    commands["usage"] = _usage
    commands["posture"] = _posture
    return run_guarded(lambda: commands[args.command](args))


def _explain(args: argparse.Namespace) -> int:
    value: str = args.value
    if value == "-":
        if sys.stdin is None or sys.stdin.isatty():
            print("keyscope: error: give a credential, or pipe one in and use '-'", file=sys.stderr)
            return EXIT_ERROR
        value = sys.stdin.buffer.read(2 << 20).decode("utf-8", errors="replace")
    now = resolve_now(args.now)
    policy = load_policy(args.config)
    verify = _verify_options(args)
    report = Report(args.format, FormatOptions(color=_use_color(args.color)))
    explain_and_report(
        value, now, report, account=args.account, keys=tuple(args.key), policy=policy, verify=verify
    )
    return EXIT_OK


def _scan_options(args: argparse.Namespace) -> ScanOptions:
    return ScanOptions(
        respect_gitignore=not args.no_ignore,
        excludes=tuple(args.exclude),
        follow_symlinks=args.follow_symlinks,
        max_file_size=parse_size(args.max_file_size),
        download_limit=parse_size(args.download_limit, "--download-limit"),
        jobs=args.jobs,
        engine=getattr(args, "engine", "auto"),
        rule_dirs=tuple(getattr(args, "rules", ())),
        policy=load_policy(args.config),
        show_secrets=getattr(args, "show_secrets", False),
        now=resolve_now(args.now),
        git=args.git,
        secrets=args.command != "models",
        keep_credentials=getattr(args, "verify", None) is not None,
        unpack_depth=getattr(args, "unpack_depth", ScanOptions.unpack_depth),
        selection=Selection(
            all_objects=args.all_objects,
            since=args.since,
            revision_range=args.revision_range,
            branch=args.branch,
            staged=args.staged,
        ),
    )


def _report(args: argparse.Namespace) -> Report:
    options = FormatOptions(
        color=_use_color(args.color) and not args.output,
        verbose=args.verbose,
        every=args.all_locations,
        roots=tuple(args.paths),
        web=_web_roots(args),
        show_secrets=getattr(args, "show_secrets", False),
        jobs=min(getattr(args, "jobs", 1) or os.cpu_count() or 1, max_jobs()),
    )
    return Report(args.format, options, output=args.output, quiet=args.quiet)


def _web_roots(args: argparse.Namespace) -> tuple[tuple[str, str, str], ...]:
    """The scanned repositories' web addresses, for the formats that link (html)."""
    if args.format != "html":
        return ()
    from keyscope.sources.weburl import web_roots

    return tuple((w.shown, w.web, w.prefix) for w in web_roots(args.paths))


def _baseline(args: argparse.Namespace) -> int:
    check_paths(args.paths)
    options = _scan_options(args)
    create_baseline(args.paths, options, args.baseline_file, config=args.config, quiet=args.quiet)
    return EXIT_OK


def _inventory(args: argparse.Namespace) -> int:
    from keyscope.inventory.commands import run

    return run(args, resolve_now(args.now))


def _usage(args: argparse.Namespace) -> int:
    from keyscope.usage.command import run

    return run(args, resolve_now(args.now), args.audit_log or default_audit_log())


def _posture(args: argparse.Namespace) -> int:
    from keyscope.posture.command import run

    audit = args.audit_log or default_audit_log()
    return run(args, resolve_now(args.now), _allow_internal(args), audit)


def _hook(args: argparse.Namespace) -> int:
    """pre-commit: the pushed range in the pre-push stage, else the files given."""
    start, end = os.environ.get("PRE_COMMIT_FROM_REF"), os.environ.get("PRE_COMMIT_TO_REF")
    if start and end:
        args.paths, args.git, args.revision_range = ["."], True, f"{start}..{end}"
    elif not args.paths:
        return EXIT_OK  # pre-commit passed no file
    else:
        # pre-commit stashed what is not staged: the files on disk are the staged change.
        args.git, args.no_ignore = False, True
    return _scan(args)


def _scan(args: argparse.Namespace) -> int:
    from keyscope.model import Severity
    from keyscope.scan import fails

    args.paths = _targets(args)
    check_paths(args.paths)
    options = _scan_options(args)
    verify = _verify_options(args)
    cluster = None
    if getattr(args, "cluster", None):
        from keyscope.fleet.run import ClusterOptions

        cluster = ClusterOptions(args.cluster, quiet=args.quiet,
                                 split_bytes=parse_size(args.split_size, "--split-size"))
    result = scan_and_report(
        args.paths,
        options,
        _report(args),
        verify=verify,
        baseline=getattr(args, "baseline", None),
        config=args.config,
        db=getattr(args, "db", None),
        notify=_notify_options(args) if getattr(args, "db", None) is not None else None,
        cluster=cluster,
    )
    if args.fail_on == "never":
        return EXIT_OK
    return EXIT_FINDINGS if fails(result, Severity.parse(args.fail_on)) else EXIT_OK


def _targets(args: argparse.Namespace) -> list[str]:
    """The paths, with ``--targets FILE``'s lines and each ``github:ORG`` /
    ``gitlab:GROUP`` replaced by the organisation's repositories."""
    paths: list[str] = args.paths
    listed = getattr(args, "targets", None)
    forges = [p for p in paths if p.startswith(("github:", "gitlab:"))]
    if listed is None and not forges:
        return paths
    from keyscope.fleet.forge import ForgeOptions
    from keyscope.fleet.targets import expand_targets, read_targets

    if listed is not None:
        paths = [*(p for p in paths if p != "."), *read_targets(listed)]
    forge = ForgeOptions(include_forks=args.include_forks,
                         include_archived=args.include_archived, api=args.forge_api,
                         allow_internal=_allow_internal(args))  # fmt: skip
    return expand_targets(paths, forge)


def _notify_options(args: argparse.Namespace) -> NotifyOptions:
    """A --db scan sends the inventory's new alerts to the ``[[notify]]`` destinations,
    through the --verify guard (--allow-internal for a receiver on loopback)."""
    from keyscope.notify.interface import NotifyOptions

    return NotifyOptions(allow_internal=_allow_internal(args))


def _crawl(args: argparse.Namespace) -> int:
    from keyscope.crawl.scope import normalized
    from keyscope.model import Severity
    from keyscope.scan import fails

    if args.paths == ["."]:  # no URL given (scan's default path)
        raise KeyscopeError("crawl: give at least one URL to start from")
    # a bare host name is crawled over HTTPS
    args.paths = [u if "://" in u else f"https://{u}" for u in args.paths]
    bad = [u for u in args.paths if normalized(u) is None]
    if bad:
        raise KeyscopeError(f"{bad[0]}: not an http:// or https:// URL to crawl")
    if args.rate < 0 or args.timeout <= 0:
        raise KeyscopeError("--rate must be >= 0 and --timeout > 0")
    allow = _allow_internal(args)
    options = _scan_options(args)
    crawl = CrawlOptions(
        scope=args.scope,
        depth=args.depth,
        max_pages=args.max_pages,
        max_bytes=parse_size(args.max_bytes, "--max-bytes"),
        max_response=options.max_file_size,
        rate=args.rate,
        timeout=args.timeout,
        contact=args.contact,
        fetch_models=args.fetch_models,
        allow_internal=allow,
    )
    result = crawl_and_report(
        args.paths, crawl, options, _report(args), verify=_verify_options(args), config=args.config
    )
    if args.fail_on == "never":
        return EXIT_OK
    return EXIT_FINDINGS if fails(result, Severity.parse(args.fail_on)) else EXIT_OK


def _notify(args: argparse.Namespace) -> int:
    from keyscope.notify.interface import NotifyOptions

    if args.timeout <= 0:
        raise KeyscopeError("--timeout must be > 0")
    options = NotifyOptions(allow_internal=_allow_internal(args), timeout=args.timeout)
    delivered = send_test_alerts(options, config=args.config, only=tuple(args.only))
    return EXIT_OK if delivered else EXIT_FINDINGS


def parse_size(text: str, option: str = "--max-file-size") -> int:
    """``64M`` → bytes. Accepts K, M, G (powers of 1024) or a plain number."""
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1] if t and t[-1] in "KMG" else ""
    number = t[:-1] if unit else t
    if not number.isdigit():
        raise KeyscopeError(f"{option}: {text!r} is not a size such as 64M or 1G")
    return int(number) * units[unit]


def _use_color(choice: str) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()
