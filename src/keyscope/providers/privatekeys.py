"""Private keys as a provider: binds ``analyze/privatekeys/*`` (PEM, OpenSSH and PuTTY
private keys) to the provider contract. A private key has nothing to ask a service:
no live check."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from keyscope.analyze.policy import Policy, RuleTable
from keyscope.analyze.privatekeys.explainer import (
    PROVIDER,
    RULES,
    pem_candidates,
    putty_candidates,
    read_text,
)
from keyscope.analyze.privatekeys.reader import PrivateKey
from keyscope.model import Explanation
from keyscope.providers.interface import (
    Candidate,
    Provider,
    Rejected,
    ScanParser,
    Site,
    outside_installed_tests,
)

__all__ = ["NO_LIVE_CHECK", "PrivateKey", "PrivateKeys"]

if TYPE_CHECKING:
    from keyscope.verify.transport import Request

NO_LIVE_CHECK = (
    "a private key cannot be checked live: where its public key is trusted is not known "
    "(search for its fingerprint); nothing was sent"
)


@outside_installed_tests
def _pem(site: Site) -> list[Candidate | Rejected]:
    return pem_candidates(site.value, site.lines, site.now, site.policy)


@outside_installed_tests
def _putty(site: Site) -> list[Candidate | Rejected]:
    return putty_candidates(site.value, site.now, site.policy)


class PrivateKeys(Provider[PrivateKey]):
    """PEM (PKCS#1, SEC1, DSA, PKCS#8), OpenSSH and PuTTY private keys."""

    name: ClassVar[str] = PROVIDER
    credential_types: ClassVar[tuple[type, ...]] = (PrivateKey,)
    parsers: ClassVar[Mapping[str, ScanParser]] = {
        "pem-private-key": _pem,
        "putty-private-key": _putty,
    }
    rules: ClassVar[RuleTable] = RULES

    def explain(
        self,
        text: str,
        now: datetime,
        *,
        account: str | None,
        keys: tuple[str, ...],
        policy: Policy,
    ) -> list[tuple[Explanation, PrivateKey]]:
        return read_text(text, now, policy)

    def plan(self, credential: PrivateKey, account: str | None, deep: bool) -> list[Request] | str:
        return NO_LIVE_CHECK
