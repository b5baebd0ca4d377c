"""From a parsed Azure credential to its blast radius (:class:`~keyscope.model.Access`)."""

from __future__ import annotations

from datetime import datetime

from keyscope.analyze.azure import permissions
from keyscope.analyze.azure.hosts import AzureLocation
from keyscope.analyze.azure.keys import AzureAccountKey
from keyscope.analyze.azure.sas import AzureSas
from keyscope.analyze.timefmt import day, duration, instant, join_words
from keyscope.model import (
    Access,
    Capability,
    NetworkLimits,
    Revocation,
    RevocationStep,
    Scope,
    Validity,
)

PROVIDER = "azure-storage"
ALL_SERVICES = ("blob", "file", "queue", "table")
RG = "<resource-group>"


def sas_access(
    sas: AzureSas, now: datetime, account: str | None = None, signing_key: str | None = None
) -> Access:
    """Blast radius of a SAS. ``account`` overrides an unknown account (from context);
    ``signing_key`` names the key (e.g. "key1") proven to have signed it."""
    loc = sas.location
    acct = loc.account or account
    caps = _sas_capabilities(sas)
    scope = _sas_scope(sas)
    validity = sas_validity(sas, now)
    network = _network(sas.ip_range, sas.protocols)
    details: dict[str, object] = {
        "signed_version": sas.version,
        "resource_types": list(sas.resource_types),
        "signed_resource": sas.resource,
        "stored_policy": sas.policy_id,
        "encryption_scope": sas.encryption_scope,
        "user_delegation": dict(sas.user_delegation) or None,
        "response_header_overrides": dict(sas.overrides) or None,
        "other_parameters": sorted(sas.extra_params) or None,
    }
    return Access(
        provider=PROVIDER,
        kind=f"{sas.kind}-sas",
        kind_label=sas.kind_label,
        account=acct,
        account_note=_account_note(loc, acct),
        endpoint=loc.endpoint,
        cloud=loc.cloud,
        emulator=loc.emulator,
        services=sas.services,
        scope=scope,
        permissions=sas.permissions,
        capabilities=caps,
        destructive=_sas_destructive(sas, caps),
        validity=validity,
        network=network,
        revocation=sas_revocation(sas, acct, signing_key),
        details={k: v for k, v in details.items() if v is not None},
    )


# What an account key can do: the same for every key (one shared tuple)
_KEY_CAPABILITIES = tuple(
    Capability(letter="*", name=name, meaning=meaning, classes=classes)
    for name, meaning, classes in (
        (
            "full control",
            "every data operation on every blob, file, queue and table",
            ("read", "list", "write", "overwrite", "delete"),
        ),
        (
            "mint SAS tokens",
            "sign new SAS tokens of any scope and lifetime, untracked",
            ("write",),
        ),
        (
            "service settings",
            "change logging, soft delete, CORS and static website settings",
            ("write",),
        ),
    )
)


def key_access(
    key: AzureAccountKey, now: datetime, location: AzureLocation | None = None
) -> Access:
    """Blast radius of an account key: everything, until rotated."""
    loc = location or key.location
    acct = key.account or loc.account
    caps = _KEY_CAPABILITIES
    validity = Validity(
        start=None,
        expiry=None,
        effective_expiry=None,
        lifetime_seconds=None,
        remaining_seconds=None,
        expired=False,
        not_yet_valid=False,
        summary="no expiry: valid until the key is rotated",
    )
    return Access(
        provider=PROVIDER,
        kind="account-key" if not key.public_dev_key else "public-dev-key",
        kind_label="account key" if not key.public_dev_key else "public emulator key",
        account=acct,
        account_note=None if acct else "unknown: give --account NAME",
        endpoint=loc.endpoint,
        cloud=loc.cloud,
        emulator=key.public_dev_key or loc.emulator,
        services=ALL_SERVICES,
        scope=Scope(level="account", description="all data and settings of the account"),
        permissions=None,
        capabilities=caps,
        destructive=("overwrite", "delete", "account-control", "anti-forensics", "mint-sas"),
        validity=validity,
        network=NetworkLimits(
            ip_range=None,
            protocols=("https", "http"),
            summary="from any IP address the account's firewall admits",
        ),
        revocation=key_revocation(acct, key.public_dev_key),
        details={"identifiable_key_format": key.identifiable},
    )


def sas_validity(sas: AzureSas, now: datetime) -> Validity:
    effective = sas.expiry
    if sas.key_expiry is not None and (effective is None or sas.key_expiry < effective):
        effective = sas.key_expiry
    lifetime = None
    if effective is not None and sas.start is not None:
        lifetime = int((effective - sas.start).total_seconds())
    remaining = int((effective - now).total_seconds()) if effective is not None else None
    expired = remaining is not None and remaining <= 0
    not_yet = sas.start is not None and sas.start > now
    if effective is None:
        summary = (
            f"lifetime set by stored access policy '{sas.policy_id}', not visible in the token"
        )
    elif expired:
        assert remaining is not None
        summary = f"expired {duration(-remaining)} ago, on {instant(effective)}"
    else:
        assert remaining is not None
        summary = f"valid until {instant(effective)} ({duration(remaining)} left"
        if lifetime is not None:
            summary += f"; issued for {duration(lifetime)}"
        summary += ")"
        if not_yet and sas.start is not None:
            summary += f"; not valid before {instant(sas.start)}"
    if sas.key_expiry is not None and sas.expiry is not None and sas.key_expiry < sas.expiry:
        summary += (
            f"; cut short by its delegation key's expiry {instant(sas.key_expiry)} "
            f"(se says {instant(sas.expiry)})"
        )
    return Validity(
        start=sas.start,
        expiry=sas.expiry,
        effective_expiry=effective,
        lifetime_seconds=lifetime,
        remaining_seconds=remaining,
        expired=expired,
        not_yet_valid=not_yet,
        summary=summary,
        key_start=sas.key_start,
        key_expiry=sas.key_expiry,
    )


def sas_revocation(sas: AzureSas, account: str | None, signing_key: str | None) -> Revocation:
    acct = account or "<account>"
    if sas.kind == "user-delegation":
        skoid = sas.user_delegation.get("skoid", "<object-id>")
        return Revocation(
            individually_revocable=False,
            summary=(
                "can only be revoked by revoking every user delegation key of the account "
                f"or removing the storage roles of principal {skoid}"
            ),
            steps=(
                RevocationStep(
                    "Revoke all user delegation keys of the account (kills every "
                    "user delegation SAS it issued; cached, not instant)",
                    f"az storage account revoke-delegation-keys --name {acct} "
                    f"--resource-group {RG}",
                ),
                RevocationStep(
                    f"Or list and remove the role assignments of principal {skoid}",
                    f"az role assignment list --assignee {skoid} --all",
                ),
            ),
            side_effects="Rotating account keys does not affect a user delegation SAS.",
        )
    rotate = _rotate_steps(acct, signing_key)
    if sas.kind == "service-policy":
        container = sas.location.path_segments[0] if sas.location.path_segments else "<name>"
        noun, flag = {
            "file": ("share", "--share-name"),
            "queue": ("queue", "--queue-name"),
            "table": ("table", "--table-name"),
        }.get(sas.service or "blob", ("container", "--container-name"))
        if sas.service == "table" and sas.table_name:
            container = sas.table_name
        return Revocation(
            individually_revocable=True,
            summary=(
                f"can be revoked by deleting or changing stored access policy "
                f"'{sas.policy_id}' on {noun} '{container}'"
            ),
            steps=(
                RevocationStep(
                    "Delete the stored access policy (every SAS bound to it stops "
                    "working within 30 seconds; do not re-create the same id)",
                    f"az storage {noun} policy delete --account-name {acct} "
                    f"{flag} {container} --name {sas.policy_id}",
                ),
                *rotate,
            ),
        )
    which = f" ({signing_key})" if signing_key else ""
    return Revocation(
        individually_revocable=False,
        summary=f"can only be revoked by rotating the key that signed it{which}",
        steps=(
            *rotate,
            RevocationStep(
                "Or stop all key-based access to the account (every account and "
                "service SAS gets 403; user delegation SAS keep working)",
                f"az storage account update --name {acct} --resource-group {RG} "
                "--allow-shared-key-access false",
            ),
        ),
        side_effects="Rotating a key kills every SAS signed with it and every app using it.",
    )


def key_revocation(account: str | None, public: bool) -> Revocation:
    if public:
        return Revocation(
            individually_revocable=False,
            summary="is the public emulator key, published by Microsoft: "
            "there is nothing to revoke",
            steps=(),
        )
    acct = account or "<account>"
    return Revocation(
        individually_revocable=True,
        summary="can be revoked by rotating it, which also kills every SAS signed with it",
        steps=(
            RevocationStep(
                "Find which key it is: compare its log fingerprint with "
                "AuthenticationHash key1(...)/key2(...), or list the keys",
                f"az storage account keys list --account-name {acct} --resource-group {RG}",
            ),
            RevocationStep(
                "Regenerate that key (primary = key1, secondary = key2)",
                f"az storage account keys renew --account-name {acct} "
                f"--resource-group {RG} --key primary",
            ),
        ),
        side_effects="Every app and every SAS that uses this key stops working.",
    )


def _rotate_steps(acct: str, signing_key: str | None) -> tuple[RevocationStep, ...]:
    if signing_key in ("key1", "key2"):
        which = "primary" if signing_key == "key1" else "secondary"
        return (
            RevocationStep(
                f"Regenerate {signing_key}, which signed it",
                f"az storage account keys renew --account-name {acct} "
                f"--resource-group {RG} --key {which}",
            ),
        )
    return (
        RevocationStep(
            "Find which key signed it: search the logs for its SasSignature "
            "fingerprint; AuthenticationHash starts with key1(...) or key2(...)"
        ),
        RevocationStep(
            "Regenerate that key (primary = key1, secondary = key2)",
            f"az storage account keys renew --account-name {acct} "
            f"--resource-group {RG} --key primary",
        ),
    )


def _sas_capabilities(sas: AzureSas) -> tuple[Capability, ...]:
    if sas.permissions is None:
        return ()
    table = "account" if sas.kind == "account" else sas.service or "queue-or-table"
    return permissions.capabilities(sas.permissions, table)


def _sas_destructive(sas: AzureSas, caps: tuple[Capability, ...]) -> tuple[str, ...]:
    classes = {c for cap in caps for c in cap.classes}
    out: list[str] = []
    if "overwrite" in classes:
        out.append("overwrite")
    if "delete" in classes - {"dequeue"} or any(c.letter in "dx" for c in caps):
        out.append("delete")
    if "permanent-delete" in classes:
        out.append("permanent-delete")
    if "dequeue" in classes and (sas.kind != "account" or "queue" in sas.services):
        out.append("dequeue")
    if "set-acl" in classes:
        out.append("set-acl")
    letters = set(sas.permissions or "")
    if sas.kind == "account":
        if "service" in sas.resource_types and "w" in letters:
            out.append("account-control")
        if "blob" in sas.services and (
            ("object" in sas.resource_types and letters & set("dxy"))
            or ("service" in sas.resource_types and "w" in letters)
        ):
            out.append("anti-forensics")
    return tuple(dict.fromkeys(out))


def _sas_scope(sas: AzureSas) -> Scope:
    seg = sas.location.path_segments
    if sas.kind == "account":
        services = join_words(list(sas.services))
        types = set(sas.resource_types)
        if "object" in types:
            desc = f"all {services} data of the account"
        elif "container" in types:
            desc = (
                f"the {services} containers of the account (create, delete, list; no object data)"
            )
        else:
            desc = f"the {services} service settings and listings of the account"
        return Scope(level="account", description=desc)
    container = seg[0] if seg else None
    rest = "/".join(seg[1:]) if len(seg) > 1 else None
    unknown = "named in the URL (not given)"
    svc = sas.service
    if svc in ("blob", "dfs"):
        kind = "file system" if svc == "dfs" else "container"
        where = f"{kind} '{container}'" if container else f"the {kind} {unknown}"
        r = sas.resource
        if r == "c":
            return Scope(
                level="container", container=container, description=f"every blob in {where}"
            )
        if r == "d":
            return Scope(
                level="directory",
                container=container,
                path=rest,
                directory_depth=sas.directory_depth,
                description=f"directory '{rest or '?'}' (depth {sas.directory_depth}) "
                f"and everything below it in {where}",
            )
        noun = {"bs": "snapshot of blob", "bv": "version of blob"}.get(r or "b", "blob")
        level = {"bs": "snapshot", "bv": "version"}.get(r or "b", "blob")
        extra = ""
        if r == "bs" and sas.snapshot:
            extra = f" ({sas.snapshot})"
        if r == "bv" and sas.version_id:
            extra = f" ({sas.version_id})"
        name = f"'{rest}'" if rest else unknown
        return Scope(
            level=level,
            container=container,
            path=rest,
            snapshot=sas.snapshot,
            version_id=sas.version_id,
            description=f"one {noun} {name}{extra} in {where}",
        )
    if svc == "file":
        where = f"share '{container}'" if container else f"the share {unknown}"
        if sas.resource == "s":
            return Scope(level="share", container=container, description=f"every file in {where}")
        name = f"'{rest}'" if rest else unknown
        return Scope(
            level="file", container=container, path=rest, description=f"one file {name} in {where}"
        )
    if svc == "queue":
        return Scope(
            level="queue",
            container=container,
            description=f"queue '{container}'" if container else f"the queue {unknown}",
        )
    if svc == "table":
        table = sas.table_name or (container.split("(")[0] if container else None)
        desc = f"table '{table}'" if table else f"the table {unknown}"
        if sas.table_range:
            desc += " within " + _range_text(sas.table_range)
        return Scope(
            level="table",
            container=table,
            table_range=dict(sas.table_range) or None,
            description=desc,
        )
    return Scope(
        level="queue-or-table", container=container, description=f"the queue or table {unknown}"
    )


def _range_text(r: dict[str, str]) -> str:
    parts = []
    if "spk" in r:
        parts.append(
            f"PartitionKey ≥ '{r['spk']}'" + (f" (RowKey ≥ '{r['srk']}')" if "srk" in r else "")
        )
    if "epk" in r:
        parts.append(
            f"PartitionKey ≤ '{r['epk']}'" + (f" (RowKey ≤ '{r['erk']}')" if "erk" in r else "")
        )
    return "the key range " + " and ".join(parts)


def _network(ip_range: str | None, protocols: tuple[str, ...]) -> NetworkLimits:
    proto = "HTTPS only" if protocols == ("https",) else "HTTP or HTTPS"
    where = f"from {ip_range} only" if ip_range else "from any IP address"
    return NetworkLimits(ip_range=ip_range, protocols=protocols, summary=f"{proto}, {where}")


def _account_note(loc: AzureLocation, account: str | None) -> str | None:
    if loc.custom_domain:
        return (
            f"unknown, behind a custom domain ({loc.host}); the signature binds the real "
            "account name"
        )
    if account is None:
        return "unknown: the token was given without its URL"
    return None


def main_verbs(caps: tuple[Capability, ...]) -> tuple[list[str], list[str]]:
    """Split capabilities into the headline verbs (read, write, delete, list) and the rest."""
    main = [
        c.name for c in caps if c.letter in "rwdl" and c.name in ("read", "write", "delete", "list")
    ]
    order = {"read": 0, "write": 1, "delete": 2, "list": 3}
    main.sort(key=order.__getitem__)
    rest = [c.name for c in caps if c.name not in main]
    if not main:
        return rest, []
    return main, rest


def sentence(access: Access, now: datetime) -> str:
    """One plain sentence: who, what, where, until when, how to kill it."""
    who = access.kind_label
    acct = f"storage account '{access.account}'" if access.account else "an unknown storage account"
    if access.kind == "public-dev-key":
        return (
            "This is the public Azurite/Storage Emulator development key for "
            "'devstoreaccount1', published by Microsoft: it opens only local emulators "
            "and is not a secret."
        )
    if access.kind == "account-key":
        return (
            f"This account key gives full control of {acct}: read, write, delete and list "
            "on all blob, file, queue and table data, the power to mint new SAS tokens and "
            "change service settings, with no expiry; it can be revoked only by rotating it, "
            "which also kills every SAS signed with it."
        )
    main, rest = main_verbs(access.capabilities)
    grants = f"grants {join_words(main)}" if main else "grants the permissions of its policy"
    if not access.capabilities and access.details.get("stored_policy"):
        grants = "grants whatever its stored access policy allows (not visible in the token)"
    v = access.validity
    if v.effective_expiry is None:
        until = "for a lifetime set in its stored access policy (not visible in the token)"
    elif v.expired:
        ago = duration(-(v.remaining_seconds or 0))
        until = f"until {day(v.effective_expiry)}, but it expired {ago} ago"
    else:
        until = f"until {day(v.effective_expiry)}"
    text = (
        f"This {who} for {acct} {grants} over {access.scope.description} {until} "
        f"and {access.revocation.summary}"
    )
    also = []
    if rest:
        also.append(f"it also allows {join_words(rest)}")
    also.append(f"usable over {access.network.summary}")
    text += "; " + ", ".join(also)
    if access.details.get("signed_with_public_key"):
        text += "; it is signed with the public emulator key, so it opens no real account"
    elif access.emulator:
        text += "; it points at a local storage emulator"
    return text + "."
