"""Timelines: the findings of one storage account (or one key) in commit order, so a
token committed, re-issued with a later expiry and deleted reads as one story. A web
page (a crawl, a web archive's record) is an event at its capture time."""

from __future__ import annotations

from dataclasses import dataclass

from keyscope.model import Finding
from keyscope.report.interface import split_origin


@dataclass(frozen=True)
class Event:
    date: str
    # introduced | removed | at-boundary (a shallow clone's cut: present there) |
    # captured (a web page holding it, at its capture time; no commit, no author)
    event: str
    commit: str
    author: str
    path: str
    line: int  # the first line
    finding: Finding
    lines: tuple[int, ...] = ()  # every line of ``path`` it is on, in that commit
    origin: tuple[str, ...] = ()  # the archive members inside ``path`` it is in


@dataclass(frozen=True)
class Timeline:
    subject: str  # "storage account 'x'" or "credential ks1:…"
    events: tuple[Event, ...]


def timelines(findings: list[Finding]) -> list[Timeline]:
    """One timeline per account with git history or captured web pages; events oldest
    first. One event per credential, file and commit (its lines gathered), or per
    credential, page and capture; a blob replaced by one that still holds the
    credential in the same file is not a removal."""
    groups: dict[str, dict[tuple[str, str, str, str, tuple[str, ...]], list[Event]]] = {}
    for f in findings:
        account = f.explanation.access.account
        subject = f"storage account '{account}'" if account else f"credential {f.fingerprint}"
        events = groups.setdefault(subject, {})
        for loc in f.locations:
            members = split_origin(loc.origin)[0]
            g = loc.git
            if (g is None or g.commit is None) and loc.captured:
                key = (f.fingerprint, "captured", loc.captured, loc.path, members)
                ev = Event(loc.captured, "captured", "", "", loc.path, loc.line, f, (), members)
                events.setdefault(key, []).append(ev)
                continue
            if g is None or g.commit is None:
                continue
            first = "at-boundary" if g.at_boundary else "introduced"
            seen = [(first, g.commit, g.date, g.author)]
            if g.removed_in:
                seen.append(("removed", g.removed_in, g.removed_date, g.removed_by))
            for kind, commit, date, author in seen:
                key = (f.fingerprint, kind, commit, loc.path, members)
                ev = Event(
                    date or "", kind, commit, author or "", loc.path, loc.line, f, (), members
                )
                events.setdefault(key, []).append(ev)
    out = []
    for subject, events in groups.items():
        merged = [
            _merge(evs)
            for (fp, kind, commit, path, members), evs in events.items()
            if kind != "removed"
            or not any(
                (fp, k, commit, path, members) in events for k in ("introduced", "at-boundary")
            )
        ]
        if merged:
            merged.sort(key=lambda e: (e.date, e.event == "removed", e.path, e.origin, e.line))
            out.append(Timeline(subject, tuple(merged)))
    out.sort(key=lambda t: t.events[0].date)
    return out


def _merge(events: list[Event]) -> Event:
    lines = tuple(sorted({e.line for e in events}))
    first = events[0]
    return Event(
        first.date,
        first.event,
        first.commit,
        first.author,
        first.path,
        lines[0],
        first.finding,
        lines,
        first.origin,
    )
