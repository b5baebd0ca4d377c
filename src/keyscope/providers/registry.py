"""The providers keyscope knows, and lookups over them.

Adding a provider is one entry in ``PROVIDERS`` (and its credential type in
``Credential``, for the type checker); ``register`` adds one at run time (a plug-in,
a test). Rule files name parsers; :func:`load_rules` refuses a parser no provider
(nor the pipeline's own ``base64`` layer) offers.

A built-in provider is a ``Lazy`` entry: its module, and the analyzers it binds, are
imported when a candidate first needs one of its parsers (or when every provider is
asked: ``explain``, ``[severity]`` settings), so a scan that meets no AWS shape never
loads AWS.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from keyscope.analyze.policy import Policy
from keyscope.errors import ParseError
from keyscope.model import Explanation, Severity
from keyscope.providers.interface import Provider, ScanParser

if TYPE_CHECKING:
    from keyscope.providers.aws import AwsCredential
    from keyscope.providers.azure import AzureCredential
    from keyscope.providers.gcp import GcpCredential
    from keyscope.providers.jwt import Jwt
    from keyscope.providers.platforms import PlatformToken
    from keyscope.providers.privatekeys import PrivateKey

    # Every parsed credential a finding may hold (``Finding.credential``).
    Credential: TypeAlias = (
        AzureCredential | AwsCredential | GcpCredential | PlatformToken | PrivateKey | Jwt
    )
else:
    Credential = object  # at run time a name to import; the union is for the type checker


@dataclass
class Lazy:
    """A provider named by ``module:Class``, with the parser names it offers (a test
    checks that they agree with the class's own)."""

    target: str
    parsers: tuple[str, ...]
    _loaded: Provider[Any] | None = field(default=None, repr=False)

    def load(self) -> Provider[Any]:
        if self._loaded is None:
            module, _, name = self.target.partition(":")
            self._loaded = getattr(importlib.import_module(module), name)()
        return self._loaded


PROVIDERS: list[Provider[Any] | Lazy] = [
    Lazy(
        "keyscope.providers.azure:AzureStorage",
        ("azure-sas", "azure-connection-string", "azure-account-key"),
    ),
    Lazy("keyscope.providers.aws:Aws", ("aws-presigned-url", "aws-key-pair")),
    Lazy(
        "keyscope.providers.gcp:Gcp",
        ("gcp-signed-url", "gcp-service-account-key", "gcp-hmac-key", "gcp-api-key"),
    ),
    Lazy(
        "keyscope.providers.platforms:Platforms",
        ("platform-token", "chat-webhook", "wandb-api-key", "kaggle-api-key"),
    ),
    Lazy("keyscope.providers.privatekeys:PrivateKeys", ("pem-private-key", "putty-private-key")),
    Lazy("keyscope.providers.jwt:JwtTokens", ("jwt",)),
]

_owners: dict[str, Provider[Any] | Lazy] = {}  # parser name → the entry that offers it


def _names(entry: Provider[Any] | Lazy) -> tuple[str, ...]:
    return entry.parsers if isinstance(entry, Lazy) else tuple(entry.parsers)


def _loaded(entry: Provider[Any] | Lazy) -> Provider[Any]:
    return entry.load() if isinstance(entry, Lazy) else entry


def _index(entry: Provider[Any] | Lazy) -> None:
    for name in _names(entry):
        if name in _owners:
            raise ValueError(f"{entry!r}: parser {name!r} already registered")
    _owners.update(dict.fromkeys(_names(entry), entry))


for _entry in PROVIDERS:
    _index(_entry)


def register(provider: Provider[Any]) -> None:
    """Add a provider after the built-in ones (its parser names must be new)."""
    _index(provider)
    PROVIDERS.append(provider)


def unregister(provider: Provider[Any]) -> None:
    """Remove a provider added by :func:`register`."""
    PROVIDERS.remove(provider)
    for name in provider.parsers:
        _owners.pop(name, None)


def providers() -> Iterator[Provider[Any]]:
    """Every provider, in registry order (imports the lazy ones)."""
    return iter([_loaded(entry) for entry in PROVIDERS])


def parser_names() -> frozenset[str]:
    """Every parser name a rule file may use for a provider."""
    return frozenset(_owners)


def parser(name: str) -> ScanParser | None:
    """The scan-path function of a parser name; ``None`` when no provider has it."""
    entry = _owners.get(name)
    return None if entry is None else _loaded(entry).parsers[name]


def provider_of(credential: object) -> Provider[Any] | None:
    """The provider that parsed ``credential`` (a credential unpickled from a worker
    may come from a provider this process has not loaded: then all are)."""
    loaded = [e for e in PROVIDERS if not isinstance(e, Lazy) or e._loaded is not None]
    for entries in (loaded, PROVIDERS):
        for entry in entries:
            provider = _loaded(entry)
            if isinstance(credential, provider.credential_types):
                return provider
    return None


def rule_codes() -> dict[str, Severity]:
    """Every provider's policy rule codes (in order) with their default severity."""
    codes: dict[str, Severity] = {}
    for provider in providers():
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
