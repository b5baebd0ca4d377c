"""``keyscope.explain``: decode a credential offline into its blast radius (each
registered provider reads the text; see ``providers/registry.py``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from keyscope.analyze.policy import DEFAULT_POLICY, Policy
from keyscope.analyze.timefmt import parse_datetime
from keyscope.model import Explanation
from keyscope.providers.registry import explain_text

if TYPE_CHECKING:
    from keyscope.verify.transport import VerifyOptions


def explain(
    text: str,
    now: datetime | str | None = None,
    *,
    account: str | None = None,
    keys: tuple[str, ...] = (),
    policy: Policy = DEFAULT_POLICY,
    verify: VerifyOptions | None = None,
    notify: Callable[[str], None] | None = None,
) -> list[Explanation]:
    """Explain every credential in ``text`` (a SAS URL or query, a connection string,
    or an account key with ``account``).

    ``now`` fixes the clock for reproducible output; ``keys`` are co-leaked account
    keys to check signatures against. Raises :class:`keyscope.errors.ParseError`
    with a precise message when the input is not a well-formed credential.

    Offline unless ``verify`` is given: then each credential is also checked live
    with read-only requests (``notify`` is told which, before any is sent).
    """
    moment = resolve_now(now)
    explained = explain_text(text, moment, account=account, keys=keys, policy=policy)
    if verify is None:
        return [explanation for explanation, _ in explained]
    from keyscope.verify import verify_explanations

    return verify_explanations(explained, verify, now=moment, notify=notify)


def resolve_now(now: datetime | str | None) -> datetime:
    """``None`` → the current UTC time; a string → parsed as ISO-8601."""
    if now is None:
        return datetime.now(UTC).replace(microsecond=0)
    if isinstance(now, str):
        return parse_datetime(now, "now")
    if now.tzinfo is None:
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)
