"""What a command does between its parsed arguments and its output.

``scan_and_report``: scan, drop what the baseline accepts, verify on request, and tell
the chosen ``Format`` (report/interface.py) as it goes; ``create_baseline`` and
``explain_and_report`` do the same for ``baseline create`` and ``explain``;
``send_test_alerts`` sends ``keyscope notify test``'s sample alert. The CLI only
parses arguments into the options these take.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keyscope.baseline import apply_baseline, baseline_text, load_baseline
from keyscope.errors import KeyscopeError
from keyscope.explain import explain
from keyscope.heap import settled
from keyscope.redact import mask, terminal_safe
from keyscope.report.interface import FormatOptions
from keyscope.report.registry import FORMATS
from keyscope.report.text import summary_line
from keyscope.runtime import ReportFile
from keyscope.sources.git import Selection

if TYPE_CHECKING:
    from keyscope.analyze.policy import Policy
    from keyscope.crawl.options import CrawlOptions
    from keyscope.fleet.run import ClusterOptions
    from keyscope.inventory.record import Recording
    from keyscope.model import RawFinding, ScanResult
    from keyscope.notify.interface import Notifier, NotifyOptions
    from keyscope.scan import ScanOptions
    from keyscope.sources.interface import Source
    from keyscope.verify.transport import VerifyOptions


@dataclass(frozen=True)
class Report:
    """How and where a command shows its result."""

    format: str = "text"  # a name in report.registry.FORMATS
    options: FormatOptions = field(default_factory=FormatOptions)
    output: Path | None = None  # -o FILE (written whole or not at all); None: stdout
    quiet: bool = False  # no progress display, no summary line on stderr


def notify(text: str) -> None:
    """Say on stderr what ``--verify`` will send, before anything is (masked, escaped)."""
    sys.stderr.write("\n".join(terminal_safe(mask(line)) for line in text.split("\n")))
    sys.stderr.flush()


def check_paths(paths: list[str]) -> None:
    """A scan PATH that does not exist is a typo, not an empty scan."""
    from keyscope.sources.remote import is_remote

    for path in paths:
        if path != "-" and not is_remote(path) and not os.path.lexists(path):
            raise KeyscopeError(f"{path}: no such file or directory")


def scan_and_report(
    paths: list[str],
    options: ScanOptions,
    report: Report,
    *,
    verify: VerifyOptions | None = None,
    baseline: Path | None = None,
    config: Path | None = None,
    extra: Sequence[Source] = (),
    progress_line: bool = True,
    db: str | None = None,
    notify: NotifyOptions | None = None,
    cluster: ClusterOptions | None = None,
) -> ScanResult:
    """Scan ``paths`` and report through ``report.format``: findings the ``baseline``
    file accepts are dropped (counted in ``stats.rejected``), ``verify`` checks the rest
    live; each finding gets its owners (``owners/``, with the ``[owners]`` map of
    ``config`` or the config file found). ``config`` is also an input ``-o`` must not
    overwrite; ``extra``: sources asked first (the crawl), which may show a progress
    line of their own instead (``progress_line=False``). ``db``: record the scan in this
    inventory (``""``: the default one), baseline-accepted findings included, and with
    ``notify`` send its pending alerts to the config's ``[[notify]]`` destinations.
    ``cluster``: each path a task on a Dask cluster (``fleet/``); with ``db``, written
    target by target, and a run of the same targets interrupted before goes on.
    Returns the result as reported."""
    from keyscope.owners.assign import OwnerResolver, assign_owners, with_owners
    from keyscope.owners.config import load_owners
    from keyscope.report.progress import ProgressLine
    from keyscope.scan import cache_dir, scan
    from keyscope.sources.remote import mirrors_in

    accepted = load_baseline(baseline) if baseline else frozenset()
    owners = OwnerResolver(load_owners(config), paths, mirrors_in(cache_dir(options)))
    inputs: list[str | Path] = [*paths, *(p for p in (baseline, config) if p)]
    out_file = ReportFile(report.output, inputs)
    fmt = FORMATS[report.format](out_file.stream, report.options)
    progress = None
    stdin = None
    recording = (
        _start_recording(db, paths, options, verify, config) if db is not None else None
    )
    try:
        if "-" in paths:
            stdin = sys.stdin.buffer.read() if sys.stdin is not None else b""
        if progress_line and not report.quiet and sys.stderr.isatty():
            progress = ProgressLine(sys.stderr)
        on_finding = None
        if fmt.streams:

            def on_finding(raw: RawFinding) -> None:
                if raw.explanation.fingerprint not in accepted:
                    fmt.finding(with_owners(raw, owners))

        resumed = False
        if cluster is not None:
            from keyscope.fleet.run import scan_fleet

            result, resumed = scan_fleet(
                paths, options, cluster, on_finding=on_finding, recording=recording
            )
        else:
            result = scan(
                paths,
                options,
                on_finding=on_finding,
                on_progress=progress.update if progress else None,
                stdin=stdin,
                extra=extra,
            )
        if progress:
            progress.close()
            progress = None
        with settled():  # the result stays: the collector need not walk it again
            assign_owners(result, owners)
            found = list(result.findings)  # the inventory keeps what the baseline accepts
            apply_baseline(result, accepted)
            if verify is not None:
                _verify(result, verify, quiet=report.quiet)
                fmt.verified(result.findings)
            fmt.finish(result)
        out_file.commit()
    except KeyboardInterrupt:  # SIGINT or SIGTERM: lines already streamed stay
        if report.output is None:
            with suppress(OSError, ValueError):
                fmt.interrupted("interrupted")
        raise
    finally:
        if progress:
            progress.close()
        out_file.discard()
    if recording is not None:
        with recording.store:
            recording.record(found)
            # a partial selection of history (or a resumed run) does not say what is gone
            recording.finish(complete=options.selection == Selection() and not resumed)
            if notify is not None:
                _deliver_alerts(recording, notify, config, quiet=report.quiet)
    if report.output and not report.quiet:
        print(summary_line(result), file=sys.stderr)
    return result


def _deliver_alerts(
    recording: Recording, options: NotifyOptions, config: Path | None, *, quiet: bool
) -> None:
    """Send the inventory's due alerts (this scan's and those a receiver did not take
    before) to each ``[[notify]]`` destination; a failure is retried on a later run."""
    from keyscope.inventory.outbox import drain
    from keyscope.notify.config import load_notifiers

    notifiers = load_notifiers(options, config)
    if not notifiers:
        return

    def sender(notifier: Notifier) -> Callable[[Mapping[str, Any]], bool]:
        def send(payload: Mapping[str, Any]) -> bool:
            if not notifier.wants(payload):  # below its min-severity: marked skipped
                return False
            notifier.send(payload)
            return True

        return send

    result = drain(recording.store, {n.name: sender(n) for n in notifiers}, recording.now)
    if not quiet and (result.delivered or result.failed):
        print(
            f"keyscope: alerts: {len(result.delivered)} delivered, {len(result.failed)} "
            "failed (sent again on a later run: keyscope inventory outbox)",
            file=sys.stderr,
        )


def crawl_and_report(
    urls: list[str],
    crawl: CrawlOptions,
    options: ScanOptions,
    report: Report,
    *,
    verify: VerifyOptions | None = None,
    config: Path | None = None,
) -> ScanResult:
    """``keyscope crawl``: crawl from ``urls`` and scan every page as ``scan`` scans a
    file, reported the same way; a progress line (pages, bytes, queue) on a terminal
    and, unless quiet, a summary of what was not fetched and why on stderr."""
    from keyscope.crawl.source import CrawlSource
    from keyscope.report.progress import CrawlLine

    line = CrawlLine(sys.stderr) if not report.quiet and sys.stderr.isatty() else None
    source = CrawlSource(options, crawl, line.update if line else None)
    try:
        result = scan_and_report(
            urls, options, report, verify=verify, config=config, extra=[source],
            progress_line=False,
        )  # fmt: skip
    finally:
        if line:
            line.close()
    if not report.quiet and source.crawler is not None:
        stats = source.crawler.stats
        reasons = ", ".join(f"{n} {why}" for why, n in (stats.skipped or {}).items())
        print(
            f"keyscope: crawled {stats.pages} answers to {stats.requests} requests, "
            f"{stats.bytes} bytes"
            + (f"; not fetched or cut: {reasons} (-v lists them)" if reasons else ""),
            file=sys.stderr,
        )
    return result
def _start_recording(
    db: str,
    paths: list[str],
    options: ScanOptions,
    verify: VerifyOptions | None,
    config: Path | None,
) -> Recording:
    """Open the inventory and write this scan's row (unfinished) before scanning, with
    the ``[alerts]`` thresholds of the config file."""
    from keyscope.explain import resolve_now
    from keyscope.inventory.alerts import load_alert_rules
    from keyscope.inventory.record import Recording, describe
    from keyscope.inventory.store import open_store

    rules = load_alert_rules(config)
    store = open_store(db or None)
    settings = {**describe(options), "verify": None if verify is None else
                ("deep" if verify.deep else "basic")}
    try:
        return Recording.start(store, paths, settings, resolve_now(options.now), rules)
    except BaseException:
        store.close()
        raise


def _verify(result: ScanResult, options: VerifyOptions, *, quiet: bool) -> None:
    """Check the merged findings live, with a counter on a terminal."""
    from keyscope.report.progress import CountLine
    from keyscope.verify import verify_findings

    counter = None
    if not quiet and sys.stderr.isatty():
        counter = CountLine(sys.stderr, "checking credentials")
    verify_findings(
        result.findings,
        options,
        now=result.now,
        notify=notify,
        on_done=counter.update if counter else None,
    )
    if counter:
        counter.close()


def create_baseline(
    paths: list[str],
    options: ScanOptions,
    file: Path,
    *,
    config: Path | None = None,
    quiet: bool = False,
) -> ScanResult:
    """Scan ``paths`` and write every finding to the baseline ``file``."""
    from keyscope.scan import scan

    inputs: list[str | Path] = [*paths, *([config] if config else [])]
    out = ReportFile(file, inputs, flag="baseline file")
    try:
        result = scan(paths, options)
        out.stream.write(baseline_text(result.findings, result.now))
        out.commit()
    finally:
        out.discard()
    if not quiet:
        print(
            f"keyscope: wrote {len(result.findings)} finding(s) to {file}; "
            "review them, then scan with --baseline",
            file=sys.stderr,
        )
    return result


def explain_and_report(
    value: str,
    now: datetime,
    report: Report,
    *,
    policy: Policy,
    account: str | None = None,
    keys: tuple[str, ...] = (),
    verify: VerifyOptions | None = None,
) -> None:
    """Explain the credentials in ``value`` (checked live with ``verify``) and write
    them to standard output in ``report.format``."""
    explanations = explain(
        value, now, account=account, keys=keys, policy=policy, verify=verify, notify=notify
    )
    FORMATS[report.format](sys.stdout, report.options).explain(explanations, now)


def send_test_alerts(
    options: NotifyOptions,
    *,
    config: Path | None = None,
    only: tuple[str, ...] = (),
    now: datetime | None = None,
) -> bool:
    """``keyscope notify test``: a sample alert (no credential in it) to each
    configured destination, or to those named in ``only``; one line per destination on
    standard output. True when every one was delivered."""
    from datetime import UTC

    from keyscope.notify.config import build, load_targets
    from keyscope.notify.interface import DeliveryError
    from keyscope.notify.payload import sample_payload

    targets = load_targets(config)
    if not targets:
        raise KeyscopeError("no [[notify]] destination in the config file (see README)")
    unknown = sorted(set(only) - {t.name for t in targets})
    if unknown:
        names = ", ".join(t.name for t in targets)
        raise KeyscopeError(f"no destination named {', '.join(unknown)} (configured: {names})")
    notifiers = [build(t, options) for t in targets if not only or t.name in only]
    payload = sample_payload(now or datetime.now(UTC))
    delivered = True
    for n in notifiers:
        try:
            n.send(payload)
        except DeliveryError as exc:
            delivered = False
            later = "will be retried" if exc.retryable else "not retryable"
            print(f"{n.name} ({n.kind}): NOT delivered: {exc.reason} ({later})")
            continue
        print(f"{n.name} ({n.kind}): delivered")
    sys.stdout.flush()
    return delivered
