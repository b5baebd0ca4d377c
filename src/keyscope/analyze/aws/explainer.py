"""From captured values or pasted text to explained AWS credentials: key pairs (a key
id with the secret beside it) and presigned URLs. Documentation examples and
placeholders are dropped, never reported."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from keyscope.analyze.aws.access import pair_access, sentence, url_access
from keyscope.analyze.aws.keys import KEY_ID, AwsKeyPair, find_pair, parse_key_id, placeholder
from keyscope.analyze.aws.policy import evaluate
from keyscope.analyze.aws.presigned import AwsPresignedUrl, parse_presigned
from keyscope.analyze.fingerprint import fingerprint
from keyscope.analyze.policy import DEFAULT_POLICY, Policy
from keyscope.analyze.textforms import join_wrapped, unescape_layers
from keyscope.errors import ParseError
from keyscope.model import Access, Explanation, SignatureCheck
from keyscope.providers.interface import Candidate, Rejected

AwsCredential = AwsKeyPair | AwsPresignedUrl
# A presigned URL in pasted text: from its scheme (or its query) over URL characters.
_URL = re.compile(
    r"""(?i)(?:https?://[^\s"'<>`]+|[?&]?)(?:X-Amz-Algorithm|X-Amz-Credential|AWSAccessKeyId)"""
    r"""=[^\s"'<>`]+"""
)
_SIGNER = re.compile(r"(?i)(?:credential|awsaccesskeyid)(?:=|%3d|%253d|\\u003d)\Z")
_NOT_SIGNED = SignatureCheck(
    "not-checked", "the secret that signed it is not known: the signature is not checked offline"
)


def url_candidates(value: str, now: datetime, policy: Policy = DEFAULT_POLICY) -> list[
    Candidate | Rejected
]:
    """A captured presigned URL or query."""
    try:
        url = parse_presigned(unescape_layers(join_wrapped(value)))
    except ParseError as exc:
        return [Rejected(str(exc))]
    reason = placeholder(url.key.id, None) or _placeholder_signature(url.signature)
    if reason:
        return [Rejected(reason)]
    explanation = explain_url(url, now, policy)
    return [Candidate(explanation, url.signature, url)]


def pair_candidates(
    value: str,
    context: Callable[[], str],
    prefix: str,
    now: datetime,
    policy: Policy = DEFAULT_POLICY,
) -> list[Candidate | Rejected]:
    """A key id, reported only with the secret found beside it (a lone key id is an
    identifier, not a usable credential). ``prefix``: the text before it on its line."""
    if _SIGNER.search(prefix[-24:]):
        return [Rejected("the signer's key id of a presigned URL")]
    try:
        key = parse_key_id(value)
    except ParseError as exc:
        return [Rejected(str(exc))]
    reason = placeholder(key.id, None)
    if reason:
        return [Rejected(reason)]
    pair = find_pair(key, context())
    if pair is None:
        return [Rejected("AWS key id without its secret nearby")]
    reason = placeholder(key.id, pair.secret)
    if reason:
        return [Rejected(reason)]
    return [Candidate(explain_pair(pair, now, policy), pair.secret, pair)]


def read_text(text: str, now: datetime, policy: Policy) -> list[tuple[Explanation, AwsCredential]]:
    """Every presigned URL and key pair in pasted text (``keyscope explain``)."""
    out: list[tuple[Explanation, AwsCredential]] = []
    errors: list[str] = []
    seen: set[str] = set()
    joined = unescape_layers(join_wrapped(text))
    for m in _URL.finditer(joined):
        for c in url_candidates(m.group(), now, policy):
            if isinstance(c, Rejected):
                errors.append(c.reason)
            elif c.explanation.fingerprint not in seen:
                seen.add(c.explanation.fingerprint)
                out.append((c.explanation, c.credential))  # type: ignore[arg-type]
    for m in KEY_ID.finditer(text):  # pairs sit on separate lines: not joined
        prefix = text[max(0, m.start() - 24) : m.start()]
        for c in pair_candidates(m.group("id"), lambda: text, prefix, now, policy):
            if isinstance(c, Rejected):
                errors.append(c.reason)
            elif c.explanation.fingerprint not in seen:
                seen.add(c.explanation.fingerprint)
                out.append((c.explanation, c.credential))  # type: ignore[arg-type]
    if not out:
        raise ParseError(errors[0] if errors else "no AWS key pair or presigned URL found")
    return out


def explain_url(url: AwsPresignedUrl, now: datetime, policy: Policy) -> Explanation:
    access = url_access(url, now)
    loc = url.location
    shown = f"{loc.endpoint}/{(loc.key or '') if loc.style != 'path' else ''}"
    if loc.style == "path":
        shown = f"{loc.endpoint}/{loc.bucket or ''}/{loc.key or ''}"
    if url.version == "SigV4":
        query = (
            f"X-Amz-Credential={url.key.id}/…&X-Amz-Date="
            f"{url.signed_at:%Y%m%dT%H%M%SZ}&X-Amz-Expires={url.expires_in}"
        ) if url.signed_at else ""
        sig = f"X-Amz-Signature={url.signature[:4]}…(redacted)"
    else:
        query = f"AWSAccessKeyId={url.key.id}&Expires={int(url.expires_at.timestamp())}"
        sig = f"Signature={url.signature[:4]}…(redacted)"
    token = "&X-Amz-Security-Token=…(redacted)" if url.session_token else ""
    redacted = f"{shown if loc.endpoint else ''}?{query}{token}&{sig}"
    notes = _url_notes(url)
    return _finish(
        access, policy, _NOT_SIGNED, redacted, notes, fingerprint("aws-presigned", url.signature)
    )


def explain_pair(pair: AwsKeyPair, now: datetime, policy: Policy) -> Explanation:
    access = pair_access(pair, now)
    token = " + session token (redacted)" if pair.session_token else ""
    redacted = f"{pair.key.id} / {pair.secret[:4]}…(redacted, 40 chars){token}"
    notes: list[str] = []
    if pair.key.temporary and pair.session_token is None:
        notes.append("No session token was found near this temporary key: it may be elsewhere.")
    check = SignatureCheck("not-checked", "a key pair is not a signature")
    secret_id = fingerprint("aws-secret-key", pair.secret)
    return _finish(access, policy, check, redacted, notes, secret_id)


def _finish(
    access: Access,
    policy: Policy,
    check: SignatureCheck,
    redacted: str,
    notes: list[str],
    secret_id: str,
) -> Explanation:
    severity, reasons = evaluate(access, policy)
    key_id = str(access.details["key_id"])
    return Explanation(
        sentence=sentence(access),
        access=access,
        severity=severity,
        reasons=reasons,
        log_fingerprints={
            "AccessKeyId": key_id,
            "cloudtrail": "aws cloudtrail lookup-events --lookup-attributes "
            f"AttributeKey=AccessKeyId,AttributeValue={key_id}",
        },
        signature=check,
        redacted=redacted,
        fingerprint=secret_id,
        notes=tuple(notes),
    )


def _url_notes(url: AwsPresignedUrl) -> list[str]:
    notes = [
        "Its power is the signer's IAM rights when the URL is used: if the signer lost "
        "the right (or the key was deactivated), the URL no longer works."
    ]
    if url.version == "SigV2":
        notes.append("Signature Version 2 carries no signing date or Region; Expires is absolute.")
    if url.session_token is not None or url.key.temporary:
        notes.append(
            "Signed with temporary credentials: the URL stops working when their session "
            "ends, whatever its own expiry (at most 36 hours after the session was issued)."
        )
    if not url.method_known:
        notes.append(
            f"The HTTP method is part of the signature, not of the URL: {url.method} is implied "
            "by the signed headers and parameters."
        )
    if url.location.style == "no-host":
        notes.append("Only the query was found: the bucket and object are not known.")
    return notes


def _placeholder_signature(signature: str) -> str | None:
    if len(set(signature.rstrip("="))) < 10:
        return "placeholder signature"
    return None
