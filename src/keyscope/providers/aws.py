"""AWS as a provider: binds ``analyze/aws/*`` (key pairs, S3 presigned URLs, their
policy rules) and ``verify/aws.py`` (GetCallerIdentity, presigned URL probes) to the
provider contract."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from keyscope.analyze.aws.explainer import (
    AwsCredential,
    pair_candidates,
    read_text,
    url_candidates,
)
from keyscope.analyze.aws.keys import PROVIDER, AwsKeyPair
from keyscope.analyze.aws.policy import RULES
from keyscope.analyze.aws.presigned import AwsPresignedUrl
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

__all__ = ["Aws", "AwsCredential"]

if TYPE_CHECKING:
    from keyscope.verify.transport import Request, Response

def _presigned(site: Site) -> list[Candidate | Rejected]:
    return url_candidates(site.value, site.now, site.policy)


def _key_pair(site: Site) -> list[Candidate | Rejected]:
    return pair_candidates(site.value, site.lines, site.line_prefix(), site.now, site.policy)


class Aws(Provider[AwsCredential]):
    """AWS access key pairs, session credentials and S3 presigned URLs."""

    name: ClassVar[str] = PROVIDER
    credential_types: ClassVar[tuple[type, ...]] = (AwsKeyPair, AwsPresignedUrl)
    parsers: ClassVar[Mapping[str, ScanParser]] = {
        "aws-presigned-url": _presigned,
        "aws-key-pair": _key_pair,
    }
    rules: ClassVar[RuleTable] = RULES
    reader: ClassVar[TextReader | None] = read_text

    def plan(
        self, credential: AwsCredential, account: str | None, deep: bool
    ) -> list[Request] | str:
        from keyscope.verify.aws import aws_requests  # only for --verify

        return aws_requests(credential)

    def judge(
        self, credential: AwsCredential, request: Request, response: Response, now: datetime
    ) -> ProbeResult:
        from keyscope.verify.aws import aws_judge

        return aws_judge(credential, request, response, now)
