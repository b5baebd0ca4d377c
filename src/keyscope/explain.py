"""``keyscope.explain``: decode a credential offline into its blast radius."""

from __future__ import annotations

from datetime import UTC, datetime

from keyscope.analyze.azure.explainer import explain_azure
from keyscope.analyze.azure.sas import parse_datetime
from keyscope.analyze.policy import DEFAULT_POLICY, Policy
from keyscope.model import Explanation


def explain(
    text: str,
    now: datetime | str | None = None,
    *,
    account: str | None = None,
    keys: tuple[str, ...] = (),
    policy: Policy = DEFAULT_POLICY,
) -> list[Explanation]:
    """Explain every credential in ``text`` (a SAS URL or query, a connection string,
    or an account key with ``account``).

    ``now`` fixes the clock for reproducible output; ``keys`` are co-leaked account
    keys to check signatures against. Raises :class:`keyscope.errors.ParseError`
    with a precise message when the input is not a well-formed credential.
    """
    return explain_azure(text, resolve_now(now), account=account, keys=keys, policy=policy)


def resolve_now(now: datetime | str | None) -> datetime:
    """``None`` → the current UTC time; a string → parsed as ISO-8601."""
    if now is None:
        return datetime.now(UTC).replace(microsecond=0)
    if isinstance(now, str):
        return parse_datetime(now, "now")
    if now.tzinfo is None:
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)
