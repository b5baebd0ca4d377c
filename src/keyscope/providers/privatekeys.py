"""Private keys as a provider: binds ``analyze/privatekeys/*`` (PEM, OpenSSH and PuTTY
private keys) to the provider contract. A private key has nothing to ask a service:
no live check."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from keyscope.analyze.policy import RuleTable
from keyscope.analyze.privatekeys.explainer import (
    PROVIDER,
    RULES,
    pem_candidates,
    putty_candidates,
    read_text,
)
from keyscope.analyze.privatekeys.reader import PrivateKey
from keyscope.providers.interface import (
    Candidate,
    Provider,
    Rejected,
    ScanParser,
    Site,
    TextReader,
    outside_installed_tests,
)

__all__ = ["NO_LIVE_CHECK", "PrivateKey", "PrivateKeys"]

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
    reader: ClassVar[TextReader | None] = read_text
    no_live_check: ClassVar[str] = NO_LIVE_CHECK
