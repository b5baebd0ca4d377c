"""What an AWS credential unlocks (its ``Access``), until when, and how to revoke it."""

from __future__ import annotations

from datetime import datetime, timedelta

from keyscope.analyze.aws.keys import MAX_SESSION_SECONDS, PROVIDER, AwsKeyPair, KeyId
from keyscope.analyze.aws.presigned import SIGV4_MAX_EXPIRES, AwsPresignedUrl
from keyscope.analyze.timefmt import duration, instant, iso
from keyscope.model import (
    Access,
    Capability,
    NetworkLimits,
    Revocation,
    RevocationStep,
    Scope,
    Validity,
)

ANY_IP = "any IP address, unless an IAM or bucket policy limits aws:SourceIp"
_METHODS = {
    "GET": ("read", "download", "download the object (or list the bucket)"),
    "HEAD": ("read", "read metadata", "read the object's metadata"),
    "PUT": ("write", "upload", "upload or overwrite the object"),
    "POST": ("write", "start upload", "start a multipart upload"),
    "DELETE": ("delete", "delete", "delete the object"),
}


def pair_access(pair: AwsKeyPair, now: datetime) -> Access:
    """A key pair: every API call its principal may make, in every Region."""
    key = pair.key
    kind = "session-credentials" if key.temporary else "access-key"
    if key.temporary:
        expiry = pair.expiration
        summary = (
            _until(expiry, now)
            if expiry
            else "until the session ends (its expiry is not written nearby; STS sessions "
            "last at most 36 hours, role sessions at most 12)"
        )
    else:
        expiry = None
        summary = "no expiry: works until the key is deactivated or deleted"
    remaining = int((expiry - now).total_seconds()) if expiry else None
    validity = Validity(
        start=None,
        expiry=expiry,
        effective_expiry=expiry,
        lifetime_seconds=None,
        remaining_seconds=remaining,
        expired=remaining is not None and remaining <= 0,
        not_yet_valid=False,
        summary=summary,
    )
    return Access(
        provider=PROVIDER,
        kind=kind,
        kind_label="temporary STS key pair" if key.temporary else "long-term access key pair",
        account=key.account,
        account_note=_account_note(key),
        endpoint=None,
        cloud=None,
        emulator=False,
        services=("all",),
        scope=Scope(
            level="principal",
            description="every AWS API call its IAM principal is allowed, in every Region",
        ),
        permissions=None,
        capabilities=(),
        destructive=(),
        validity=validity,
        network=NetworkLimits(ip_range=None, protocols=("https",), summary=ANY_IP),
        revocation=key_revocation(key, now),
        details={
            "key_id": key.id,
            "key_type": key.type_label,
            "session_token_present": pair.session_token is not None,
        },
    )


def url_access(url: AwsPresignedUrl, now: datetime) -> Access:
    """A presigned URL: one request on one object (or bucket), by its signer's rights."""
    loc = url.location
    verb_class, verb, meaning = _METHODS.get(url.method, ("read", "request", "the signed request"))
    certainty = (
        "signed operation" if url.method_known else "implied; the method is signed, not shown"
    )
    caps = (Capability(letter=url.method, name=verb, meaning=f"{meaning} ({certainty})",
                       classes=(verb_class,)),)
    destructive = {"write": ("overwrite",), "delete": ("delete",)}.get(verb_class, ())
    target = _target(url)
    level = "object" if loc.key else ("bucket" if loc.bucket else "unknown")
    return Access(
        provider=PROVIDER,
        kind="presigned-url",
        kind_label=f"S3 presigned URL ({url.version})",
        account=loc.account or url.key.account,
        account_note=(
            "from the access point's host name" if loc.account else _account_note(url.key)
        ),
        endpoint=loc.endpoint,
        cloud=loc.partition,
        emulator=loc.local,
        services=(url.service,),
        scope=Scope(level=level, description=target, container=loc.bucket, path=loc.key),
        permissions=url.method,
        capabilities=caps,
        destructive=destructive,
        validity=_url_validity(url, now),
        network=NetworkLimits(
            ip_range=None,
            protocols=(loc.endpoint.split(":", 1)[0],) if loc.endpoint else ("https", "http"),
            summary=ANY_IP,
        ),
        revocation=url_revocation(url, now),
        details={
            "signature_version": url.version,
            "key_id": url.key.id,
            "key_type": url.key.type_label,
            "bucket": loc.bucket,
            "key": loc.key,
            "addressing_style": loc.style,
            "region": url.region or loc.region,
            "signed_at": iso(url.signed_at),
            "expires_in": url.expires_in,
            "signed_headers": list(url.signed_headers),
            "session_token_present": url.session_token is not None,
            "method_implied": not url.method_known,
            "parameters": sorted(url.params),
        },
    )


def _target(url: AwsPresignedUrl) -> str:
    loc = url.location
    if loc.bucket and loc.key:
        return f"object s3://{loc.bucket}/{loc.key}"
    if loc.bucket:
        return f"bucket s3://{loc.bucket}"
    if loc.host:
        return f"{loc.host}/{loc.key or ''}"
    return "an object whose URL was not found with the query"


def _url_validity(url: AwsPresignedUrl, now: datetime) -> Validity:
    expiry = url.expires_at
    effective = expiry
    notes: list[str] = []
    if url.session_token is not None or url.key.temporary:
        if url.signed_at is not None:
            bound = url.signed_at + timedelta(seconds=MAX_SESSION_SECONDS)
            effective = min(expiry, bound)
        notes.append("or sooner, when the signer's session ends")
    if url.expires_in is not None and url.expires_in > SIGV4_MAX_EXPIRES:
        notes.append("but S3 refuses an X-Amz-Expires over 7 days: the URL never worked")
    remaining = int((effective - now).total_seconds())
    lifetime = (
        int((expiry - url.signed_at).total_seconds()) if url.signed_at is not None else None
    )
    expired = remaining <= 0
    summary = ("expired " if expired else "") + _until(effective, now)
    if lifetime is not None:
        summary += f"; signed for {duration(lifetime)}"
    if notes:
        summary += " (" + "; ".join(notes) + ")"
    return Validity(
        start=url.signed_at,
        expiry=expiry,
        effective_expiry=effective,
        lifetime_seconds=lifetime,
        remaining_seconds=remaining,
        expired=expired,
        not_yet_valid=url.signed_at is not None and url.signed_at > now,
        summary=summary,
    )


def _until(at: datetime, now: datetime) -> str:
    left = int((at - now).total_seconds())
    when = f"until {instant(at)}"
    return f"{when} ({duration(left)} ago)" if left <= 0 else f"{when} ({duration(left)} left)"


def _account_note(key: KeyId) -> str:
    if key.account is None:
        return "older key id format: the account is not recoverable offline"
    return (
        "inferred from the key id (undocumented encoding; `aws sts get-access-key-info` confirms)"
    )


def key_revocation(key: KeyId, now: datetime) -> Revocation:
    """Deactivate then delete a long-term key; deny a temporary key's older sessions."""
    if not key.temporary:
        return Revocation(
            individually_revocable=True,
            summary=f"deactivate key {key.id} (reversible), then delete it",
            steps=(
                RevocationStep(
                    "Find the IAM user that owns the key",
                    f"aws iam get-access-key-last-used --access-key-id {key.id}",
                ),
                RevocationStep(
                    "Deactivate it (reversible)",
                    f"aws iam update-access-key --user-name USER --access-key-id {key.id} "
                    "--status Inactive",
                ),
                RevocationStep(
                    "Delete it once nothing legitimate uses it",
                    f"aws iam delete-access-key --user-name USER --access-key-id {key.id}",
                ),
                RevocationStep(
                    "Review what it did",
                    "aws cloudtrail lookup-events --lookup-attributes "
                    f"AttributeKey=AccessKeyId,AttributeValue={key.id}",
                ),
            ),
            side_effects="every program using this key stops working",
        )
    stamp = iso(now)
    policy = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*",'
        f'"Condition":{{"DateLessThan":{{"aws:TokenIssueTime":"{stamp}"}}}}}}]}}'
    )
    return Revocation(
        individually_revocable=False,
        summary="a temporary key cannot be revoked alone: revoke the role's older sessions "
        "(or deny the issuing user's) until it expires",
        steps=(
            RevocationStep(
                "Revoke the role's active sessions (console: IAM → Roles → Revoke active "
                "sessions, which attaches AWSRevokeOlderSessions)",
                "aws iam put-role-policy --role-name ROLE --policy-name "
                f"AWSRevokeOlderSessions --policy-document '{policy}'",
            ),
            RevocationStep(
                "Sessions from GetSessionToken/GetFederationToken: attach the same deny to the "
                "IAM user, and deactivate the long-term key that issued them",
            ),
            RevocationStep(
                "Review what it did",
                "aws cloudtrail lookup-events --lookup-attributes "
                f"AttributeKey=AccessKeyId,AttributeValue={key.id}",
            ),
        ),
        side_effects="every session of the role issued before now is denied, not only this one",
    )


def url_revocation(url: AwsPresignedUrl, now: datetime) -> Revocation:
    """A presigned URL dies with its signer: revoke the key (or session) that signed it."""
    inner = key_revocation(url.key, now)
    return Revocation(
        individually_revocable=False,
        summary="a presigned URL cannot be revoked alone: " + inner.summary
        + " (every URL it signed stops working)",
        steps=(
            *inner.steps,
            RevocationStep(
                "Limit future URLs with a bucket policy on s3:signatureAge / s3:authType "
                "(REST-QUERY-STRING)",
            ),
        ),
        side_effects=inner.side_effects,
    )


def sentence(access: Access) -> str:
    """One plain sentence: what, where, until when, how to revoke."""
    d = access.details
    acct = f"account {access.account}" if access.account else "an unknown account"
    signer = f"{str(d['key_type']).split(' (')[0]} key {d['key_id']} of {acct}"
    step = next((s.command for s in access.revocation.steps
                 if s.command and "update-access-key" in s.command), None)
    if step is None:  # a temporary signer: no command of its own
        step = "revoke the role's older sessions (AWSRevokeOlderSessions) or wait for expiry"
    revoke = f"; revoke: {step}"
    if access.kind == "presigned-url":
        region = f" in {d['region']}" if d.get("region") else ""
        how = " (implied)" if d.get("method_implied") else ""
        return (
            f"An {access.kind_label} lets anyone send {access.permissions}{how} to the "
            f"{access.scope.description}{region}, {access.validity.summary}, with the IAM "
            f"rights of its signer, {signer}, at the time of use{revoke}."
        )
    return (
        f"This AWS {access.kind_label} ({signer}) can make every API call its principal "
        f"is allowed, {access.validity.summary}{revoke}."
    )
