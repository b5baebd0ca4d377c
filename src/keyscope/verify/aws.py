"""Read-only live checks of AWS credentials, and what AWS's answers mean.

A key pair: ``sts:GetCallerIdentity`` (the documented form POST, SigV4-signed by
``sigv4.py``) to the global STS endpoint: it reads nothing and changes nothing. No
permission is needed for it and an explicit deny cannot block it, but CloudTrail
records it in the key owner's account (event source ``sts.amazonaws.com``, with the
caller's IP address). It answers with the account,
the ARN and the user id behind the key. A presigned URL: see ``signed_urls.py``.
"""

from __future__ import annotations

from datetime import datetime

from keyscope.analyze.aws.explainer import AwsCredential
from keyscope.analyze.aws.presigned import AwsPresignedUrl
from keyscope.redact import mask
from keyscope.verify.interface import ProbeResult, probe_result
from keyscope.verify.signed_urls import SignedObject, judge_object, object_requests, xml_field
from keyscope.verify.sigv4 import sigv4_headers
from keyscope.verify.transport import Request, Response

STS = ("aws-sts", "https://sts.amazonaws.com")  # the global endpoint signs as us-east-1
STS_REGION = "us-east-1"
# The call as AWS documents it (and its SDKs send it): a form POST, read-only.
STS_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
STS_FORM = "application/x-www-form-urlencoded; charset=utf-8"
STS_PROBE = "sts:GetCallerIdentity"
STS_NOTICE = (
    "needs no permission; logged by CloudTrail in the key owner's account with your IP "
    "address"
)
_DEAD_CODES = {
    "InvalidClientTokenId": "key-unknown",
    "SignatureDoesNotMatch": "signature-rejected",
    "ExpiredToken": "expired",
    "IncompleteSignature": "signature-rejected",
}
_IDENTITY = {"Account": "account", "Arn": "arn", "UserId": "userId"}


def aws_requests(credential: AwsCredential) -> list[Request] | str:
    """The probes for a key pair (GetCallerIdentity) or a presigned URL."""
    if isinstance(credential, AwsPresignedUrl):
        return object_requests(_object(credential))
    pair = credential

    def sign(request: Request, target: str) -> dict[str, str]:
        return sigv4_headers(
            request.method,
            request.url,
            region=STS_REGION,
            service="sts",
            key_id=pair.key.id,
            secret=pair.secret,
            session_token=pair.session_token,
            headers=dict(request.headers),
            payload=request.body,
        )

    url = f"{STS[1]}/"
    return [
        Request(
            STS_PROBE,
            "POST",
            url,
            url,
            (("Content-Type", STS_FORM),),
            authorize=sign,
            endpoint=STS,
            notice=STS_NOTICE,
            body=STS_BODY.encode(),
        )
    ]


def aws_judge(
    credential: AwsCredential, request: Request, response: Response, now: datetime
) -> ProbeResult:
    """What AWS's answer to one probe means."""
    if isinstance(credential, AwsPresignedUrl):
        return judge_object(_object(credential), request, response, now)
    body = response.body
    code = xml_field(body, "Code")
    secrets = [credential.secret, *([credential.session_token] if credential.session_token else [])]
    message = xml_field(body, "Message")
    detail = mask(message, secrets)[:300] if message else None
    status = response.status
    facts: dict[str, str] = {}

    def result(outcome: str, why: str | None = detail) -> ProbeResult:
        return probe_result(request, outcome, status, code, why, facts)

    if status == 200:
        for tag, name in _IDENTITY.items():
            value = xml_field(body, tag)
            if value:
                facts[name] = value[:200]
        if "arn" not in facts:
            return result("unexpected", "an answer without the caller's ARN")
        who = f"{facts['arn']} (account {facts.get('account', '?')})"
        return result("live", f"the key belongs to {who}")
    if 300 <= status < 400:
        return result("redirect-refused", "redirect not followed")
    if code in _DEAD_CODES:
        return result(_DEAD_CODES[code])
    if status == 403:
        return result("denied")
    return result("unexpected")


def _object(url: AwsPresignedUrl) -> SignedObject:
    secrets = (url.signature, *([url.session_token] if url.session_token else []))
    return SignedObject(
        service="S3",
        url=url.url,
        method=url.method,
        method_known=url.method_known,
        signed_headers=url.signed_headers,
        expires_at=url.expires_at,
        not_before=None,
        secrets=secrets,
    )

