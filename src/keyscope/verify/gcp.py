"""Read-only live checks of Google Cloud credentials, and what the answers mean.

A service-account key: Google's anonymous public-key lookup
(``GET https://www.googleapis.com/robot/v1/metadata/x509/EMAIL``), which lists the
certificates of the account's keys by key id. The leaked key is live when its
``private_key_id`` is listed and the certificate's public key is the leaked private
key's; a deleted key is no longer listed. No token is exchanged: nothing reaches the
key's project. A signed URL: see ``signed_urls.py``. HMAC keys and API keys have no
check that stays off the owner's project, so none is sent.
"""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import quote

from keyscope.analyze.gcp.credentials import GcpHmacKey, GcpServiceAccountKey
from keyscope.analyze.gcp.explainer import GcpCredential
from keyscope.analyze.gcp.signed import V4_CLOCK_SKEW, GcpSignedUrl
from keyscope.verify.interface import ProbeResult, probe_result
from keyscope.verify.rsakeys import certificate_public, private_key_public
from keyscope.verify.signed_urls import SignedObject, judge_object, object_requests
from keyscope.verify.transport import Request, Response

CERTS = ("gcp-certs", "https://www.googleapis.com")
CERTS_PATH = "/robot/v1/metadata/x509/"
CERTS_PROBE = "public-key lookup (anonymous)"
CERTS_NOTICE = "anonymous; Google's public certificate list, nothing reaches the key's project"
NO_HMAC_CHECK = (
    "keyscope sends no request for an HMAC key: any check is a request signed with it to "
    "the owner's Cloud Storage, a data access on their side"
)
NO_API_KEY_CHECK = (
    "keyscope sends no request for an API key: Google documents no call that proves a key "
    "without using one of the project's APIs (billed and logged to that project)"
)

def gcp_requests(credential: GcpCredential) -> list[Request] | str:
    """The probes for one Google Cloud credential; a string says why none is sent."""
    if isinstance(credential, GcpSignedUrl):
        return object_requests(_object(credential))
    if isinstance(credential, GcpServiceAccountKey):
        email = credential.account.email
        url = f"{CERTS[1]}{CERTS_PATH}{quote(email, safe='@')}"
        return [Request(CERTS_PROBE, "GET", url, url, endpoint=CERTS, notice=CERTS_NOTICE)]
    if isinstance(credential, GcpHmacKey):
        return NO_HMAC_CHECK
    return NO_API_KEY_CHECK


def gcp_judge(
    credential: GcpCredential, request: Request, response: Response, now: datetime
) -> ProbeResult:
    """What Google's answer to one probe means."""
    if isinstance(credential, GcpSignedUrl):
        return judge_object(_object(credential), request, response, now)
    if not isinstance(credential, GcpServiceAccountKey):
        raise TypeError(f"no probe is planned for {type(credential).__name__}")
    status = response.status
    facts: dict[str, str] = {}

    def result(outcome: str, why: str | None) -> ProbeResult:
        return probe_result(request, outcome, status, None, why, facts)

    if status == 404:
        return result("key-unknown", "the service account does not exist (deleted)")
    if 300 <= status < 400:
        return result("redirect-refused", "redirect not followed")
    if status != 200:
        return result("unexpected", None)
    try:
        listed = json.loads(response.body)
    except ValueError:
        listed = None
    if not isinstance(listed, dict):
        return result("unexpected", "the answer is not a JSON object of certificates")
    facts["publishedKeys"] = str(len(listed))
    cert = listed.get(credential.key_id)
    if not isinstance(cert, str):
        return result(
            "key-unknown",
            f"the key id is not among the account's {len(listed)} published certificate(s): "
            "the key was deleted (a disabled key may be missing too: unconfirmed)",
        )
    published = certificate_public(cert)
    leaked = private_key_public(credential.private_key)
    if published is None or leaked is None:
        return result("unexpected", "a certificate or the leaked private key is not RSA DER")
    if published != leaked:
        return result("key-mismatch", None)
    return result(
        "live", "the key id is published and its certificate matches the leaked private key"
    )


def _object(url: GcpSignedUrl) -> SignedObject:
    return SignedObject(
        service="Cloud Storage",
        url=url.url,
        method=url.method,
        method_known=False,  # a Cloud Storage URL never names its method
        signed_headers=url.signed_headers,
        expires_at=url.expires_at,
        not_before=url.signed_at - V4_CLOCK_SKEW if url.signed_at else None,
        secrets=(url.signature,),
    )
