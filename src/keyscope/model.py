"""The types that cross layers: what a credential unlocks (its blast radius), where it
was seen, model-file verdicts, what was skipped, and a whole scan's result.

Every analyzer turns a parsed credential into an :class:`Explanation`; sources yield
:class:`Skipped`; the engine makes :class:`RawFinding` and :class:`ModelFinding`;
reports, the policy, the baseline and verification only read these types. This
module imports nothing else of keyscope.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # for the type checker only: nothing of keyscope at run time
    from keyscope.providers.registry import Credential


class Severity(enum.IntEnum):
    """How urgently a credential needs action. Ordered: ``INFO < … < CRITICAL``."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of: {names})") from None


@dataclass(frozen=True)
class Capability:
    """One permission letter and what it lets the holder do for this credential type."""

    letter: str
    name: str
    meaning: str
    classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scope:
    """Which resources the credential reaches."""

    # account | container | directory | blob | snapshot | version | share | file | queue | table
    level: str
    description: str
    container: str | None = None
    path: str | None = None
    directory_depth: int | None = None
    snapshot: str | None = None
    version_id: str | None = None
    table_range: dict[str, str] | None = None


@dataclass(frozen=True)
class Validity:
    """When the credential works. ``None`` expiry means: until revoked, or not visible."""

    start: datetime | None
    expiry: datetime | None
    effective_expiry: datetime | None
    lifetime_seconds: int | None
    remaining_seconds: int | None
    expired: bool
    not_yet_valid: bool
    summary: str
    key_start: datetime | None = None
    key_expiry: datetime | None = None


@dataclass(frozen=True)
class NetworkLimits:
    ip_range: str | None  # None: any IP
    protocols: tuple[str, ...]  # e.g. ("https",) or ("https", "http")
    summary: str


@dataclass(frozen=True)
class RevocationStep:
    description: str
    command: str | None = None


@dataclass(frozen=True)
class Revocation:
    """How to make the credential stop working."""

    individually_revocable: bool
    summary: str
    steps: tuple[RevocationStep, ...]
    side_effects: str | None = None


@dataclass(frozen=True)
class Reason:
    """One policy rule that applied, with the severity it calls for."""

    code: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class SignatureCheck:
    """Whether a co-leaked key produced this signature."""

    status: str  # signed-with-key | not-signed-with-key | not-checked
    detail: str
    key_label: str | None = None


@dataclass(frozen=True)
class Access:
    """The blast radius of one credential, provider-neutral."""

    provider: str
    kind: str
    kind_label: str
    account: str | None
    account_note: str | None
    endpoint: str | None
    cloud: str | None
    emulator: bool
    services: tuple[str, ...]
    scope: Scope
    permissions: str | None
    capabilities: tuple[Capability, ...]
    destructive: tuple[str, ...]
    validity: Validity
    network: NetworkLimits
    revocation: Revocation
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeResult:
    """One live-check request sent (or refused before sending) and what the service said."""

    probe: str  # e.g. "Get Account Information"
    method: str
    url: str  # signature and keys redacted
    status: str  # one of keyscope.verify.interface.STATUSES
    http_status: int | None = None
    error_code: str | None = None  # x-ms-error-code or the body's <Code>
    detail: str | None = None  # the service's message / AuthenticationErrorDetail, or ours
    facts: dict[str, str] = field(default_factory=dict)  # e.g. sku name, logging on/off


@dataclass(frozen=True)
class Verification:
    """The live-check verdict for one credential, from its probes (``--verify``)."""

    status: str  # one of keyscope.verify.interface.STATUSES
    live: bool | None  # True: accepted; False: refused for good; None: unknown
    summary: str
    probes: tuple[ProbeResult, ...]
    checked_at: str  # ISO-8601 UTC


@dataclass(frozen=True)
class Explanation:
    """One credential, explained: the sentence, the facts, the verdict."""

    sentence: str
    access: Access
    severity: Severity
    reasons: tuple[Reason, ...]
    log_fingerprints: dict[str, str]
    signature: SignatureCheck
    redacted: str
    fingerprint: str
    notes: tuple[str, ...] = ()
    verification: Verification | None = None  # only after an opt-in live check


@dataclass(frozen=True)
class Location:
    """Where a secret was seen. Lines and columns are 1-based; columns count bytes."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    snippet: str  # the line, secrets redacted, cut to a readable length
    origin: tuple[str, ...] = ()  # chain inside ``path``: archive members, "base64"
    secret: str | None = None  # only with --show-secrets
    git: GitProvenance | None = None  # for blobs read from a repository's history
    image: ImageProvenance | None = None  # for files read from a container image's layers
    # a web page's capture time (ISO 8601): its WARC-Date in a web archive; for a crawl,
    # its Last-Modified when the server sent one, else when keyscope fetched it
    captured: str | None = None


@dataclass(frozen=True)
class GitProvenance:
    """Where a secret came from in git: the commit that first made it appear at this path
    (edits of other lines keep it), the one that made it disappear, and whether it is
    still there."""

    blob: str
    commit: str | None  # None: the blob is in the object database but on no ref
    author: str | None = None
    email: str | None = None
    date: str | None = None  # author date, ISO-8601
    committer: str | None = None
    message: str | None = None  # first line
    committer_email: str | None = None
    removed_in: str | None = None  # commit that took the blob away from this path
    removed_date: str | None = None
    removed_by: str | None = None
    last_present: str | None = None  # the last commit that still had it there
    present_at_head: bool = False
    removed_from_head: bool = False  # in history, no longer at HEAD: deletion did not revoke it
    # ``commit`` is where a shallow clone's history is cut: the secret was there, but
    # the commit that introduced it is not in the clone.
    at_boundary: bool = False


@dataclass(frozen=True)
class ImageProvenance:
    """Which layer of a container image added a file and, when a later layer deleted
    (whiteout) or replaced it, which one: the file is then gone from the final file
    system but still in the image, where anyone who pulls it can read it. Layers are
    numbered from 1, bottom to top."""

    layer: int
    digest: str  # the layer's digest as the image names it (``sha256:…``)
    created_by: str | None = None  # the layer's history entry (the Dockerfile step)
    removed_in: int | None = None  # the first later layer that hides the file
    removed_by: str | None = None  # that layer's history entry
    overwritten: bool = False  # removed_in replaced the file rather than deleting it


@dataclass(frozen=True)
class Owner:
    """Who answers for a credential: a person, a team or an address, and why
    (``owners/``)."""

    name: str  # "@org/team", "@user", "Alice Example", or the address itself
    email: str | None = None
    via: tuple[str, ...] = ()  # "author of 1a2b3c4d5e", ".github/CODEOWNERS:3 /src/", …


@dataclass
class Finding:
    """One secret, explained, with every place it was seen."""

    fingerprint: str
    rule_id: str
    explanation: Explanation
    locations: list[Location]
    owners: tuple[Owner, ...] = ()  # filled after the scan (owners/assign.py)
    # The parsed credential, kept in memory only when a live check was asked for;
    # never written to any output.
    credential: Credential | None = field(default=None, repr=False, compare=False)

    @property
    def severity(self) -> Severity:
        return self.explanation.severity


@dataclass(frozen=True)
class RawFinding:
    """A credential seen at one location (merged into Findings by fingerprint later)."""

    rule_id: str
    explanation: Explanation
    location: Location
    credential: Credential | None = None  # the parsed credential, only for --verify
    owners: tuple[Owner, ...] = ()  # filled before a streaming format sees it


@dataclass(frozen=True)
class ModelFinding:
    """One pickle (or container anomaly) in a model file, judged."""

    path: str
    where: tuple[str, ...]  # member chain inside the file
    severity: Severity
    verdict: str  # executes-code | unknown-import | library-class | inconclusive | anomaly
    # | not-a-pickle
    sentence: str
    details: tuple[str, ...]  # each call or import, in stream order
    offset: int | None


@dataclass(frozen=True)
class Skipped:
    """Something that was not scanned, and why (shown to the user, never silent)."""

    path: str
    reason: str
    oversize: bool = False  # over --max-file-size: secrets not scanned, a model still judged


class RuleInfo(Protocol):
    """What reports show of a detection rule (``detect.rules.Rule`` is one)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def references(self) -> Sequence[str]: ...


@dataclass
class ScanStats:
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    rejected: Counter[str] = field(default_factory=Counter)


@dataclass
class ScanResult:
    findings: list[Finding]
    skipped: list[Skipped]
    stats: ScanStats
    rules: tuple[RuleInfo, ...]
    engine: str
    now: datetime
    model_findings: list[ModelFinding] = field(default_factory=list)
    # Shallow repositories: shown name → the commits their history is cut at.
    history_cut: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Progress:
    """Sent to ``on_progress`` after each batch."""

    files: int
    bytes: int
    findings: int
    seconds: float
