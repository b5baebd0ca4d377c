"""From an account's settings to checks (each with its exact ``az`` fix) and a verdict per
credential kind, in ``explain``'s words (``analyze/azure/permissions.py`` and
``access.py``: the same letters, the same capability sentences, the same commands).

``settings`` is the plain mapping ``run.py`` builds from both planes; a key that is
missing was not read, and nothing is concluded from it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from keyscope.analyze.azure import permissions
from keyscope.analyze.azure.access import RG, key_access
from keyscope.analyze.azure.keys import AzureAccountKey
from keyscope.analyze.policy import DEFAULT_POLICY, Policy
from keyscope.analyze.timefmt import day, duration, join_words, parse_datetime
from keyscope.errors import ParseError
from keyscope.model import Severity
from keyscope.posture.arm import STORAGE_API
from keyscope.posture.types import KIND_LABELS, KINDS, AccountPosture, Check, Fix, KindVerdict

ALL_ACCOUNT_LETTERS = "rwdxylacupfti"  # every letter an account SAS can carry
ALL_BLOB_LETTERS = "racwdxyltfmeopi"  # every letter a blob service SAS can carry
KEY_AGE_DAYS = 90  # keys older than this (without a key policy) should be rotated
SAS_KINDS = ("account-sas", "service-sas")

# code: (default severity, what it means): the README documents this table.
RULES: dict[str, tuple[Severity, str]] = {
    "shared-key-allowed": (Severity.HIGH, "Shared Key authorization (account keys, account "
                           "and service SAS) is allowed"),
    "no-sas-expiry-policy": (Severity.MEDIUM, "no SAS expiration policy"),
    "sas-expiry-log-only": (Severity.LOW, "the SAS expiration policy only logs violations"),
    "sas-expiry-long": (Severity.LOW, "the SAS expiration policy allows long lifetimes"),
    "no-key-policy": (Severity.MEDIUM, "no key expiration policy"),
    "old-key": (Severity.MEDIUM, "an account key has not been rotated for a long time"),
    "key-listers": (Severity.LOW, "principals that may list the account keys"),
    "blob-public-access-allowed": (Severity.MEDIUM, "containers may be made public"),
    "public-container": (Severity.HIGH, "a container is readable without any credential"),
    "tls-below-1.2": (Severity.LOW, "TLS older than 1.2 is accepted"),
    "http-allowed": (Severity.LOW, "plain HTTP is accepted"),
    "open-network": (Severity.MEDIUM, "reachable from any network"),
    "no-infrastructure-encryption": (Severity.INFO, "no infrastructure encryption"),
    "logging-off": (Severity.HIGH, "no access logs: a token's use cannot be traced"),
    "metrics-off": (Severity.LOW, "no request metrics"),
    "soft-delete-off": (Severity.HIGH, "deleted blobs are gone for good"),
    "permanent-delete-allowed": (Severity.MEDIUM, "permanent delete bypasses soft delete"),
    "container-soft-delete-off": (Severity.MEDIUM, "deleted containers are gone for good"),
    "versioning-off": (Severity.MEDIUM, "overwritten blobs are gone for good"),
    "change-feed-off": (Severity.LOW, "no change feed: changes cannot be replayed"),
    "cors-any-origin": (Severity.MEDIUM, "any web page may call the Blob service"),
    "stored-policy-long": (Severity.HIGH, "a stored access policy is valid for a long time"),
}


def judge(posture: AccountPosture, now: datetime, policy: Policy = DEFAULT_POLICY) -> None:
    """Fill ``posture.checks`` and ``posture.verdicts`` from ``posture.settings``."""
    s = posture.settings
    acct = posture.account
    rg = posture.resource_group or RG
    update = f"az storage account update --name {acct} --resource-group {rg}"
    blob_update = (f"az storage account blob-service-properties update --account-name {acct} "
                   f"--resource-group {rg}")
    checks: list[Check] = []

    def add(code: str, setting: str, detail: str, fixes: tuple[Fix, ...],
            contains: tuple[str, ...] = (), severity: Severity | None = None) -> None:
        default, title = RULES[code]
        level = default if severity is None else severity
        checks.append(Check(code, level, setting, title, detail, fixes, contains))

    shared_key = s.get("allow_shared_key_access")
    if "allow_shared_key_access" in s and shared_key is not False:
        add("shared-key-allowed", "allowSharedKeyAccess",
            "allowSharedKeyAccess is " + ("not set (null means allowed)" if shared_key is None
                                          else "true") + ": a leaked account key, account SAS "
            "or service SAS works; turning it off leaves only Entra ID and user delegation SAS",
            (Fix("Refuse Shared Key (and so every account and service SAS)",
                 f"{update} --allow-shared-key-access false"),), KINDS)
    _sas_policy(s, add, update, policy)
    _keys(s, add, update, acct, rg, now)
    _public(s, add, update, acct)
    _transport(s, add, update)
    _network(s, add, update, f"--account-name {acct} --resource-group {rg}")
    if s.get("require_infrastructure_encryption") is False:
        add("no-infrastructure-encryption", "encryption.requireInfrastructureEncryption",
            "data is encrypted once, not twice; this is chosen when an account is created",
            (Fix("Cannot be changed in place: create a new account with "
                 "--require-infrastructure-encryption true and copy the data over"),))
    _logging(s, add, acct, posture.resource_id)
    _recovery(s, add, blob_update, posture.resource_id or f"<resource-id of {acct}>")
    _cors(s, add, acct)
    _stored_policies(s, add, acct, now, policy)
    posture.checks = sorted(checks, key=lambda c: (-c.severity, c.code))
    posture.verdicts = [_verdict(kind, posture, now) for kind in KINDS]


def _sas_policy(s: dict[str, Any], add: Any, update: str, policy: Policy) -> None:
    if "sas_policy" not in s:
        return
    sas = s["sas_policy"]
    block = (f"{update} --sas-expiration-period 1.00:00:00 --sas-expiration-action Block")
    if sas is None:
        add("no-sas-expiry-policy", "sasPolicy",
            "no SAS expiration policy: a SAS signed for 30 years is accepted, and nothing "
            "in the logs marks it",
            (Fix("Refuse SAS tokens valid for more than a day (and those without a start "
                 "time)", block),), SAS_KINDS)
        return
    action = str(sas.get("action") or "Log")
    if action.lower() != "block":
        add("sas-expiry-log-only", "sasPolicy.expirationAction",
            f"expirationAction is {action}: a SAS longer than {sas.get('period')} is only "
            "logged (SasExpiryStatus), still accepted",
            (Fix("Refuse SAS tokens that break the policy", block),), SAS_KINDS)
    seconds = period_seconds(str(sas.get("period") or ""))
    if seconds is not None and seconds > max(policy.max_lifetime, 86400):
        add("sas-expiry-long", "sasPolicy.sasExpirationPeriod",
            f"the policy allows SAS tokens valid for {duration(seconds)}",
            (Fix("Allow at most one day", block),), SAS_KINDS)


def _keys(s: dict[str, Any], add: Any, update: str, acct: str, rg: str, now: datetime) -> None:
    if "key_policy_days" in s and s["key_policy_days"] is None:
        add("no-key-policy", "keyPolicy.keyExpirationPeriodInDays",
            "no key expiration policy: nothing reminds anyone to rotate the keys, and a leaked "
            "key works until it is rotated",
            (Fix(f"Expect rotation every {KEY_AGE_DAYS} days",
                 f"{update} --key-exp-days {KEY_AGE_DAYS}"),))
    limit = s.get("key_policy_days") or KEY_AGE_DAYS
    for name, created in sorted((s.get("key_created") or {}).items()):
        when = _time(created)
        if when is None:
            continue
        age = now - when
        if age > timedelta(days=limit):
            which = "primary" if name == "key1" else "secondary"
            add("old-key", f"keyCreationTime.{name}",
                f"{name} was created or last rotated on {day(when)}, "
                f"{duration(int(age.total_seconds()))} ago (limit {limit} days): every SAS "
                "ever signed with it still works",
                (Fix(f"Regenerate {name} (kills every SAS signed with it)",
                     f"az storage account keys renew --account-name {acct} "
                     f"--resource-group {rg} --key {which}"),), ("account-key", *SAS_KINDS))
    listers = s.get("key_listers")
    if listers:
        names = [f"{x['principal_type']} {x['principal_id']} ({x['role']})" for x in listers]
        add("key-listers", "role assignments (listKeys)",
            f"{len(listers)} role assignment(s) allow listKeys, i.e. reading both keys: "
            + join_words(names[:10]) + (" …" if len(names) > 10 else ""),
            tuple(Fix(f"Remove {x['role']} from {x['principal_id']} if it does not need keys",
                      f"az role assignment delete --assignee {x['principal_id']} "
                      f"--role \"{x['role']}\" --scope {x['scope']}") for x in listers[:10]),
            ("account-key",))


def _public(s: dict[str, Any], add: Any, update: str, acct: str) -> None:
    if s.get("allow_blob_public_access") is True:
        add("blob-public-access-allowed", "allowBlobPublicAccess",
            "allowBlobPublicAccess is true: anyone holding a leaked key or account SAS with "
            "write on containers, or any owner by mistake, can make a container public",
            (Fix("Forbid public containers account-wide",
                 f"{update} --allow-blob-public-access false"),))
    for container in s.get("containers") or []:
        level = container.get("public_access") or "off"
        if level == "off":
            continue
        what = ("list and read every blob" if level == "container" else
                "read every blob whose name is known")
        add("public-container", f"container '{container['name']}' public access",
            f"container '{container['name']}' has public access '{level}': anyone can {what}, "
            "with no token at all",
            (Fix("Make the container private",
                 f"az storage container set-permission --name {container['name']} "
                 f"--public-access off --account-name {acct}"),
             Fix("And forbid public containers account-wide",
                 f"{update} --allow-blob-public-access false")))


def _transport(s: dict[str, Any], add: Any, update: str) -> None:
    tls = s.get("minimum_tls_version")
    if isinstance(tls, str) and tls.upper() in ("TLS1_0", "TLS1_1"):
        add("tls-below-1.2", "minimumTlsVersion", f"minimumTlsVersion is {tls}",
            (Fix("Require TLS 1.2", f"{update} --min-tls-version TLS1_2"),))
    if s.get("https_only") is False:
        add("http-allowed", "supportsHttpsTrafficOnly",
            "plain HTTP is accepted: a SAS with spr=https,http travels readable on the wire",
            (Fix("Accept HTTPS only", f"{update} --https-only true"),))


def _network(s: dict[str, Any], add: Any, update: str, names: str) -> None:
    net = s.get("network")
    if net is None:
        return
    if restricted_network(net):
        return
    add("open-network", "networkAcls.defaultAction",
        "the firewall admits every network (defaultAction Allow, public network access "
        "on): a leaked token works from anywhere on the internet",
        (Fix("Deny by default, then admit the networks that need the account",
             f"{update} --default-action Deny"),
         Fix("Admit an address range",
             f"az storage account network-rule add {names} --ip-address <your-range>")),
        KINDS)


def restricted_network(net: dict[str, Any]) -> bool:
    """Whether the firewall admits only some networks (or only private endpoints)."""
    return (str(net.get("default_action") or "").lower() == "deny"
            or str(net.get("public_network_access") or "").lower() == "disabled")


def _logging(s: dict[str, Any], add: Any, acct: str, resource_id: str | None) -> None:
    if "logging" not in s and "diagnostic_logs" not in s:
        return
    if logged(s):
        return
    seen = []
    log = s.get("logging")
    if "logging" in s:
        ops = [op for op in ("read", "write", "delete") if log and log.get(op)]
        seen.append(f"Storage Analytics logs only {join_words(ops)}" if ops
                    else "Storage Analytics logging is off")
    if s.get("diagnostic_logs") == []:
        seen.append("no diagnostic setting sends blob resource logs anywhere")
    unknown = "logging" not in s
    if unknown:
        seen.append("Storage Analytics logging was not read (give --connection-string)")
    rid = resource_id or f"<resource-id of {acct}>"
    add("logging-off", "logging",
        "; ".join(seen) + ": the use of a leaked token leaves no trace to match "
        "(AuthenticationHash, SAS parameters)",
        (Fix("Log every read, write and delete (Storage Analytics, $logs, 90 days)",
             f"az storage logging update --account-name {acct} --services b --log rwd "
             "--retention 90"),
         Fix("Or send resource logs to a Log Analytics workspace",
             f"az monitor diagnostic-settings create --name keyscope-blob-logs "
             f"--resource {rid}/blobServices/default --workspace <workspace-id> "
             "--logs '[{\"category\":\"StorageRead\",\"enabled\":true},"
             "{\"category\":\"StorageWrite\",\"enabled\":true},"
             "{\"category\":\"StorageDelete\",\"enabled\":true}]'")),
        severity=Severity.MEDIUM if unknown else None)
    metrics = s.get("hour_metrics")
    if isinstance(metrics, dict) and not metrics.get("enabled"):
        add("metrics-off", "hourMetrics",
            "hour metrics are off: a burst of requests from a leaked token shows nowhere",
            (Fix("Keep hour metrics for 90 days",
                 f"az storage metrics update --account-name {acct} --services b --api true "
                 "--hour true --minute false --retention 90"),))


def logged(s: dict[str, Any]) -> bool:
    """Whether reads, writes and deletes are logged somewhere (analytics or resource logs)."""
    log = s.get("logging")
    analytics = isinstance(log, dict) and all(log.get(op) for op in ("read", "write", "delete"))
    return analytics or bool(s.get("diagnostic_logs"))


def _recovery(s: dict[str, Any], add: Any, blob_update: str, rid: str) -> None:
    retention = s.get("delete_retention")
    if isinstance(retention, dict) and not retention.get("enabled"):
        add("soft-delete-off", "deleteRetentionPolicy",
            "blob soft delete is off: a token with delete (d) destroys data for good",
            (Fix("Keep deleted blobs for 14 days",
                 f"{blob_update} --enable-delete-retention true --delete-retention-days 14"),),
            KINDS)
    elif isinstance(retention, dict) and retention.get("allow_permanent_delete"):
        add("permanent-delete-allowed", "deleteRetentionPolicy.allowPermanentDelete",
            "permanent delete is allowed: a token with permanent delete (y) erases soft-deleted "
            "snapshots and versions at once",
            (Fix("Keep soft delete and forbid permanent delete (ARM, blobServices/default)",
                 f"az rest --method patch --url https://management.azure.com{rid}/"
                 f"blobServices/default?api-version={STORAGE_API} --body "
                 "'{\"properties\":{\"deleteRetentionPolicy\":{\"enabled\":true,"
                 "\"days\":14,\"allowPermanentDelete\":false}}}'"),))
    arm = s.get("arm_blob")
    if not isinstance(arm, dict):
        return
    if arm.get("container_delete_retention") is False:
        add("container-soft-delete-off", "containerDeleteRetentionPolicy",
            "container soft delete is off: deleting a container (account SAS or key with d) "
            "destroys all of its blobs for good",
            (Fix("Keep deleted containers for 14 days",
                 f"{blob_update} --enable-container-delete-retention true "
                 "--container-delete-retention-days 14"),), ("account-sas", "account-key"))
    if arm.get("versioning") is False:
        add("versioning-off", "isVersioningEnabled",
            "versioning is off: a token with write (w) overwrites blobs for good; unlike soft "
            "delete, no data-plane token can switch versioning off",
            (Fix("Keep every version", f"{blob_update} --enable-versioning true"),), KINDS)
    if arm.get("change_feed") is False:
        add("change-feed-off", "changeFeed",
            "the change feed is off: what a leaked token changed cannot be listed afterwards",
            (Fix("Record every change", f"{blob_update} --enable-change-feed true"),))


def _cors(s: dict[str, Any], add: Any, acct: str) -> None:
    for rule in s.get("cors") or []:
        if "*" in rule.get("origins", []):
            add("cors-any-origin", "cors",
                f"a CORS rule admits any origin for {', '.join(rule.get('methods') or ['?'])}: "
                "a leaked SAS can be used from the script of any web page",
                (Fix("Remove the Blob service's CORS rules",
                     f"az storage cors clear --account-name {acct} --services b"),
                 Fix("Then admit only your own sites",
                     f"az storage cors add --account-name {acct} --services b --methods GET "
                     "--origins https://<your-site>")), SAS_KINDS)
            return


def _stored_policies(s: dict[str, Any], add: Any, acct: str, now: datetime,
                     policy: Policy) -> None:
    soon = day(now + timedelta(days=7))
    for container in s.get("containers") or []:
        for stored in container.get("policies") or []:
            expiry = _time(stored.get("expiry"))
            if expiry is None or expiry <= now:
                continue
            left = int((expiry - now).total_seconds())
            if left <= policy.max_lifetime:
                continue
            letters = stored.get("permissions") or ""
            grants = capability_lines(letters, "blob")
            destructive = any(letter in letters for letter in "wdxyacmopi")
            name = container["name"]
            add("stored-policy-long", f"container '{name}' stored access policy "
                f"'{stored['id']}'",
                f"stored access policy '{stored['id']}' on container '{name}' is valid until "
                f"{day(expiry)} ({duration(left)} left): every service SAS bound to it "
                + (f"grants {join_words([g.split(':')[0] for g in grants])} "
                   if grants else "grants what it names ") + f"over every blob in '{name}'",
                (Fix("Shorten it (tokens bound to it die at the new expiry)",
                     f"az storage container policy update --account-name {acct} "
                     f"--container-name {name} --name {stored['id']} --expiry {soon}"),
                 Fix("Or delete it (every SAS bound to it stops within 30 seconds; do not "
                     "re-create the same id)",
                     f"az storage container policy delete --account-name {acct} "
                     f"--container-name {name} --name {stored['id']}")),
                ("service-sas",), None if destructive else Severity.MEDIUM)


def capability_lines(letters: str, table: str) -> list[str]:
    """``name: meaning`` for each letter, as ``explain`` shows capabilities."""
    try:
        caps = permissions.capabilities(letters, table)
    except ParseError:
        return []
    return [f"{c.name}: {c.meaning}" for c in caps]


def _verdict(kind: str, posture: AccountPosture, now: datetime) -> KindVerdict:
    s = posture.settings
    label = KIND_LABELS[kind]
    if kind == "account-sas":
        can = capability_lines(ALL_ACCOUNT_LETTERS, "account")
    elif kind == "service-sas":
        can = capability_lines(ALL_BLOB_LETTERS, "blob")
    else:
        access = key_access(AzureAccountKey(key="", account=posture.account), now)
        can = [f"{c.name}: {c.meaning}" for c in access.capabilities]
    limited: list[str] = []
    would = [c.code for c in posture.checks if kind in c.contains]
    if s.get("allow_shared_key_access") is False:
        return KindVerdict(
            kind, label, "blocked", Severity.INFO,
            f"a leaked {label} is refused: the account allows no Shared Key authorization "
            "(403 KeyBasedAuthenticationNotPermitted)", tuple(can),
            ("allowSharedKeyAccess is false",), ())
    if s.get("shared_key_refused"):
        return KindVerdict(
            kind, label, "blocked", Severity.INFO,
            f"a leaked {label} is refused: the data plane answered "
            "KeyBasedAuthenticationNotPermitted", tuple(can), ("Shared Key refused",), ())
    net = s.get("network")
    restricted = isinstance(net, dict) and restricted_network(net)
    if restricted:
        limited.append("the firewall admits only some networks (defaultAction Deny or public "
                       "network access disabled)")
    sas = s.get("sas_policy")
    if kind in SAS_KINDS and isinstance(sas, dict):
        if str(sas.get("action") or "").lower() == "block":
            limited.append(f"a SAS valid for more than {sas.get('period')} or without a start "
                           "time is refused (SAS expiration policy, Block)")
        else:
            limited.append(f"a SAS valid for more than {sas.get('period')} is logged "
                           "(SAS expiration policy, Log)")
    retention = s.get("delete_retention")
    if isinstance(retention, dict) and retention.get("enabled"):
        note = f"deleted blobs are kept {retention.get('days') or '?'} days (soft delete)"
        if kind != "service-sas":
            note += ", but this credential can switch soft delete off (service settings)"
        limited.append(note)
    arm = s.get("arm_blob")
    if isinstance(arm, dict) and arm.get("versioning"):
        limited.append("overwritten blobs keep their earlier versions (versioning; a token "
                       "with delete version (x) can still remove them)")
    if logged(s):
        limited.append("its use is logged")
    held = [c["name"] for c in s.get("containers") or []
            if c.get("immutability_policy") or c.get("legal_hold")
            or c.get("immutable_storage_with_versioning")]
    if held:
        limited.append("blobs under an immutability policy or legal hold cannot be "
                       f"overwritten or deleted ({join_words(held[:5])})")
    if restricted:
        state, severity = "restricted", Severity.MEDIUM
        summary = (f"a leaked {label} works only from the networks the firewall admits; "
                   "from there it could do everything below")
    else:
        state = "open"
        severity = Severity.HIGH if kind == "service-sas" else Severity.CRITICAL
        reach = ("every blob of the container or blob it names" if kind == "service-sas"
                 else "all data and service settings of the account")
        summary = f"a leaked {label} works from anywhere over {reach}"
    return KindVerdict(kind, label, state, severity, summary, tuple(can), tuple(limited),
                       tuple(dict.fromkeys(would)))


def period_seconds(text: str) -> int | None:
    """``sasExpirationPeriod`` (``DD.HH:MM:SS``) in seconds."""
    days, _, clock = text.partition(".") if "." in text else ("0", "", text)
    parts = clock.split(":")
    if not days.isdigit() or len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    h, m, sec = (int(p) for p in parts)
    return int(days) * 86400 + h * 3600 + m * 60 + sec


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_datetime(value, "time")
    except ParseError:
        return None
