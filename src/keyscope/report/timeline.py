"""Timelines: the findings of one storage account (or one key) in commit order, so a
token committed, re-issued with a later expiry and deleted reads as one story."""

from __future__ import annotations

from dataclasses import dataclass

from keyscope.model import Finding


@dataclass(frozen=True)
class Event:
    date: str
    event: str  # introduced | removed | at-boundary (a shallow clone's cut: present there)
    commit: str
    author: str
    path: str
    line: int
    finding: Finding


@dataclass(frozen=True)
class Timeline:
    subject: str  # "storage account 'x'" or "credential ks1:…"
    events: tuple[Event, ...]


def timelines(findings: list[Finding]) -> list[Timeline]:
    """One timeline per account with git history; events oldest first."""
    groups: dict[str, list[Event]] = {}
    for f in findings:
        account = f.explanation.access.account
        subject = f"storage account '{account}'" if account else f"credential {f.fingerprint}"
        for loc in f.locations:
            g = loc.git
            if g is None or g.commit is None:
                continue
            groups.setdefault(subject, []).append(
                Event(
                    g.date or "",
                    "at-boundary" if g.at_boundary else "introduced",
                    g.commit,
                    g.author or "",
                    loc.path,
                    loc.line,
                    f,
                )
            )
            if g.removed_in:
                groups[subject].append(
                    Event(
                        g.removed_date or "",
                        "removed",
                        g.removed_in,
                        g.removed_by or "",
                        loc.path,
                        loc.line,
                        f,
                    )
                )
    out = [
        Timeline(subject, tuple(sorted(events, key=lambda e: (e.date, e.event == "removed"))))
        for subject, events in groups.items()
    ]
    out.sort(key=lambda t: t.events[0].date)
    return out
