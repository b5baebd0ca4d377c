"""From captured values or pasted text to explained Google Cloud credentials:
service-account keys, HMAC keys, API keys and Cloud Storage signed URLs.
Documentation examples and placeholders are dropped, never reported."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime

from keyscope.analyze.fingerprint import fingerprint
from keyscope.analyze.gcp.access import (
    api_key_access,
    hmac_access,
    key_access,
    sentence,
    url_access,
)
from keyscope.analyze.gcp.credentials import (
    ACCESS_ID,
    API_KEY,
    GcpApiKey,
    GcpHmacKey,
    GcpServiceAccountKey,
    find_hmac,
    parse_key_file,
    placeholder,
)
from keyscope.analyze.gcp.policy import evaluate
from keyscope.analyze.gcp.signed import GcpSignedUrl, parse_signed
from keyscope.analyze.policy import DEFAULT_POLICY, Policy
from keyscope.analyze.textforms import join_wrapped, unescape_layers
from keyscope.errors import ParseError
from keyscope.model import Access, Explanation, SignatureCheck
from keyscope.providers.interface import Candidate, Rejected

GcpCredential = GcpServiceAccountKey | GcpHmacKey | GcpApiKey | GcpSignedUrl
_URL = re.compile(
    r"""(?i)(?:https?://[^\s"'<>`]+|[?&]?)(?:X-Goog-Algorithm|X-Goog-Credential|GoogleAccessId)"""
    r"""=[^\s"'<>`]+"""
)
_KEY_ID_FIELD = re.compile(r'(?i)\\*"private_key_id\\*"\s*:\s*\\*"(?P<id>[0-9a-f]{40})')
_NOT_SIGNED = SignatureCheck(
    "not-checked", "the key that signed it is not known: the signature is not checked offline"
)
_NO_SIGNATURE = SignatureCheck("not-checked", "a key is not a signature")


def url_candidates(value: str, now: datetime, policy: Policy = DEFAULT_POLICY) -> list[
    Candidate | Rejected
]:
    """A captured signed URL or query."""
    try:
        url = parse_signed(unescape_layers(join_wrapped(value)))
    except ParseError as exc:
        return [Rejected(str(exc))]
    reason = placeholder(url.signer) if url.key_type == "hmac" else None
    if reason or len(set(url.signature.rstrip("="))) < 10:
        return [Rejected(reason or "placeholder signature")]
    return [Candidate(explain_url(url, now, policy), url.signature, url)]


def key_candidates(value: str, context: Callable[[], str], now: datetime,
                   policy: Policy = DEFAULT_POLICY) -> list[Candidate | Rejected]:
    """A ``private_key_id``: reported with the private key and client email around it."""
    try:
        key = parse_key_file(value, context())
    except ParseError as exc:
        return [Rejected(str(exc))]
    if len(set(key.private_key)) < 40 or len(key.private_key) < 600:
        return [Rejected("placeholder private key")]
    return [Candidate(explain_key(key, policy), key.private_key, key)]


def hmac_candidates(value: str, context: Callable[[], str], now: datetime,
                    policy: Policy = DEFAULT_POLICY) -> list[Candidate | Rejected]:
    """An HMAC access id, reported only with its secret beside it."""
    reason = placeholder(value)
    if reason:
        return [Rejected(reason)]
    key = find_hmac(value, context())
    if key is None:
        return [Rejected("HMAC access id without its secret nearby")]
    reason = placeholder(key.secret)
    if reason:
        return [Rejected(reason)]
    return [Candidate(explain_hmac(key, policy), key.secret, key)]


def api_key_candidates(value: str, now: datetime, policy: Policy = DEFAULT_POLICY) -> list[
    Candidate | Rejected
]:
    """An ``AIza…`` API key."""
    if API_KEY.fullmatch(value) is None:
        return [Rejected("not an API key (AIza + 35 characters)")]
    reason = placeholder(value)
    if reason:
        return [Rejected(reason)]
    key = GcpApiKey(value)
    access = api_key_access(key)
    redacted = f"{value[:8]}…(redacted, 39 chars)"
    return [Candidate(_finish(access, policy, _NO_SIGNATURE, redacted,
                              fingerprint("gcp-api-key", value)), value, key)]


def read_text(text: str, now: datetime, policy: Policy) -> list[tuple[Explanation, GcpCredential]]:
    """Every Google Cloud credential in pasted text (``keyscope explain``)."""
    out: list[tuple[Explanation, GcpCredential]] = []
    errors: list[str] = []
    seen: set[str] = set()
    joined = unescape_layers(join_wrapped(text))
    for c in _pasted(text, joined, now, policy):
        if isinstance(c, Rejected):
            errors.append(c.reason)
        elif c.explanation.fingerprint not in seen:
            seen.add(c.explanation.fingerprint)
            out.append((c.explanation, c.credential))  # type: ignore[arg-type]
    if not out:
        raise ParseError(errors[0] if errors else "no Google Cloud key or signed URL found")
    return out


def _pasted(text: str, joined: str, now: datetime, policy: Policy) -> Iterator[
    Candidate | Rejected
]:
    for m in _URL.finditer(joined):
        yield from url_candidates(m.group(), now, policy)
    for m in _KEY_ID_FIELD.finditer(text):
        yield from key_candidates(m.group("id"), lambda: text, now, policy)
    for m in ACCESS_ID.finditer(text):
        if "credential=" not in text[max(0, m.start() - 24) : m.start()].lower():
            yield from hmac_candidates(m.group("id"), lambda: text, now, policy)
    for m in API_KEY.finditer(text):
        yield from api_key_candidates(m.group("key"), now, policy)


def explain_url(url: GcpSignedUrl, now: datetime, policy: Policy) -> Explanation:
    access = url_access(url, now)
    loc = url.location
    shown = f"{loc.endpoint}/{loc.bucket + '/' if loc.style == 'path' and loc.bucket else ''}"
    shown = (shown + (loc.object or "")) if loc.endpoint else ""
    if url.version == "V4":
        query = (f"X-Goog-Credential={url.signer}/…&X-Goog-Date={url.signed_at:%Y%m%dT%H%M%SZ}"
                 f"&X-Goog-Expires={url.expires_in}&X-Goog-Signature=")
    else:
        query = f"GoogleAccessId={url.signer}&Expires={int(url.expires_at.timestamp())}&Signature="
    redacted = f"{shown}?{query}{url.signature[:4]}…(redacted)"
    return _finish(access, policy, _NOT_SIGNED, redacted,
                   fingerprint("gcp-signed-url", url.signature), _url_notes(url))


def explain_key(key: GcpServiceAccountKey, policy: Policy) -> Explanation:
    notes = []
    if key.project_id and key.account.project and key.project_id != key.account.project:
        notes.append(f"The file's project_id ({key.project_id}) is not the client email's "
                     f"project ({key.account.project}).")
    redacted = (f"service-account key {key.key_id} of {key.account.email}: private_key "
                f"{key.private_key[:4]}…(redacted)")
    return _finish(key_access(key), policy, _NO_SIGNATURE, redacted,
                   fingerprint("gcp-service-account-key", key.private_key), notes)


def explain_hmac(key: GcpHmacKey, policy: Policy) -> Explanation:
    redacted = f"{key.access_id} / {key.secret[:4]}…(redacted, 40 chars)"
    return _finish(hmac_access(key), policy, _NO_SIGNATURE, redacted,
                   fingerprint("gcp-hmac-secret", key.secret))


def _finish(access: Access, policy: Policy, check: SignatureCheck, redacted: str,
            secret_id: str, notes: list[str] | None = None) -> Explanation:
    severity, reasons = evaluate(access, policy)
    key_id = str(access.details["key_id"])
    return Explanation(
        sentence=sentence(access),
        access=access,
        severity=severity,
        reasons=reasons,
        log_fingerprints={"key_id": key_id},
        signature=check,
        redacted=redacted,
        fingerprint=secret_id,
        notes=tuple(notes or ()),
    )


def _url_notes(url: GcpSignedUrl) -> list[str]:
    notes = [
        "Its power is the signer's rights when the URL is used: if the signer lost the "
        "right (or its key was disabled or deleted), the URL no longer works.",
        f"The HTTP method is part of the signature, not of the URL: {url.method} is implied "
        "by the signed headers.",
    ]
    if url.version == "V2":
        notes.append("A V2 signed URL carries no signing time; Expires is absolute.")
    if url.version == "V4":
        notes.append("A V4 URL is accepted from 15 minutes before X-Goog-Date.")
    if url.location.style == "no-host":
        notes.append("Only the query was found: the bucket and object are not known.")
    return notes
