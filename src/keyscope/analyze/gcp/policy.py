"""Google Cloud's policy rules: a key's reach, a signed URL's lifetime and method."""

from __future__ import annotations

from keyscope.analyze.aws.policy import RULES as AWS_RULES
from keyscope.analyze.policy import DEFAULT_POLICY, Policy, rate
from keyscope.analyze.timefmt import duration
from keyscope.model import Access, Reason, Severity

# code: (default severity, what it means) — the README documents this table. Codes
# shared with AWS keep AWS's meaning (and one ``[severity]`` setting covers both).
RULES: dict[str, tuple[Severity, str]] = {
    "service-account-key": (
        Severity.CRITICAL,
        "a service-account key acts with all the account's IAM roles until disabled",
    ),
    "hmac-key": (
        Severity.CRITICAL,
        "an HMAC key acts with its owner's Cloud Storage rights until deactivated",
    ),
    "api-key": (
        Severity.MEDIUM,
        "an API key bills its project and calls the APIs it is not restricted from, "
        "with no IAM identity",
    ),
    **{code: AWS_RULES[code] for code in (
        "likely-write", "delete", "long-lifetime", "legacy-signature", "refused-lifetime",
        "live", "expired", "emulator")},
}
CAPS = {"emulator": Severity.INFO, "expired": Severity.LOW, "refused-lifetime": Severity.LOW}
_KEYS = ("service-account-key", "hmac-key", "api-key")


def evaluate(
    access: Access, policy: Policy = DEFAULT_POLICY
) -> tuple[Severity, tuple[Reason, ...]]:
    """Rate one Google Cloud credential: its severity and every rule that applied."""
    hits: list[tuple[str, str]] = []
    v = access.validity
    d = access.details
    if access.emulator:
        hits.append(("emulator", RULES["emulator"][1]))
    if v.expired:
        hits.append(("expired", v.summary))
    if access.kind in _KEYS:
        hits.append((access.kind, RULES[access.kind][1]))
    else:
        classes = {c for cap in access.capabilities for c in cap.classes}
        if "write" in classes:
            hits.append(("likely-write", f"implied method {access.permissions}"))
        if "delete" in classes:
            hits.append(("delete", "signed for DELETE"))
        if d.get("signature_version") == "V2":
            hits.append(("legacy-signature", "legacy V2 signed URL: absolute expiry, no cap"))
        expires_in = d.get("expires_in")
        if isinstance(expires_in, int) and expires_in > 604800:
            hits.append(("refused-lifetime", "X-Goog-Expires over 604800 seconds (7 days)"))
        lifetime = v.lifetime_seconds if v.lifetime_seconds is not None else v.remaining_seconds
        if lifetime is not None and lifetime > policy.max_lifetime:
            hits.append((
                "long-lifetime",
                f"valid for {duration(lifetime)}, more than {duration(policy.max_lifetime)}",
            ))
    if not v.expired:
        hits.append(("live", RULES["live"][1]))
    return rate(hits, policy, RULES, CAPS)
