"""What the requests attributed to one credential add up to (:class:`Tally`): counted
as they stream by, merged across workers, never holding the requests themselves."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from keyscope.usage.records import LogRecord

MAX_DISTINCT = 1000  # callers / user agents kept per credential; the rest are "(other)"
OTHER = "(other)"
WRITE_PREFIXES = (
    "Put", "Set", "Create", "Copy", "Append", "Update", "Insert", "Merge", "Upload", "Flush",
    "Undelete", "Snapshot", "Abort", "Acquire", "Break", "Change", "Release", "Renew",
    "Clear", "Start", "Rename", "Restore", "Seal", "Lease", "Patch", "Batch", "Promote",
)
DELETE_PREFIXES = ("Delete", "Purge")


def outcome(rec: LogRecord) -> str:
    """``accepted`` (the service served it), ``refused`` (authentication or
    authorization failed: expired, bad signature, outside sip, missing permission) or
    ``failed`` (the token was accepted; the request failed otherwise)."""
    status = rec.status or 0
    text = rec.status_text
    if status in (401, 403) or (text.startswith("SAS") and text.endswith("Error")
                                 and "Authorization" in text) or "Authentication" in text:
        return "refused"
    if status >= 400 or (rec.form == "classic" and not text.endswith("Success")):
        return "failed"
    return "accepted"


def action(rec: LogRecord) -> str:
    """``delete``, ``write`` or ``read``, by the resource-log category, else the name."""
    if rec.category == "StorageDelete" or rec.operation.startswith(DELETE_PREFIXES):
        return "delete"
    if rec.category == "StorageWrite" or rec.operation.startswith(WRITE_PREFIXES):
        return "write"
    return "read"


@dataclass
class Caller:
    first: datetime
    last: datetime
    count: int = 0


@dataclass
class Tally:
    """One credential's uses."""

    requests: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    operations: Counter[tuple[str, int, str]] = field(default_factory=Counter)
    callers: dict[str, Caller] = field(default_factory=dict)
    agents: Counter[str] = field(default_factory=Counter)
    bytes_read: int = 0
    bytes_written: int = 0
    first: datetime | None = None
    last: datetime | None = None
    first_accepted: datetime | None = None
    last_accepted: datetime | None = None
    after_leak: int = 0
    first_after_leak: datetime | None = None
    last_after_leak: datetime | None = None
    writes: Counter[str] = field(default_factory=Counter)
    deletes: Counter[str] = field(default_factory=Counter)
    signers: Counter[str] = field(default_factory=Counter)
    strengths: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    forms: Counter[str] = field(default_factory=Counter)

    def add(self, rec: LogRecord, strength: str, signer: str | None,
            leaked_at: datetime | None) -> None:
        """Count one request made with the credential."""
        t = rec.time
        self.requests += 1
        result = outcome(rec)
        self.outcomes[result] += 1
        self.operations[(rec.operation, rec.status or 0, rec.status_text)] += 1
        self.strengths[strength] += 1
        self.forms[rec.form] += 1
        if signer:
            self.signers[signer] += 1
        ip = rec.caller or "(none)"
        caller = self.callers.get(ip)
        if caller is None and len(self.callers) >= MAX_DISTINCT:
            ip, caller = OTHER, self.callers.get(OTHER)
        if caller is None:
            self.callers[ip] = Caller(t, t, 1)
        else:
            caller.first, caller.last = min(caller.first, t), max(caller.last, t)
            caller.count += 1
        agent = rec.user_agent
        self.agents[agent if agent in self.agents or len(self.agents) < MAX_DISTINCT
                    else OTHER] += 1
        self.first, self.last = _lo(self.first, t), _hi(self.last, t)
        if result == "refused":
            self.refused[rec.status_text or str(rec.status)] += 1
            return
        self.bytes_read += rec.bytes_out
        self.bytes_written += rec.bytes_in
        if result == "accepted":
            self.first_accepted = _lo(self.first_accepted, t)
            self.last_accepted = _hi(self.last_accepted, t)
            kind = action(rec)
            if kind == "write":
                self.writes[rec.operation] += 1
            elif kind == "delete":
                self.deletes[rec.operation] += 1
            if leaked_at is not None and t >= leaked_at:
                self.after_leak += 1
                self.first_after_leak = _lo(self.first_after_leak, t)
                self.last_after_leak = _hi(self.last_after_leak, t)

    def merge(self, other: Tally) -> None:
        """Add another worker's tally of the same credential."""
        self.requests += other.requests
        for name in ("outcomes", "operations", "writes", "deletes", "signers", "strengths",
                     "refused", "forms"):
            getattr(self, name).update(getattr(other, name))
        for ip, c in other.callers.items():
            mine = self.callers.get(ip)
            if mine is None and len(self.callers) >= MAX_DISTINCT:
                ip, mine = OTHER, self.callers.get(OTHER)
            if mine is None:
                self.callers[ip] = Caller(c.first, c.last, c.count)
            else:
                mine.first, mine.last = min(mine.first, c.first), max(mine.last, c.last)
                mine.count += c.count
        for agent, n in other.agents.items():
            key = agent if agent in self.agents or len(self.agents) < MAX_DISTINCT else OTHER
            self.agents[key] += n
        self.bytes_read += other.bytes_read
        self.bytes_written += other.bytes_written
        self.after_leak += other.after_leak
        for lo in ("first", "first_accepted", "first_after_leak"):
            setattr(self, lo, _lo(getattr(self, lo), getattr(other, lo)))
        for hi in ("last", "last_accepted", "last_after_leak"):
            setattr(self, hi, _hi(getattr(self, hi), getattr(other, hi)))


def _lo(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _hi(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)
