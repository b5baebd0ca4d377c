"""The policy rules of platform tokens, private keys and JWTs: what each kind of
credential is rated, and why."""

from __future__ import annotations

from keyscope.analyze.aws.policy import RULES as AWS_RULES
from keyscope.analyze.policy import DEFAULT_POLICY, Policy, rate
from keyscope.model import Access, Reason, Severity

# code: (default severity, what it means) — the README documents this table. "live" and
# "expired" keep AWS's meaning (one ``[severity]`` setting covers every provider).
RULES: dict[str, tuple[Severity, str]] = {
    "code-host-token": (
        Severity.CRITICAL,
        "a GitHub or GitLab token reads private code and, with write rights, changes it "
        "(a supply-chain risk) until revoked",
    ),
    "admin-key": (
        Severity.CRITICAL,
        "an organization admin key manages the organization's keys, members and projects",
    ),
    "platform-token": (
        Severity.HIGH,
        "a platform API token acts as its owner (data, models, billing) until revoked",
    ),
    "chat-token": (
        Severity.HIGH,
        "a Slack token reads and posts as its bot or user until revoked",
    ),
    "webhook-url": (
        Severity.MEDIUM,
        "anyone holding the URL can post messages to its channel (phishing in a trusted place)",
    ),
    "short-lived": (
        Severity.MEDIUM,
        "the platform expires this kind of token within hours of issuing it (the issue time "
        "is not in the token)",
    ),
    **{code: AWS_RULES[code] for code in ("live", "expired")},
}
CAPS = {"expired": Severity.LOW, "short-lived": Severity.MEDIUM}


def evaluate(
    access: Access, policy: Policy = DEFAULT_POLICY
) -> tuple[Severity, tuple[Reason, ...]]:
    """Rate one platform token from its kind's rule."""
    rule = str(access.details["rule"])
    hits = [(rule, RULES[rule][1])]
    lifetime = access.details.get("max_lifetime_seconds")
    if isinstance(lifetime, int) and lifetime <= 12 * 3600:
        hits.append(("short-lived", access.validity.summary))
    hits.append(("live", RULES["live"][1]))
    return rate(hits, policy, RULES, CAPS)
