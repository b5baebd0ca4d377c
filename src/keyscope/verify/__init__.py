"""Opt-in, read-only live checks of found credentials.

Nothing here runs unless the user asked for it (``--verify``). :func:`plan` says
which requests would be sent (the credential's provider plans them);
:func:`verify_all` sends them through a :class:`~keyscope.verify.transport.Transport`
(safety rails, rate limit, audit log), has the provider judge each answer, and
returns one :class:`~keyscope.model.Verification` per credential.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from keyscope.analyze.policy import after_verification
from keyscope.model import Explanation, Finding
from keyscope.providers.interface import Provider
from keyscope.providers.registry import Credential, provider_of
from keyscope.redact import terminal_safe
from keyscope.verify.interface import (
    AUTHENTICATED,
    DEAD,
    RETRY,
    STATUSES,
    ProbeResult,
    Verification,
)
from keyscope.verify.transport import NotSent, Request, Transport, VerifyOptions, aimed

MAX_NOTICE_LINES = 25  # requests listed one by one before a scan's notice sums them up

__all__ = [
    "Credential",
    "Target",
    "VerifyOptions",
    "plan",
    "plan_notice",
    "verify_all",
    "verify_explanations",
    "verify_findings",
    "verify_one",
]


@dataclass(frozen=True)
class Target:
    """One credential to check: the parsed credential, the account name found next to
    it (for bare keys and queries), and its fingerprint for the audit log."""

    credential: Credential
    account: str | None
    fingerprint: str


def plan(target: Target, deep: bool = False) -> list[Request] | str:
    """The requests a check would send, in order; a string says why none can be."""
    try:
        return _provider(target.credential).plan(target.credential, target.account, deep)
    except ValueError:  # urlsplit on a malformed host (an unclosed "[")
        return "the credential's endpoint is not a well-formed URL"


def verify_one(target: Target, transport: Transport, now: datetime | None = None) -> Verification:
    """Send one credential's probes (the deep ones only after the first was accepted)."""
    now = now or datetime.now(UTC)
    checked = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    requests = plan(target, transport.options.deep)
    if isinstance(requests, str):
        return Verification("not-verifiable", None, f"Not checked: {requests}.", (), checked)
    provider = _provider(target.credential)
    results: list[ProbeResult] = []
    decisive = 0  # the probe whose answer decides: the first, or a fallback accepted
    for i, request in enumerate(requests):
        if request.fallback:
            if not results or results[decisive].status not in RETRY:
                continue
        elif i > 0 and results[decisive].status != "live":
            break
        try:
            response = transport.send(request, target.fingerprint)
        except NotSent as exc:
            shown = aimed(request, transport.options.endpoints).shown_url
            results.append(
                ProbeResult(request.probe, request.method, shown, exc.status, detail=exc.detail)
            )
            continue
        result = provider.judge(target.credential, request, response, now)
        results.append(result)
        if request.fallback and result.status in AUTHENTICATED:
            decisive = len(results) - 1
    # An account the credential does not carry (given, or read from nearby text): a
    # rejected signature may then mean "wrong account", not "dead".
    guess = provider.guessed_account(target.credential, target.account)
    return _verdict(tuple(results), checked, inferred_account=guess, decisive=decisive)


def verify_all(
    targets: Sequence[Target],
    options: VerifyOptions,
    now: datetime | None = None,
    transport: Transport | None = None,
    on_done: Callable[[int, int], None] | None = None,
) -> list[Verification]:
    """Check every target, several at once (the transport caps concurrency and rate);
    ``on_done(done, total)`` follows the progress."""
    transport = transport or Transport(options)
    if not targets:
        return []
    done = 0
    lock = threading.Lock()

    def one(target: Target) -> Verification:
        nonlocal done
        try:
            verdict = verify_one(target, transport, now)
        except Exception as exc:  # one hostile credential must not end the whole run
            checked = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            # Only the exception's name: its text may quote the URL, secret and all.
            why = f"Not checked: keyscope failed on it ({type(exc).__name__})."
            verdict = Verification("not-verifiable", None, why, (), checked)
        if on_done is not None:
            with lock:
                done += 1
                on_done(done, len(targets))
        return verdict

    with ThreadPoolExecutor(max_workers=max(1, min(options.concurrency, len(targets)))) as pool:
        return list(pool.map(one, targets))


def _verdict(
    probes: tuple[ProbeResult, ...],
    checked: str,
    inferred_account: str | None = None,
    decisive: int = 0,
) -> Verification:
    first = probes[decisive]
    status = first.status
    live: bool | None
    if status in AUTHENTICATED:
        live = True
    elif (status in DEAD or status == "account-not-found") and not (
        inferred_account and status in ("signature-rejected", "account-not-found")
    ):
        live = False
    else:
        live = None
    answer = ""
    if first.http_status is not None:
        answer = f"{first.probe}: HTTP {first.http_status}"
        if first.error_code:
            answer += f" {first.error_code}"
    if first.detail:
        answer += (": " if answer else "") + first.detail
    head = {True: "Live", False: "Not live", None: "Unknown"}[live]
    summary = f"{head}: {STATUSES[status]}" + (f" ({answer})" if answer else "") + "."
    if live is None and inferred_account:
        summary += (
            f" The account name '{inferred_account}' was not in the credential itself (it was "
            "given or found nearby): the credential may belong to another account."
        )
    return Verification(status, live, summary, probes, checked)


def plan_notice(targets: Sequence[Target], options: VerifyOptions) -> str:
    """What will be sent, said before anything is: every request, its URL redacted,
    escaped for the terminal (a scanned file chose the URL)."""
    lines: list[str] = []
    count = 0
    for target in targets:
        requests = plan(target, options.deep)
        if isinstance(requests, str):
            lines.append(f"  (not checked: {requests})")
            continue
        for i, r in enumerate(requests):
            count += 1
            r = aimed(r, options.endpoints)
            later = ""
            if r.fallback:
                later = "  [only if the one before was refused for its signature]"
            elif i > 0:
                later = "  [only if the first is accepted]"
            note = f": {r.notice}" if r.notice else ""
            lines.append(f"  {r.method} {r.shown_url}  ({r.probe}{note}){later}")
    head = (
        f"keyscope: --verify sends up to {count} read-only request(s) for {len(targets)} "
        "credential(s). The owner's logs record each one with your IP address (storage "
        "logs, CloudTrail, …); check only credentials you are authorised to test."
    )
    if len(lines) > MAX_NOTICE_LINES:
        more = len(lines) - MAX_NOTICE_LINES
        lines = [*lines[:MAX_NOTICE_LINES], f"  … and {more} more (each is in the audit log)"]
    tail = [f"  audit log: {options.audit_log}"] if options.audit_log else []
    if options.allow_internal is True:
        tail.append(
            "  --allow-internal: private and loopback destinations are not refused "
            "(--allow-internal=HOST:PORT allows only those)"
        )
    elif options.allow_internal:
        allowed = ", ".join(str(h) for h in options.allow_internal)
        tail.append(f"  internal destinations allowed: {allowed}")
    return "\n".join(terminal_safe(line) for line in [head, *lines, *tail]) + "\n"


def verify_explanations(
    items: Sequence[tuple[Explanation, Credential | None]],
    options: VerifyOptions,
    *,
    now: datetime | None = None,
    notify: Callable[[str], None] | None = None,
    transport: Transport | None = None,
    on_done: Callable[[int, int], None] | None = None,
) -> list[Explanation]:
    """Check each explained credential live and return the explanations with their
    verdicts attached and severities moved (see ``after_verification``). Items
    without a parsed credential are returned unchanged."""
    chosen = [
        (i, Target(c, e.access.account, e.fingerprint))
        for i, (e, c) in enumerate(items)
        if c is not None
    ]
    targets = [t for _, t in chosen]
    if notify is not None and targets:
        notify(plan_notice(targets, options))
    verdicts = verify_all(targets, options, now, transport, on_done)
    out = [e for e, _ in items]
    for (i, _), verdict in zip(chosen, verdicts, strict=True):
        out[i] = after_verification(out[i], verdict)
    return out


def verify_findings(
    findings: list[Finding],
    options: VerifyOptions,
    *,
    now: datetime | None = None,
    notify: Callable[[str], None] | None = None,
    on_done: Callable[[int, int], None] | None = None,
) -> None:
    """Check the credentials of a scan's findings (kept with ``keep_credentials``) and
    attach each verdict to its finding's explanation, worst first again."""
    items = [(f.explanation, f.credential) for f in findings]
    for finding, explanation in zip(
        findings,
        verify_explanations(items, options, now=now, notify=notify, on_done=on_done),
        strict=True,
    ):
        finding.explanation = explanation
    findings.sort(key=lambda f: (-f.severity, f.locations[0].path, f.locations[0].line))


def _provider(credential: Credential) -> Provider[Credential]:
    provider = provider_of(credential)
    if provider is None:
        raise TypeError(f"no provider registered for {type(credential).__name__}")
    return provider
