"""Google Cloud as a provider: binds ``analyze/gcp/*`` (service-account keys, HMAC
keys, API keys, Cloud Storage signed URLs, their policy rules) to the provider
contract, and ``verify/gcp.py`` (the public-key lookup, signed URL probes)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from keyscope.analyze.gcp.credentials import (
    PROVIDER,
    GcpApiKey,
    GcpHmacKey,
    GcpServiceAccountKey,
)
from keyscope.analyze.gcp.explainer import (
    GcpCredential,
    api_key_candidates,
    hmac_candidates,
    key_candidates,
    read_text,
    url_candidates,
)
from keyscope.analyze.gcp.policy import RULES
from keyscope.analyze.gcp.signed import GcpSignedUrl
from keyscope.analyze.policy import RuleTable
from keyscope.model import ProbeResult
from keyscope.providers.interface import (
    Candidate,
    Provider,
    Rejected,
    ScanParser,
    Site,
    TextReader,
)

__all__ = ["Gcp", "GcpCredential"]

if TYPE_CHECKING:
    from keyscope.verify.transport import Request, Response

def _signed(site: Site) -> list[Candidate | Rejected]:
    return url_candidates(site.value, site.now, site.policy)


def _key(site: Site) -> list[Candidate | Rejected]:
    return key_candidates(site.value, site.lines, site.now, site.policy)


def _hmac(site: Site) -> list[Candidate | Rejected]:
    if "credential=" in site.line_prefix()[-24:].lower():
        return [Rejected("the signer of a signed URL")]
    return hmac_candidates(site.value, site.lines, site.now, site.policy)


def _api_key(site: Site) -> list[Candidate | Rejected]:
    return api_key_candidates(site.value, site.now, site.policy)


class Gcp(Provider[GcpCredential]):
    """Google Cloud service-account keys, HMAC keys, API keys and GCS signed URLs."""

    name: ClassVar[str] = PROVIDER
    credential_types: ClassVar[tuple[type, ...]] = (
        GcpServiceAccountKey, GcpHmacKey, GcpApiKey, GcpSignedUrl,
    )
    parsers: ClassVar[Mapping[str, ScanParser]] = {
        "gcp-signed-url": _signed,
        "gcp-service-account-key": _key,
        "gcp-hmac-key": _hmac,
        "gcp-api-key": _api_key,
    }
    rules: ClassVar[RuleTable] = RULES
    reader: ClassVar[TextReader | None] = read_text

    def plan(
        self, credential: GcpCredential, account: str | None, deep: bool
    ) -> list[Request] | str:
        from keyscope.verify.gcp import gcp_requests  # only for --verify

        return gcp_requests(credential)

    def judge(
        self, credential: GcpCredential, request: Request, response: Response, now: datetime
    ) -> ProbeResult:
        from keyscope.verify.gcp import gcp_judge

        return gcp_judge(credential, request, response, now)
