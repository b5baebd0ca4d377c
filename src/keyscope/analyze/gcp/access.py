"""What a Google Cloud credential unlocks (its ``Access``), until when, and how to
revoke it with ``gcloud``."""

from __future__ import annotations

from datetime import datetime

from keyscope.analyze.gcp.credentials import (
    PROVIDER,
    GcpApiKey,
    GcpHmacKey,
    GcpServiceAccountKey,
    ServiceAccount,
)
from keyscope.analyze.gcp.signed import V4_CLOCK_SKEW, V4_MAX_EXPIRES, GcpSignedUrl
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

ANY_IP = "any IP address, unless VPC Service Controls or an IAM condition limit it"
_METHODS = {
    "GET": ("read", "download", "download the object (or list the bucket)"),
    "PUT": ("write", "upload", "upload or overwrite the object"),
    "POST": ("write", "start upload", "start a resumable upload"),
    "DELETE": ("delete", "delete", "delete the object"),
}
_NO_EXPIRY = Validity(
    start=None, expiry=None, effective_expiry=None, lifetime_seconds=None,
    remaining_seconds=None, expired=False, not_yet_valid=False,
    summary="no expiry: works until the key is disabled or deleted",
)


def _project_note(account: ServiceAccount) -> str:
    if account.project is None:
        return "the service-account email names no project"
    what = "project number" if account.project_is_number else "project ID"
    return f"{what} from the client email ({account.kind} service account)"


def _access(kind: str, label: str, project: str | None, note: str, scope: Scope,
            revocation: Revocation, details: dict[str, object],
            services: tuple[str, ...] = ("all",)) -> Access:
    return Access(
        provider=PROVIDER, kind=kind, kind_label=label, account=project, account_note=note,
        endpoint=None, cloud=None, emulator=False, services=services, scope=scope,
        permissions=None, capabilities=(), destructive=(), validity=_NO_EXPIRY,
        network=NetworkLimits(ip_range=None, protocols=("https",), summary=ANY_IP),
        revocation=revocation, details=details,
    )


def key_access(key: GcpServiceAccountKey) -> Access:
    """A service-account key: every API call the account's IAM roles allow."""
    acct = key.account
    return _access(
        "service-account-key", "service-account key (JSON)",
        acct.project or key.project_id, _project_note(acct),
        Scope(level="principal", description=f"every Google Cloud API call {acct.email} "
              "is allowed by its IAM roles, in any project that grants it a role"),
        key_revocation(key.key_id, acct.email),
        {"key_id": key.key_id, "client_email": acct.email, "project_id": key.project_id,
         "client_id": key.client_id, "account_kind": acct.kind},
    )


def hmac_access(key: GcpHmacKey) -> Access:
    """An HMAC key: Cloud Storage XML API calls as its service account (or user)."""
    owner = "a service account" if key.service_account else "a user account"
    return _access(
        "hmac-key", "Cloud Storage HMAC key", None,
        "an HMAC access id does not name its project (`gcloud storage hmac describe` does)",
        Scope(level="principal", description=f"every Cloud Storage request {owner} is "
              "allowed, through the XML API (also S3-compatible tools)"),
        hmac_revocation(key.access_id),
        {"key_id": key.access_id, "owner": owner},
        services=("storage",),
    )


def api_key_access(key: GcpApiKey) -> Access:  # the key itself is never written here
    """An API key: identifies and bills a project; grants no IAM role by itself."""
    return _access(
        "api-key", "API key", None, "an API key does not show its project offline",
        Scope(level="project", description="calls to the APIs the key is not restricted "
              "from, billed to its project (it carries no IAM identity: no Cloud Storage "
              "data access by itself)"),
        Revocation(
            individually_revocable=True,
            summary="restrict the key to the APIs and referrers that need it, or delete it",
            steps=(
                RevocationStep("Find its project and id from the leaked key string",
                               "gcloud services api-keys lookup LEAKED_KEY"),
                RevocationStep("Restrict or delete it",
                               "gcloud services api-keys delete KEY_ID --project=PROJECT"),
            ),
            side_effects="every app embedding the key stops working",
        ),
        {"key_id": key.key[:8] + "…"},
    )


def url_access(url: GcpSignedUrl, now: datetime) -> Access:
    """A signed URL: one request on one object, by its signer's rights at use time."""
    loc = url.location
    verb_class, verb, meaning = _METHODS.get(url.method, ("read", "request", "the request"))
    caps = (Capability(letter=url.method, name=verb,
                       meaning=f"{meaning} (implied; the method is signed, not shown)",
                       classes=(verb_class,)),)
    destructive = {"write": ("overwrite",), "delete": ("delete",)}.get(verb_class, ())
    if loc.bucket and loc.object:
        target = f"object gs://{loc.bucket}/{loc.object}"
    elif loc.bucket:
        target = f"bucket gs://{loc.bucket}"
    elif loc.host:
        target = f"{loc.host}/{loc.object or ''}"
    else:
        target = "an object whose URL was not found with the query"
    project = url.account.project if url.account else None
    return Access(
        provider=PROVIDER,
        kind="signed-url",
        kind_label=f"Cloud Storage signed URL ({url.version}, "
        f"{'HMAC key' if url.key_type == 'hmac' else 'service-account key'})",
        account=project,
        account_note=_project_note(url.account) if url.account else
        "an HMAC access id does not name its project",
        endpoint=loc.endpoint,
        cloud=None,
        emulator=loc.local,
        services=("storage",),
        scope=Scope(level="object" if loc.object else ("bucket" if loc.bucket else "unknown"),
                    description=target, container=loc.bucket, path=loc.object),
        permissions=url.method,
        capabilities=caps,
        destructive=destructive,
        validity=_url_validity(url, now),
        network=NetworkLimits(
            ip_range=None,
            protocols=(loc.endpoint.split(":", 1)[0],) if loc.endpoint else ("https", "http"),
            summary=ANY_IP,
        ),
        revocation=url_revocation(url),
        details={
            "signature_version": url.version,
            "key_type": url.key_type,
            "key_id": url.signer,
            "client_email": url.account.email if url.account else None,
            "bucket": loc.bucket,
            "object": loc.object,
            "addressing_style": loc.style,
            "signed_at": iso(url.signed_at),
            "expires_in": url.expires_in,
            "signed_headers": list(url.signed_headers),
            "method_implied": True,
            "parameters": sorted(url.params),
        },
    )


def _url_validity(url: GcpSignedUrl, now: datetime) -> Validity:
    expiry = url.expires_at
    remaining = int((expiry - now).total_seconds())
    lifetime = int((expiry - url.signed_at).total_seconds()) if url.signed_at else None
    expired = remaining <= 0
    summary = ("expired " if expired else "") + _until(expiry, now)
    if lifetime is not None:
        summary += f"; signed for {duration(lifetime)}"
    if url.expires_in is not None and url.expires_in > V4_MAX_EXPIRES:
        summary += " (but Cloud Storage refuses an X-Goog-Expires over 7 days: it never worked)"
    start = url.signed_at - V4_CLOCK_SKEW if url.signed_at else None
    return Validity(
        start=start, expiry=expiry, effective_expiry=expiry, lifetime_seconds=lifetime,
        remaining_seconds=remaining, expired=expired,
        not_yet_valid=start is not None and start > now, summary=summary,
    )


def _until(at: datetime, now: datetime) -> str:
    left = int((at - now).total_seconds())
    when = f"until {instant(at)}"
    return f"{when} ({duration(left)} ago)" if left <= 0 else f"{when} ({duration(left)} left)"


def key_revocation(key_id: str, email: str) -> Revocation:
    """Disable (reversible), then delete, a service-account key."""
    return Revocation(
        individually_revocable=True,
        summary=f"disable key {key_id} of {email} (reversible), then delete it",
        steps=(
            RevocationStep("Disable it (reversible)",
                           f"gcloud iam service-accounts keys disable {key_id} "
                           f"--iam-account={email}"),
            RevocationStep("Delete it once nothing legitimate uses it",
                           f"gcloud iam service-accounts keys delete {key_id} "
                           f"--iam-account={email}"),
            RevocationStep("Review what it did (Cloud Audit Logs)",
                           "gcloud logging read 'protoPayload.authenticationInfo."
                           f"serviceAccountKeyName:\"{key_id}\"'"),
        ),
        side_effects="every program using this key, and every URL it signed, stops working",
    )


def hmac_revocation(access_id: str) -> Revocation:
    """Deactivate, then delete, an HMAC key."""
    return Revocation(
        individually_revocable=True,
        summary=f"deactivate HMAC key {access_id}, then delete it",
        steps=(
            RevocationStep("Deactivate it", f"gcloud storage hmac update {access_id} --deactivate"),
            RevocationStep("Delete it (it must be inactive first)",
                           f"gcloud storage hmac delete {access_id}"),
        ),
        side_effects="every program using this key, and every URL it signed, stops working",
    )


def url_revocation(url: GcpSignedUrl) -> Revocation:
    """A signed URL dies with the key that signed it (or its signer's permission)."""
    if url.key_type == "hmac":
        inner = hmac_revocation(url.signer)
    else:
        inner = key_revocation("KEY_ID", url.signer)
        inner = Revocation(
            individually_revocable=True,
            summary=f"disable the key of {url.signer} that signed it, then delete it "
            "(`gcloud iam service-accounts keys list` shows its keys; the URL names none)",
            steps=(RevocationStep("List the account's keys",
                                  f"gcloud iam service-accounts keys list "
                                  f"--iam-account={url.signer}"), *inner.steps[:2]),
            side_effects=inner.side_effects,
        )
    return Revocation(
        individually_revocable=False,
        summary="a signed URL cannot be revoked alone: " + inner.summary
        + " (or remove the signer's access to the bucket)",
        steps=inner.steps,
        side_effects=inner.side_effects,
    )


def sentence(access: Access) -> str:
    """One plain sentence: what, where, until when, how to revoke."""
    d = access.details
    project = f"project {access.account}" if access.account else "an unknown project"
    commands = [s.command for s in access.revocation.steps if s.command]
    first = next((c for c in commands if " disable " in c or "--deactivate" in c),
                 commands[0] if commands else None)
    revoke = f"; revoke: {first}" if first else ""
    if access.kind == "signed-url":
        return (
            f"A {access.kind_label} lets anyone send {access.permissions} (implied) to the "
            f"{access.scope.description}, {access.validity.summary}, with the rights its "
            f"signer {d['key_id']} ({project}) has at the time of use{revoke}."
        )
    if access.kind == "service-account-key":
        return (
            f"This Google Cloud service-account key {d['key_id']} of {d['client_email']} "
            f"({project}) can make every API call the account's IAM roles allow, "
            f"{access.validity.summary}{revoke}."
        )
    if access.kind == "hmac-key":
        return (
            f"This Cloud Storage HMAC key {d['key_id']} of {d['owner']} can make every "
            f"Cloud Storage request its owner is allowed, {access.validity.summary}{revoke}."
        )
    return (
        "This Google API key identifies and bills its project and calls the APIs it is not "
        f"restricted from; it is no IAM identity{revoke}."
    )
