"""The data ``keyscope posture`` builds: settings read, checks, fixes and verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keyscope.model import Severity

# The credential kinds a verdict speaks of, as ``explain`` names them (Access.kind).
KINDS = ("account-sas", "service-sas", "account-key")
KIND_LABELS = {
    "account-sas": "account SAS",
    "service-sas": "service SAS",
    "account-key": "account key",
}


@dataclass(frozen=True)
class Fix:
    """One change that removes a weakness; ``command`` is the exact ``az`` command,
    None when the setting cannot be changed in place (said in ``what``)."""

    what: str
    command: str | None = None


@dataclass(frozen=True)
class Check:
    """A setting that makes a leaked credential worse than it needs to be."""

    code: str
    severity: Severity
    setting: str  # the setting's name as the owner sees it (ARM property or service part)
    title: str
    detail: str
    fixes: tuple[Fix, ...]
    contains: tuple[str, ...] = ()  # the kinds this setting, once fixed, contains or limits


@dataclass(frozen=True)
class KindVerdict:
    """What a leaked credential of one kind could do on this account, given its settings."""

    kind: str
    label: str
    state: str  # blocked | restricted | open | unknown
    severity: Severity
    summary: str
    can: tuple[str, ...]  # capabilities in explain's words ("write: create and overwrite …")
    limited_by: tuple[str, ...]  # settings in place that limit or contain it
    would_contain: tuple[str, ...]  # codes of the checks whose fix would contain or limit it


@dataclass(frozen=True)
class InventoryHit:
    """A credential of this account recorded by ``scan --db``, its blast radius re-rated."""

    fingerprint: str
    kind: str
    status: str
    severity: Severity
    rerated: Severity
    reason: str


@dataclass
class AccountPosture:
    """One storage account: what was read, what it means."""

    account: str
    sources: list[str] = field(default_factory=list)  # "management plane", "data plane"
    subscription: str | None = None
    resource_group: str | None = None
    resource_id: str | None = None
    endpoint: str | None = None  # the data-plane endpoint (no credential)
    settings: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    verdicts: list[KindVerdict] = field(default_factory=list)
    inventory: list[InventoryHit] = field(default_factory=list)

    @property
    def severity(self) -> Severity:
        levels = [v.severity for v in self.verdicts] + [c.severity for c in self.checks]
        return max(levels, default=Severity.INFO)


@dataclass(frozen=True)
class Sent:
    """One request either plane sent (for the report's read-only proof)."""

    method: str
    url: str  # shown form: no credential
    status: int | None


@dataclass
class PostureReport:
    accounts: list[AccountPosture]
    requests: list[Sent]
    notes: list[str]
    generated_at: str
