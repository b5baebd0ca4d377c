"""What a live check returns: one result per request sent, one verdict per credential."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyscope.model import ProbeResult, Verification

if TYPE_CHECKING:
    from keyscope.verify.transport import Request

__all__ = [
    "AUTHENTICATED",
    "DEAD",
    "RETRY",
    "STATUSES",
    "ProbeResult",
    "Verification",
    "probe_result",
]

# Every status a probe or a credential can end in, with what it means for the owner.
STATUSES: dict[str, str] = {
    "live": "the service accepted the credential",
    "expired": "the service refused it: outside its validity window (expired)",
    "not-yet-valid": "the service refused it: its start time is still in the future",
    "signature-rejected": (
        "the service refused the signature: the key was rotated, or the token was altered "
        "or used on another resource"
    ),
    "policy-or-signature-rejected": (
        "the service refused it: its stored access policy was removed or changed, the key was "
        "rotated, or the token was altered"
    ),
    "permission-mismatch": (
        "the signature is valid, but its permissions do not allow this request"
    ),
    "resource-type-mismatch": (
        "the signature is valid, but its resource types (srt) do not allow this request"
    ),
    "service-mismatch": "the signature is valid, but not for this service (ss)",
    "protocol-mismatch": "the signature is valid, but only over HTTPS (spr=https)",
    "source-ip-mismatch": "the signature is valid, but only from other IP addresses (sip)",
    "key-auth-disabled": (
        "the account refuses key-based authorization (shared key and SAS signed with a key): "
        "not usable now, but the key still exists"
    ),
    "account-disabled": "the storage account is disabled",
    "account-not-found": (
        "the account's host name no longer resolves: the account is gone, and anyone could "
        "register the name again and serve content where this URL points"
    ),
    "method-or-signature-rejected": (
        "the service refused the signature for a read (GET, then HEAD): the key was rotated "
        "or the URL altered, or the URL was signed for another method (an upload or a "
        "delete), which keyscope never sends"
    ),
    "key-unknown": (
        "the service does not know the key: deleted, deactivated, or never issued"
    ),
    "key-mismatch": (
        "the key id is the account's, but the leaked private key is not the one published "
        "for it: altered or forged"
    ),
    "bucket-not-found": (
        "the bucket no longer exists: the URL opens nothing, and anyone could create a "
        "bucket of that name and serve content where it points"
    ),
    "not-found": (
        "the object or its bucket does not exist; the answer does not say whether the "
        "signature was accepted"
    ),
    "denied": "the service refused the request (firewall, network rules or access control)",
    "unreachable": "no answer: connection refused, DNS failure or timeout",
    "redirect-refused": "the service answered with a redirect, which keyscope does not follow",
    "refused-by-keyscope": (
        "not sent: a safety rule of keyscope forbids it (its destination, the per-host cap, "
        "or an audit log that cannot be written)"
    ),
    "not-verifiable": "keyscope cannot tell where to send a probe for this credential",
    "unexpected": "an answer keyscope cannot interpret",
}
# Statuses that prove the signature (and so the key or policy behind it) is still accepted.
AUTHENTICATED = frozenset(
    {
        "live",
        "permission-mismatch",
        "resource-type-mismatch",
        "service-mismatch",
        "protocol-mismatch",
        "source-ip-mismatch",
    }
)
# Statuses that prove the credential no longer opens anything as it stands.
DEAD = frozenset(
    {
        "expired",
        "signature-rejected",
        "policy-or-signature-rejected",
        "account-disabled",
        "key-unknown",
        "key-mismatch",
        "bucket-not-found",
    }
)
# Statuses after which a planned fallback probe is sent (another signed method).
RETRY = frozenset({"method-or-signature-rejected"})


def probe_result(
    request: Request,
    outcome: str,
    http_status: int | None,
    code: str | None,
    detail: str | None,
    facts: dict[str, str],
) -> ProbeResult:
    """One probe's result, named and shown as its request was."""
    return ProbeResult(
        request.probe, request.method, request.shown_url, outcome, http_status, code, detail, facts
    )
