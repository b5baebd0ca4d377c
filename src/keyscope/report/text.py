"""Terminal rendering: the plain sentence first, then the details; colour on a TTY."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from keyscope.analyze.timefmt import instant
from keyscope.model import (
    Explanation,
    Finding,
    GitProvenance,
    Location,
    Owner,
    Severity,
    Verification,
)
from keyscope.redact import for_terminal, terminal_safe
from keyscope.report.interface import (
    Format,
    image_story,
    member_place,
    owner_text,
    shown,
    split_origin,
)
from keyscope.report.timeline import timelines

if TYPE_CHECKING:
    from keyscope.model import ScanResult

_COLORS = {
    Severity.CRITICAL: "\033[1;97;41m",
    Severity.HIGH: "\033[1;31m",
    Severity.MEDIUM: "\033[1;33m",
    Severity.LOW: "\033[1;36m",
    Severity.INFO: "\033[2m",
}
_BOLD = "\033[1m"
_DIM = "\033[2m"
_RESET = "\033[0m"


class TextFormat(Format):
    """``--format text``: for a person at a terminal (the default)."""

    explains = True

    def finish(self, result: ScanResult) -> None:
        o = self.options
        self.out.write(render_scan(result, color=o.color, verbose=o.verbose, every=o.every))

    def explain(self, explanations: list[Explanation], now: datetime) -> None:
        self.out.write(render_explain(explanations, now, color=self.options.color))


def render_explain(explanations: list[Explanation], now: datetime, *, color: bool = False) -> str:
    blocks = [_one(e, color) for e in for_terminal(explanations)]
    return "\n".join(blocks)


def _one(e: Explanation, color: bool) -> str:
    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    a = e.access
    lines = [
        f"{paint(_COLORS[e.severity], e.severity.label.upper())}  {e.sentence}",
        "",
    ]
    rows: list[tuple[str, str]] = [
        ("kind", a.kind_label),
        ("account", a.account or (a.account_note or "unknown")),
    ]
    if a.account and a.account_note:
        rows.append(("", a.account_note))
    if a.endpoint:
        rows.append(("endpoint", a.endpoint + (f"  ({a.cloud})" if a.cloud else "")))
    rows.append(("services", ", ".join(a.services) or "unknown (only in the URL)"))
    rows.append(("scope", a.scope.description))
    if a.permissions is not None:
        rows.append(("permissions", a.permissions))
    for cap in a.capabilities:
        rows.append(("", f"{cap.letter}  {cap.name}: {cap.meaning}"))
    if a.destructive:
        rows.append(("destructive", ", ".join(a.destructive)))
    rows.append(("validity", a.validity.summary))
    if a.validity.start:
        rows.append(("", f"start  {instant(a.validity.start)}"))
    if a.validity.expiry:
        rows.append(("", f"expiry {instant(a.validity.expiry)}"))
    rows.append(("network", a.network.summary))
    for key in ("signed_version", "stored_policy", "encryption_scope", "signed_resource"):
        if key in a.details:
            rows.append((key.replace("_", " "), str(a.details[key])))
    ud = a.details.get("user_delegation")
    if isinstance(ud, dict):
        for k, v in ud.items():
            rows.append(("delegation" if k == next(iter(ud)) else "", f"{k}={v}"))
    overrides = a.details.get("response_header_overrides")
    if isinstance(overrides, dict):
        rows.append(("overrides", ", ".join(f"{k}={v}" for k, v in overrides.items())))
    rows.append(("signature", e.signature.detail))
    for name, value in e.log_fingerprints.items():
        if name not in ("kql", "unsigned_parameters", "resource_path"):
            rows.append(("log hash", value))
    rows.append(("token", e.redacted))
    rows.append(("fingerprint", e.fingerprint))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        lines.append(f"  {paint(_DIM, k.ljust(width))}  {v}")
    if e.verification is not None:
        lines.append("")
        lines.extend(f"  {line}" for line in verification_lines(e.verification, paint))
    lines.append("")
    lines.append(f"  {paint(_BOLD, 'Severity ' + e.severity.label)} because:")
    for r in e.reasons:
        lines.append(f"    - [{r.severity.label}] {r.code}: {r.message}")
    lines.append("")
    lines.append(f"  {paint(_BOLD, 'Revoke')}: {a.revocation.summary}.")
    for step in a.revocation.steps:
        lines.append(f"    - {step.description}")
        if step.command:
            lines.append(f"      $ {step.command}")
    if a.revocation.side_effects:
        lines.append(f"    {a.revocation.side_effects}")
    if "kql" in e.log_fingerprints:
        lines.append("")
        lines.append(f"  {paint(_BOLD, 'Find its use in Azure Monitor logs')}:")
        lines.append(f"    {e.log_fingerprints['kql']}")
    if e.notes:
        lines.append("")
        for n in e.notes:
            lines.append(f"  note: {n}")
    return "\n".join(lines) + "\n"


def verification_lines(v: Verification, paint: Callable[[str, str], str]) -> list[str]:
    """The live check: its verdict, then each request and the service's answer."""
    mark = {True: _COLORS[Severity.CRITICAL], False: _DIM, None: _BOLD}[v.live]
    lines = [f"{paint(_BOLD, 'Live check')} ({v.checked_at}): {paint(mark, v.summary)}"]
    for p in v.probes:
        answer = f"HTTP {p.http_status}" if p.http_status is not None else "not answered"
        if p.error_code:
            answer += f" {p.error_code}"
        lines.append(f"  - {p.probe}: {p.status} ({answer})")
        lines.append(f"    {p.method} {p.url}")
        if p.detail and p.status not in ("live",):
            lines.append(f"    {p.detail}")
        if p.facts:
            lines.append("    " + ", ".join(f"{k}={v}" for k, v in p.facts.items()))
    return lines


PLACES_SHOWN = 3  # per file, without --all-locations
COMMITS_SHOWN = 3


def render_scan(
    result: ScanResult, *, color: bool = False, verbose: bool = False, every: bool = False
) -> str:
    """Findings grouped by severity, worst first; the sentence, then where (the first
    few places per file, or ``every`` one), the timeline, what to do next."""

    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    result = shown(result, terminal=True)
    lines: list[str] = []
    for severity in sorted(Severity, reverse=True):
        group = [f for f in result.findings if f.severity == severity]
        if not group:
            continue
        lines.append(paint(_COLORS[severity], f"{severity.label.upper()} ({len(group)})"))
        for f in group:
            e = f.explanation
            lines.append(f"  {paint(_BOLD, '●')} {e.sentence}")
            lines.append(f"    {paint(_DIM, f'{f.rule_id}  {f.fingerprint}  {e.redacted}')}")
            secret = next((loc.secret for loc in f.locations if loc.secret is not None), None)
            if secret is not None:
                lines.append(f"    secret: {secret}")
            if e.verification is not None:
                lines.extend(f"    {line}" for line in verification_lines(e.verification, paint))
            lines.extend(location_lines(f.locations, every))
            if f.owners:
                lines.append(f"    {paint(_DIM, 'owners:')} {owners_line(f.owners)}")
        lines.append("")
    if result.model_findings:
        lines.append(paint(_BOLD, f"Model files ({len(result.model_findings)})"))
        for m in result.model_findings:
            where = m.path + (f" > {' > '.join(m.where)}" if m.where else "")
            at = f" at byte {m.offset}" if m.offset is not None else ""
            lines.append(
                f"  {paint(_COLORS[m.severity], m.severity.label.upper())}  "
                f"{m.verdict}: {where}{at}"
            )
            lines.append(f"    {m.sentence}")
            for d in m.details[:8]:
                lines.append(f"      - {d}")
            if len(m.details) > 8:
                lines.append(f"      … and {len(m.details) - 8} more")
        lines.append("")
    stories = timelines(result.findings)
    if stories:
        lines.append(paint(_BOLD, "Timeline (git history)"))
        for t in stories:
            lines.append(f"  {t.subject}")
            for ev in t.events:
                e = ev.finding.explanation
                expiry = e.access.validity.effective_expiry
                what = f"{e.access.kind_label}, {e.severity.label}"
                if expiry is not None:
                    what += f", expires {expiry:%Y-%m-%d}"
                where = f"{member_place(ev.path, ev.origin)}:{ev.line}"
                if len(ev.lines) > 1:
                    where += f" (+{len(ev.lines) - 1} more lines)"
                lines.append(
                    f"    {ev.date[:10]}  {ev.commit[:10]}  {ev.event:<10}  {where}"
                    f"  {ev.author}  ({what}; {ev.finding.fingerprint})"
                )
        lines.append("")
    for repo, commits in result.history_cut.items():
        lines.append(
            f"Note: {repo} is a shallow clone, its history cut at commit "
            f"{', '.join(c[:10] for c in commits)}: older commits were not scanned, and a "
            "secret present there may have been introduced earlier."
        )
    steps = next_steps(result.findings, paint)
    if steps:
        lines.extend([*steps, ""])
    lines.append(summary_line(result))
    if result.skipped:
        skipped = result.skipped if verbose else result.skipped[:10]
        for s in skipped:
            lines.append(f"  skipped {s.path}: {s.reason}")
        if len(skipped) < len(result.skipped):
            lines.append(f"  … and {len(result.skipped) - len(skipped)} more (--verbose lists all)")
    if verbose and result.stats.rejected:
        lines.append("Candidates not reported:")
        for reason, n in result.stats.rejected.most_common():
            lines.append(f"  {n:6d}  {terminal_safe(reason)}")
    return "\n".join(lines) + "\n"


OWNERS_SHOWN = 6


def owners_line(owners: tuple[Owner, ...]) -> str:
    """The first few owners of a finding, on one line (the JSON formats list all)."""
    text = ", ".join(owner_text(o) for o in owners[:OWNERS_SHOWN])
    if len(owners) > OWNERS_SHOWN:
        text += f" and {len(owners) - OWNERS_SHOWN} more"
    return text


def location_lines(locations: list[Location], every: bool = False) -> list[str]:
    """Where one secret was seen: per file, its first few places and how many more, then
    the commits that brought it there; ``every`` place, with its commit, if asked."""
    lines: list[str] = []
    if every:
        for loc in locations:
            lines.append(f"    {_where(loc)}  {loc.snippet.strip()}")
            if loc.git is not None:
                lines.append(f"      {git_line(loc.git)}")
            if loc.image is not None:
                lines.append(f"      {image_story(loc.image)}")
        return lines
    by_path: dict[str, dict[tuple[int, int, tuple[str, ...]], Location]] = {}
    commits: dict[str, dict[str, None]] = {}
    for loc in locations:
        path = member_place(loc.path, loc.origin)  # each member of an archive is a file
        by_path.setdefault(path, {}).setdefault((loc.line, loc.column, loc.origin), loc)
        if loc.git is not None:
            commits.setdefault(path, {})[git_line(loc.git)] = None
    for path, places in by_path.items():
        for loc in list(places.values())[:PLACES_SHOWN]:
            lines.append(f"    {_where(loc)}  {loc.snippet.strip()}")
            if loc.image is not None:
                lines.append(f"      {image_story(loc.image)}")
        more = len(places) - PLACES_SHOWN
        if more > 0:
            numbers = sorted({line for line, _, _ in places})
            lines.append(
                f"      … and {more} more in {path} (lines {numbers[0]}–{numbers[-1]}; "
                "--all-locations lists every one)"
            )
        stories = list(commits.get(path, ()))
        lines.extend(f"      {story}" for story in stories[:COMMITS_SHOWN])
        if len(stories) > COMMITS_SHOWN:
            lines.append(f"      … and {len(stories) - COMMITS_SHOWN} more commits")
    return lines


def _where(loc: Location) -> str:
    """``path:LINE:COL``; inside an archive ``outer.zip!/member:LINE:COL``; decoded
    layers after it in parentheses: ``(base64)``."""
    layers = split_origin(loc.origin)[1]
    where = member_place(loc.path, loc.origin) + f":{loc.line}:{loc.column}"
    if layers:
        where += " (" + " > ".join(layers) + ")"
    return where


def next_steps(findings: list[Finding], paint: Callable[[str, str], str]) -> list[str]:
    """What to do about the worst finding: the commands that revoke it, then a live check."""
    if not findings:
        return []
    worst = max(findings, key=lambda f: f.severity)  # the first of the worst
    e = worst.explanation
    r = e.access.revocation
    what = e.access.kind_label + (f" for '{e.access.account}'" if e.access.account else "")
    lines = [
        paint(_BOLD, "What to do now"),
        f"  The worst finding, the {e.severity.label} {what} ({worst.fingerprint}), {r.summary}.",
    ]
    for i, step in enumerate(r.steps, 1):
        lines.append(f"  {i}. {step.description}")
        if step.command:
            lines.append(f"       {step.command}")
    if r.side_effects:
        lines.append(f"  {r.side_effects}")
    if e.verification is None:
        lines.append(
            "  To see whether it still works, run the scan again with --verify "
            "(read-only requests, each one listed before it is sent)."
        )
    if r.steps:
        lines.append(
            "  Deleting the file does not revoke it: git history, forks and clones keep it."
        )
    return lines


def summary_line(result: ScanResult) -> str:
    s = result.stats
    counts = Counter(f.severity for f in result.findings)
    parts = [f"{counts[sev]} {sev.label}" for sev in sorted(Severity, reverse=True) if counts[sev]]
    found = f"{len(result.findings)} finding{'s' if len(result.findings) != 1 else ''}"
    if parts:
        found += " (" + ", ".join(parts) + ")"
    checked = [f.explanation.verification for f in result.findings]
    verdicts = Counter(
        {True: "live", False: "not live", None: "unknown"}[v.live] for v in checked if v
    )
    if verdicts:
        found += "; checked live: " + ", ".join(
            f"{verdicts[k]} {k}" for k in ("live", "not live", "unknown") if verdicts[k]
        )
    if result.model_findings:
        n = len(result.model_findings)
        found += f"; {n} model-file finding{'s' if n != 1 else ''}"
    skipped = f"; {len(result.skipped)} skipped" if result.skipped else ""
    return (
        f"Scanned {s.files} file{'s' if s.files != 1 else ''} ({human_bytes(s.bytes)}) in "
        f"{s.seconds:.2f} s with {result.engine}: {found}{skipped}."
    )


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def git_line(g: GitProvenance) -> str:
    """``introduced in 1a2b3c4d by Alice <a@x> on 2021-10-05 ("msg"); removed in …``."""
    if g.commit is None:
        state = "still at HEAD" if g.present_at_head else "on no branch or tag"
        return f"blob {g.blob[:10]}: in the object database, {state}"
    who = f"by {g.author} <{g.email}> on {(g.date or '')[:10]}"
    text = f"introduced in {g.commit[:10]} {who}"
    if g.at_boundary:  # a shallow clone: the introducing commit is not in it
        text = f"present at {g.commit[:10]}, where the history is cut (a shallow clone) {who}"
    if g.message:
        text += f' ("{g.message[:60]}")'
    if g.present_at_head:
        return text + "; still at HEAD"
    if g.removed_in:
        text += f"; removed in {g.removed_in[:10]}"
    return text + "; gone from HEAD but still in history: deleting it did not revoke it"
