"""AWS's policy rules: a key pair's reach, a presigned URL's lifetime and method."""

from __future__ import annotations

from keyscope.analyze.policy import DEFAULT_POLICY, Policy, rate
from keyscope.analyze.timefmt import duration
from keyscope.model import Access, Reason, Severity

# code: (default severity, what it means) — the README documents this table.
RULES: dict[str, tuple[Severity, str]] = {
    "long-term-key": (
        Severity.CRITICAL,
        "a long-term access key acts with all its IAM user's (or root's) rights until deactivated",
    ),
    "session-credentials": (
        Severity.HIGH,
        "temporary STS credentials act with their role's or user's rights until the session ends",
    ),
    "likely-write": (Severity.HIGH, "the URL's signed headers or parameters suggest an upload"),
    "delete": (Severity.CRITICAL, "can delete data"),
    "long-lifetime": (Severity.MEDIUM, "valid for longer than the maximum lifetime"),
    "legacy-signature": (
        Severity.LOW,
        "legacy Signature Version 2: absolute expiry with no cap; "
        "buckets made after June 2020 refuse it",
    ),
    "session-token-missing": (
        Severity.LOW,
        "a temporary key without its session token nearby cannot sign requests as found",
    ),
    "refused-lifetime": (
        Severity.LOW,
        "X-Amz-Expires over 604800 seconds (7 days): S3 refuses the URL",
    ),
    "live": (Severity.LOW, "a live credential grants access"),
    "expired": (Severity.LOW, "expired: no longer grants access"),
    "emulator": (Severity.INFO, "points at a local emulator (localhost)"),
}
CAPS = {
    "emulator": Severity.INFO,
    "expired": Severity.LOW,
    "refused-lifetime": Severity.LOW,
    "session-token-missing": Severity.LOW,
}


def evaluate(
    access: Access, policy: Policy = DEFAULT_POLICY
) -> tuple[Severity, tuple[Reason, ...]]:
    """Rate one AWS credential: its severity and every rule that applied."""
    hits: list[tuple[str, str]] = []
    v = access.validity
    d = access.details
    if access.emulator:
        hits.append(("emulator", RULES["emulator"][1]))
    if v.expired:
        hits.append(("expired", v.summary))
    if access.kind == "access-key":
        hits.append(("long-term-key", RULES["long-term-key"][1]))
    elif access.kind == "session-credentials":
        hits.append(("session-credentials", RULES["session-credentials"][1]))
        if not d.get("session_token_present"):
            hits.append(("session-token-missing", RULES["session-token-missing"][1]))
    else:
        classes = {c for cap in access.capabilities for c in cap.classes}
        if "write" in classes:
            hits.append(("likely-write", f"implied method {access.permissions}"))
        if "delete" in classes:
            hits.append(("delete", "signed for DELETE"))
        if d.get("signature_version") == "SigV2":
            hits.append(("legacy-signature", RULES["legacy-signature"][1]))
        expires_in = d.get("expires_in")
        if isinstance(expires_in, int) and expires_in > 604800:
            hits.append(("refused-lifetime", RULES["refused-lifetime"][1]))
        lifetime = v.lifetime_seconds if v.lifetime_seconds is not None else v.remaining_seconds
        if lifetime is not None and lifetime > policy.max_lifetime:
            hits.append(
                (
                    "long-lifetime",
                    f"valid for {duration(lifetime)}, more than {duration(policy.max_lifetime)}",
                )
            )
    if not v.expired:
        hits.append(("live", RULES["live"][1]))
    return rate(hits, policy, RULES, CAPS)
