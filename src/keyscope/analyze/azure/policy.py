"""Azure Storage's policy rules: which apply to a credential's blast radius, after
Microsoft's SAS guidance (least privilege, short lifetime, https only).

The README documents the table; users change severities and thresholds in their
config (``keyscope.config``); :func:`keyscope.analyze.policy.rate` turns the rules
that applied into one severity.
"""

from __future__ import annotations

from keyscope.analyze.policy import DEFAULT_POLICY, Policy, rate
from keyscope.analyze.timefmt import duration
from keyscope.model import Access, Reason, Severity

# code: (default severity, what it means) — the README documents this table.
RULES: dict[str, tuple[Severity, str]] = {
    "account-key": (Severity.CRITICAL, "an account key gives full control with no expiry"),
    "write": (Severity.CRITICAL, "can create, overwrite or modify data"),
    "delete": (Severity.CRITICAL, "can delete data"),
    "account-control": (
        Severity.CRITICAL,
        "can change service settings (logging, soft delete, CORS)",
    ),
    "anti-forensics": (Severity.CRITICAL, "can erase or switch off the account's access logs"),
    "wide-read": (
        Severity.HIGH,
        "can read and list a whole account, container or share for longer than the wide-read limit",
    ),
    "account-sas": (
        Severity.MEDIUM,
        "account SAS used for sharing; prefer a service or user delegation SAS",
    ),
    "long-lifetime": (Severity.MEDIUM, "valid for longer than the maximum lifetime"),
    "hidden-lifetime": (
        Severity.MEDIUM,
        "lifetime and permissions live in a stored access policy and cannot be checked offline",
    ),
    "http-allowed": (Severity.LOW, "allows plain HTTP"),
    "live": (Severity.LOW, "a live credential grants access"),
    "expired": (Severity.LOW, "expired: no longer grants access"),
    "emulator": (Severity.INFO, "points at a local emulator or is the public development key"),
}
# These cap the final severity, whatever else applies.
CAPS = {"emulator": Severity.INFO, "expired": Severity.LOW}


def evaluate(
    access: Access, policy: Policy = DEFAULT_POLICY
) -> tuple[Severity, tuple[Reason, ...]]:
    """Rate one credential. Returns the severity and every rule that applied."""
    hits: list[tuple[str, str]] = []
    v = access.validity
    classes = {c for cap in access.capabilities for c in cap.classes}

    if access.emulator or access.kind == "public-dev-key":
        hits.append(("emulator", RULES["emulator"][1]))
    if v.expired:
        hits.append(("expired", v.summary))
    if access.kind == "account-key":
        hits.append(("account-key", RULES["account-key"][1]))
    else:
        if "write" in classes:
            names = [c.name for c in access.capabilities if "write" in c.classes]
            hits.append(("write", f"can {', '.join(names)}"))
        if "delete" in classes:
            names = [c.name for c in access.capabilities if "delete" in c.classes]
            hits.append(("delete", f"can {', '.join(names)}"))
    for code in ("account-control", "anti-forensics"):
        if code in access.destructive and access.kind != "account-key":
            hits.append((code, RULES[code][1]))

    lifetime = v.lifetime_seconds if v.lifetime_seconds is not None else v.remaining_seconds
    wide = access.scope.level in ("account", "container", "share", "directory")
    if (
        wide
        and {"read", "list"} <= classes
        and (lifetime is None or lifetime > policy.wide_read_max_lifetime)
    ):
        if lifetime is not None:
            span = f"for {duration(lifetime)}"
        elif access.kind.endswith("-sas"):  # its expiry is in a stored access policy
            span = "for as long as its stored access policy allows"
        else:  # a key: until it is rotated
            span = "with no expiry"
        hits.append(("wide-read", f"reads and lists {access.scope.description} {span}"))
    if access.kind == "account-sas" and not policy.allow_account_sas:
        hits.append(("account-sas", RULES["account-sas"][1]))
    if access.kind.endswith("-sas"):
        if v.effective_expiry is None:
            hits.append(("hidden-lifetime", RULES["hidden-lifetime"][1]))
        elif lifetime is not None and lifetime > policy.max_lifetime:
            hits.append(
                (
                    "long-lifetime",
                    f"valid for {duration(lifetime)}, more than {duration(policy.max_lifetime)}",
                )
            )
        if policy.require_https and "http" in access.network.protocols:
            hits.append(("http-allowed", "allows plain HTTP (spr=https,http or no spr)"))
    if not v.expired:
        hits.append(("live", RULES["live"][1]))

    return rate(hits, policy, RULES, CAPS)
