"""Explain Azure Storage credentials: blast radius, signature check, fingerprints, verdict."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from urllib.parse import quote

from keyscope.analyze.azure.access import key_access, sas_access, sentence
from keyscope.analyze.azure.hosts import DEV_ACCOUNT
from keyscope.analyze.azure.keys import DEV_KEY, AzureAccountKey
from keyscope.analyze.azure.policy import evaluate
from keyscope.analyze.azure.reader import ReadResult
from keyscope.analyze.azure.sas import AzureSas
from keyscope.analyze.azure.signing import (
    SigningUnavailable,
    key_log_hash,
    sas_log_hash,
    signed_with,
)
from keyscope.analyze.fingerprint import fingerprint
from keyscope.analyze.policy import DEFAULT_POLICY, Policy
from keyscope.model import Access, Explanation, SignatureCheck

PUBLIC_KEY_LABEL = "public emulator key"
LOG_TABLES = "union StorageBlobLogs, StorageFileLogs, StorageQueueLogs, StorageTableLogs"


def explain_found(
    found: ReadResult,
    now: datetime,
    *,
    account: str | None = None,
    keys: tuple[str, ...] = (),
    policy: Policy = DEFAULT_POLICY,
) -> list[Explanation]:
    """Explain credentials already read; keys found beside them are checked as signers."""
    context_account = account or next(iter(found.accounts), None)
    known_keys = [k.key for k in found.keys] + list(keys)
    out: list[Explanation] = []
    for sas in found.sas:
        check, signer_account = check_signature(sas, known_keys, context_account)
        access = sas_access(sas, now, account=signer_account or context_account)
        if check.key_label == PUBLIC_KEY_LABEL:
            # Anyone can sign with the published emulator key: nothing secret here.
            access = replace(
                access, emulator=True, details={**access.details, "signed_with_public_key": True}
            )
        out.append(
            _finish(
                access,
                now,
                policy,
                check,
                _sas_fingerprints(sas),
                redact_sas(sas),
                _sas_notes(sas),
                fingerprint("azure-sas", sas.signature),
            )
        )
    for key in found.keys:
        access = key_access(key, now)
        if access.account is None and context_account:
            access = key_access(
                AzureAccountKey(
                    key=key.key,
                    account=context_account,
                    public_dev_key=key.public_dev_key,
                    identifiable=key.identifiable,
                ),
                now,
            )
        check = SignatureCheck(status="not-checked", detail="an account key is not a signature")
        out.append(
            _finish(
                access,
                now,
                policy,
                check,
                _key_fingerprints(key.key),
                redact_key(key.key),
                _key_notes(key),
                fingerprint("azure-account-key", key.key),
            )
        )
    return out


def check_signature(
    sas: AzureSas, keys: list[str], account: str | None
) -> tuple[SignatureCheck, str | None]:
    """Recompute the signature with each known key (and the public emulator key for
    emulator tokens). Returns the verdict and the account it was proven for."""
    candidates = list(dict.fromkeys(keys))
    emulator = sas.location.emulator or sas.location.account == DEV_ACCOUNT
    if emulator and DEV_KEY not in candidates:
        candidates.append(DEV_KEY)
    if not candidates:
        return SignatureCheck(
            "not-checked", "no account key given (use --key or paste the connection string with it)"
        ), None
    acct = sas.location.account or account or (DEV_ACCOUNT if emulator else None)
    if acct is None:
        return SignatureCheck(
            "not-checked", "the account name is unknown; give --account NAME"
        ), None
    try:
        for i, key in enumerate(candidates):
            if signed_with(sas, acct, key):
                label = PUBLIC_KEY_LABEL if key == DEV_KEY else f"given key #{i + 1}"
                return SignatureCheck(
                    "signed-with-key",
                    f"signed with this key ({label}) for account '{acct}'",
                    key_label=label,
                ), acct
    except SigningUnavailable as exc:
        return SignatureCheck("not-checked", str(exc)), None
    n = len(candidates)
    if candidates == [DEV_KEY] and DEV_KEY not in keys:
        return SignatureCheck(
            "not-signed-with-key",
            f"not signed with the public emulator key for account '{acct}': its key was "
            "chosen by someone (AZURITE_ACCOUNTS) and may be in use elsewhere",
        ), None
    return SignatureCheck(
        "not-signed-with-key",
        f"not signed with {'this key' if n == 1 else f'any of the {n} keys'} "
        f"for account '{acct}' (another key, another account, or a tampered "
        "token)",
    ), None


def redact_sas(sas: AzureSas) -> str:
    shown = "&".join(f"{k}={v}" for k, v in sas.params.items() if k != "sig")
    prefix = ""
    loc = sas.location
    if loc.host and not loc.from_context:
        segments = list(loc.path_segments)
        if (
            loc.cloud in ("emulator", "path-style endpoint")
            and loc.account
            and ".localhost" not in loc.host
        ):
            segments.insert(0, loc.account + ("-secondary" if loc.secondary else ""))
        prefix = f"{loc.endpoint}/" + "/".join(segments) + "?"
    return f"{prefix}{shown}&sig={sas.signature[:4]}…(redacted)"


def redact_key(key: str) -> str:
    return f"{key[:4]}…(redacted, {len(key)} chars)"


def _finish(
    access: Access,
    now: datetime,
    policy: Policy,
    check: SignatureCheck,
    fingerprints: dict[str, str],
    redacted: str,
    notes: list[str],
    secret_id: str,
) -> Explanation:
    severity, reasons = evaluate(access, policy)
    return Explanation(
        sentence=sentence(access, now),
        access=access,
        severity=severity,
        reasons=reasons,
        log_fingerprints=fingerprints,
        signature=check,
        redacted=redacted,
        fingerprint=secret_id,
        notes=tuple(notes),
    )


def _sas_fingerprints(sas: AzureSas) -> dict[str, str]:
    h = sas_log_hash(sas.signature)
    out = {
        "AuthenticationHash": f"SasSignature({h})",
        "kql": f'{LOG_TABLES} | where AuthenticationHash has "{h}"',
        # classic $logs carry no hash: `keyscope usage` matches these instead
        "unsigned_parameters": "&".join(
            f"{k}={quote(v, safe='')}" for k, v in sas.params.items() if k != "sig"
        ),
    }
    if sas.location.path_segments and not sas.location.from_context:
        out["resource_path"] = "/" + "/".join(sas.location.path_segments)
    return out


def _key_fingerprints(key: str) -> dict[str, str]:
    h = key_log_hash(key)
    return {
        "AuthenticationHash": f"key1({h}) or key2({h})",
        "kql": f'{LOG_TABLES} | where AuthenticationHash has "{h}"',
    }


def _sas_notes(sas: AzureSas) -> list[str]:
    notes: list[str] = []
    loc = sas.location
    if loc.from_context:
        notes.append(
            f"The token was found without a URL; its endpoint {loc.endpoint}/"
            f"{'/'.join(loc.path_segments)} was taken from a nearby line and is a best guess."
        )
    if sas.kind == "account":
        notes.append(
            "An account SAS is not tied to the path in its URL: it works on every "
            "endpoint of the services in ss (blob, dfs, file, queue, table) of the "
            "account."
        )
    if sas.service == "dfs" or loc.service == "dfs":
        notes.append("A SAS minted for the dfs endpoint also works on the blob endpoint.")
    if loc.secondary:
        notes.append(
            "This is the read-access secondary endpoint; the same token works on the primary."
        )
    if sas.kind == "service-policy":
        notes.append(
            f"Permissions and lifetime missing from the token come from stored access "
            f"policy '{sas.policy_id}' and are not visible offline."
        )
    if sas.kind == "user-delegation":
        ud = sas.user_delegation
        notes.append(
            f"Effective rights are the intersection of sp and the Azure RBAC roles of "
            f"principal {ud.get('skoid')} (tenant {ud.get('sktid')}) at request time."
        )
        if "sduoid" in ud:
            notes.append(
                f"User-bound: only Entra user {ud['sduoid']} presenting a bearer token can use it."
            )
        if "srh" in ud or "srq" in ud:
            notes.append(
                "Dynamic SAS: the signed request headers/query parameters "
                f"({ud.get('srh', '')} {ud.get('srq', '')}) must accompany every "
                "request.".replace("  ", " ")
            )
        if loc.account and loc.account.startswith("oaidalle"):
            notes.append(
                "This is an Azure OpenAI result URL on a Microsoft-owned account, not your data."
            )
    if sas.overrides:
        notes.append(
            "Response-header overrides (rscc…rsct) only change response headers; they "
            "widen nothing."
        )
    unknown = sorted(set(sas.extra_params) - {"snapshot", "versionid"})
    if unknown:
        notes.append("Unsigned URL parameters ignored: " + ", ".join(unknown) + ".")
    if sas.resource == "d" and loc.path_segments and sas.directory_depth is not None:
        depth = len(loc.path_segments) - 1
        if depth != sas.directory_depth:
            notes.append(f"sdd={sas.directory_depth} but the URL path has depth {depth}.")
    return notes


def _key_notes(key: AzureAccountKey) -> list[str]:
    notes = []
    if key.identifiable:
        notes.append("Newer identifiable key format (+ASt at offset 76, with checksum).")
    if key.account is None:
        notes.append("The account is unknown; pass --account NAME for exact revocation commands.")
    return notes
