"""Severity policy, provider-neutral: the user's thresholds and per-rule severities
(:class:`Policy`), how the rules that applied become one severity (:func:`rate`), and
how a live check moves it (:func:`after_verification`).

Which rules apply to a credential is its provider's business (Azure:
``analyze/azure/policy.py``); reading ``keyscope.toml`` / ``[tool.keyscope]`` is
``keyscope.config``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from keyscope.model import Explanation, Reason, Severity, Verification

# A provider's policy rules: code → (default severity, what it means).
RuleTable = Mapping[str, tuple[Severity, str]]


@dataclass(frozen=True)
class Policy:
    """The thresholds and per-rule severities used to rate a credential."""

    max_lifetime: int = 3600
    wide_read_max_lifetime: int = 86400
    require_https: bool = True
    allow_account_sas: bool = False
    severity: dict[str, Severity | None] = field(default_factory=dict)
    # Names model files may reference besides the built-in allowlist (e.g. your own
    # nn.Module classes). The never-allow list always wins.
    model_allow: frozenset[str] = frozenset()

    def severity_of(self, code: str, default: Severity) -> Severity | None:
        """The severity a rule calls for (``default`` unless the user set one);
        ``None`` when the user switched it off."""
        if code in self.severity:
            return self.severity[code]
        return default


DEFAULT_POLICY = Policy()


def rate(
    hits: Iterable[tuple[str, str]],
    policy: Policy,
    rules: RuleTable,
    caps: Mapping[str, Severity],
) -> tuple[Severity, tuple[Reason, ...]]:
    """The severity of one credential from the rules that applied to it (``hits``:
    code and message): the highest, unless a rule in ``caps`` applied (then at most
    the capping rule's severity). Rules the user switched off are dropped."""
    reasons: list[Reason] = []
    for code, message in hits:
        sev = policy.severity_of(code, rules[code][0])
        if sev is not None:
            reasons.append(Reason(code=code, severity=sev, message=message))
    severity = max((r.severity for r in reasons), default=Severity.INFO)
    for r in reasons:
        if r.code in caps:
            severity = min(severity, r.severity)
    reasons.sort(key=lambda r: (-r.severity, r.code))
    return severity, tuple(reasons)


def after_verification(explanation: Explanation, verification: Verification) -> Explanation:
    """Attach a live check's verdict and move the severity one step: up when the
    service accepted the credential, down (never below low) when it is refused for
    good. The finding is kept either way: history, forks and key reuse still matter.
    Emulator credentials keep their cap."""
    reasons = list(explanation.reasons)
    severity = explanation.severity
    emulator = any(r.code == "emulator" for r in reasons)
    if verification.live is True and not emulator:
        severity = Severity(min(Severity.CRITICAL, severity + 1))
        reasons.append(Reason("verified-live", severity, verification.summary))
    elif verification.status == "account-not-found":
        reasons.append(Reason("account-gone", severity, verification.summary))
    elif verification.live is False and not emulator:
        severity = Severity(max(Severity.LOW, severity - 1))
        reasons.append(Reason("verified-dead", severity, verification.summary))
    reasons.sort(key=lambda r: (-r.severity, r.code))
    return replace(
        explanation, severity=severity, reasons=tuple(reasons), verification=verification
    )

