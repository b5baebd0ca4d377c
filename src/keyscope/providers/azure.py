"""Azure Storage as a provider: binds ``analyze/azure/*`` (parsing, explaining,
policy rules) and ``verify/azure.py`` (probes) to the provider contract."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from keyscope.analyze.azure.access import PROVIDER
from keyscope.analyze.azure.candidates import (
    account_key_candidates,
    connection_string_candidates,
    sas_candidates,
)
from keyscope.analyze.azure.explainer import explain_found
from keyscope.analyze.azure.keys import AzureAccountKey
from keyscope.analyze.azure.policy import RULES
from keyscope.analyze.azure.reader import read_credentials
from keyscope.analyze.azure.sas import AzureSas
from keyscope.analyze.policy import Policy, RuleTable
from keyscope.model import Explanation, ProbeResult
from keyscope.providers.interface import Candidate, Provider, Rejected, ScanParser, Site

if TYPE_CHECKING:
    from keyscope.verify.transport import Request, Response

AzureCredential = AzureSas | AzureAccountKey


def _sas(site: Site) -> list[Candidate | Rejected]:
    return sas_candidates(site.value, site.now, site.policy, site.lines)


def _connection_string(site: Site) -> list[Candidate | Rejected]:
    return connection_string_candidates(site.value, site.now, site.policy)


def _account_key(site: Site) -> list[Candidate | Rejected]:
    return account_key_candidates(
        site.value, site.lines(), site.line_prefix(), site.now, site.policy
    )


class AzureStorage(Provider[AzureCredential]):
    """SAS tokens, account keys and connection strings of Azure Storage."""

    name: ClassVar[str] = PROVIDER
    credential_types: ClassVar[tuple[type, ...]] = (AzureSas, AzureAccountKey)
    parsers: ClassVar[Mapping[str, ScanParser]] = {
        "azure-sas": _sas,
        "azure-connection-string": _connection_string,
        "azure-account-key": _account_key,
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
    ) -> list[tuple[Explanation, AzureCredential]]:
        found = read_credentials(text, account)
        explanations = explain_found(found, now, account=account, keys=keys, policy=policy)
        credentials: list[AzureCredential] = [*found.sas, *found.keys]
        return list(zip(explanations, credentials, strict=True))

    def plan(
        self, credential: AzureCredential, account: str | None, deep: bool
    ) -> list[Request] | str:
        from keyscope.verify.azure import key_requests, sas_requests  # only for --verify

        if isinstance(credential, AzureSas):
            return sas_requests(credential, account, deep)
        return key_requests(credential, account, deep)

    def judge(
        self, credential: AzureCredential, request: Request, response: Response, now: datetime
    ) -> ProbeResult:
        from keyscope.verify.azure import judge

        sas = credential if isinstance(credential, AzureSas) else None
        return judge(request, response, sas=sas, now=now, emulator=credential.location.emulator)

    def guessed_account(self, credential: AzureCredential, account: str | None) -> str | None:
        # A bare key or SAS query carries no host: its account was given or read from
        # nearby text.
        loc = credential.location
        inferred = (loc.host is None and account is not None) or loc.from_context
        return (loc.account or account) if inferred else None
