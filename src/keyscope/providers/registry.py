"""The providers keyscope knows, and lookups over them.

Adding a provider is one entry in ``PROVIDERS`` (and its credential type in
``Credential``, for the type checker); ``register`` adds one at run time (a plug-in,
a test). Rule files name parsers; :func:`load_rules` refuses a parser no provider
(nor the pipeline's own ``base64`` layer) offers.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from keyscope.analyze.policy import Policy
from keyscope.errors import ParseError
from keyscope.model import Explanation, Severity
from keyscope.providers.aws import Aws, AwsCredential
from keyscope.providers.azure import AzureCredential, AzureStorage
from keyscope.providers.gcp import Gcp, GcpCredential
from keyscope.providers.interface import Provider, ScanParser
from keyscope.providers.jwt import Jwt, JwtTokens
from keyscope.providers.platforms import Platforms, PlatformToken
from keyscope.providers.privatekeys import PrivateKey, PrivateKeys

# Every parsed credential a finding may hold (``Finding.credential``).
Credential = (
    AzureCredential | AwsCredential | GcpCredential | PlatformToken | PrivateKey | Jwt
)

PROVIDERS: list[Provider[Any]] = [
    AzureStorage(), Aws(), Gcp(), Platforms(), PrivateKeys(), JwtTokens(),
]

_parsers: dict[str, ScanParser] = {}
_by_type: dict[type, Provider[Any]] = {}


def _index(provider: Provider[Any]) -> None:
    for name in provider.parsers:
        if name in _parsers:
            raise ValueError(f"provider {provider.name!r}: parser {name!r} already registered")
    _parsers.update(provider.parsers)
    for kind in provider.credential_types:
        _by_type[kind] = provider


for _provider in PROVIDERS:
    _index(_provider)


def register(provider: Provider[Any]) -> None:
    """Add a provider after the built-in ones (its parser names must be new)."""
    _index(provider)
    PROVIDERS.append(provider)


def unregister(provider: Provider[Any]) -> None:
    """Remove a provider added by :func:`register`."""
    PROVIDERS.remove(provider)
    for name in provider.parsers:
        _parsers.pop(name, None)
    for kind in provider.credential_types:
        _by_type.pop(kind, None)


def providers() -> Iterator[Provider[Any]]:
    return iter(tuple(PROVIDERS))


def parser_names() -> frozenset[str]:
    """Every parser name a rule file may use for a provider."""
    return frozenset(_parsers)


def parser(name: str) -> ScanParser | None:
    """The scan-path function of a parser name; ``None`` when no provider has it."""
    return _parsers.get(name)


def provider_of(credential: object) -> Provider[Any] | None:
    """The provider that parsed ``credential``."""
    return _by_type.get(type(credential))


def rule_codes() -> dict[str, Severity]:
    """Every provider's policy rule codes (in order) with their default severity."""
    codes: dict[str, Severity] = {}
    for provider in PROVIDERS:
        for code, (severity, _) in provider.rules.items():
            codes.setdefault(code, severity)
    return codes


def explain_text(
    text: str,
    now: datetime,
    *,
    account: str | None = None,
    keys: tuple[str, ...] = (),
    policy: Policy,
) -> list[tuple[Explanation, Credential]]:
    """Every provider's explanations of pasted text, in registry order. A provider
    that finds nothing raises ``ParseError``; when none finds anything, the first
    provider's error is raised."""
    out: list[tuple[Explanation, Credential]] = []
    errors: list[ParseError] = []
    for provider in providers():
        try:
            out.extend(provider.explain(text, now, account=account, keys=keys, policy=policy))
        except ParseError as exc:
            errors.append(exc)
    if not out and errors:
        raise errors[0]
    return out
