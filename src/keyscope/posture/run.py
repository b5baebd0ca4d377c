"""``keyscope posture`` end to end: read both planes, judge, order, record."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keyscope.analyze.timefmt import iso
from keyscope.errors import KeyscopeError
from keyscope.posture import ledger, render, verdict
from keyscope.posture.arm import DEFAULT_ENDPOINT, ArmAccount, ArmClient
from keyscope.posture.dataplane import DataPlane, read_data_plane
from keyscope.posture.reader import Reader, ReadError
from keyscope.posture.types import AccountPosture, PostureReport
from keyscope.redact import mask
from keyscope.verify.transport import Transport, VerifyOptions

ARM_SCOPE = "https://management.azure.com/.default"


@dataclass(frozen=True)
class PostureOptions:
    """What to read and how; nothing is read that the user did not name."""

    now: datetime
    subscriptions: tuple[str, ...] = ()
    arm_token: str | None = None  # None: azure-identity's DefaultAzureCredential
    arm_endpoint: str = DEFAULT_ENDPOINT
    connection_string: str | None = None
    transport: VerifyOptions = field(default_factory=lambda: VerifyOptions(
        per_host_interval=0.1, max_per_host=5000, timeout=30.0))
    db: str | None = None


def run_posture(options: PostureOptions,
                sleep: Callable[[float], None] = time.sleep) -> PostureReport:
    """Read, judge and order every account; record them when ``options.db`` is set."""
    if not options.subscriptions and options.connection_string is None:
        raise KeyscopeError("posture: give --subscription ID (management plane) and/or "
                            "--connection-string CS (data plane)")
    reader = Reader(Transport(options.transport), sleep=sleep)
    accounts: dict[str, AccountPosture] = {}
    notes = ["listKeys (a POST) is never called; who may list keys is read from role "
             "assignments and role definitions with GET"]
    if options.subscriptions:
        client = ArmClient(reader, arm_token(options.arm_token), options.arm_endpoint)
        for subscription in options.subscriptions:
            try:
                found = client.storage_accounts(subscription)
            except ReadError as exc:
                raise KeyscopeError(f"subscription {subscription}: {exc.reason}") from None
            for account in found:
                posture = accounts.setdefault(account.name, AccountPosture(account.name))
                _from_arm(posture, account)
    else:
        notes.append("management plane not read (no --subscription): sasPolicy, keyPolicy, "
                     "key ages, network rules, versioning and who may list keys are unknown")
    if options.connection_string is not None:
        plane = read_data_plane(options.connection_string, reader)
        posture = accounts.setdefault(plane.account, AccountPosture(plane.account))
        _from_data_plane(posture, plane)
    else:
        notes.append("data plane not read (no --connection-string): logging, CORS, public "
                     "containers and stored access policies are unknown")
    for posture in accounts.values():
        verdict.judge(posture, options.now)
    ordered = list(accounts.values())
    if options.db is not None:
        from keyscope.inventory.store import open_store

        with open_store(options.db) as store:
            recorded = ledger.found_credentials(store, list(accounts))
            for posture in ordered:
                ledger.rerate(posture, recorded.get(posture.account, []))
            ordered.sort(key=lambda a: (not a.inventory, -a.severity, a.account))
            ledger.record(store, ordered, [render.account_data(a) for a in ordered],
                          options.now)
    else:
        ordered.sort(key=lambda a: (-a.severity, a.account))
    return PostureReport(ordered, list(reader.sent), notes, iso(options.now) or "")


def arm_token(given: str | None) -> str:
    """The bearer token for ARM: the one given, else azure-identity's."""
    if given:
        return given
    try:
        identity: Any = importlib.import_module("azure.identity")
    except ImportError:
        raise KeyscopeError(
            "posture --subscription needs a management token: install the extra "
            "(pip install 'keyscope[azure]', for azure-identity's DefaultAzureCredential: "
            "az login, environment, managed identity) or pipe one into --arm-token -"
        ) from None
    try:
        return str(identity.DefaultAzureCredential().get_token(ARM_SCOPE).token)
    except Exception as exc:  # any credential failure is one message
        raise KeyscopeError(f"no management token: {type(exc).__name__}: "
                            f"{mask(str(exc))[:300]}") from None


def _from_arm(posture: AccountPosture, account: ArmAccount) -> None:
    p = _obj(account.resource.get("properties"))
    posture.sources.append("management plane")
    posture.subscription = account.subscription
    posture.resource_group = account.resource_group
    posture.resource_id = account.resource_id or None
    posture.errors.extend(account.errors)
    s = posture.settings
    s["allow_shared_key_access"] = p.get("allowSharedKeyAccess")
    sas = p.get("sasPolicy")
    s["sas_policy"] = ({"period": sas.get("sasExpirationPeriod"),
                        "action": sas.get("expirationAction") or "Log"}
                       if isinstance(sas, dict) else None)
    key_policy = p.get("keyPolicy")
    s["key_policy_days"] = (key_policy.get("keyExpirationPeriodInDays")
                            if isinstance(key_policy, dict) else None)
    created = p.get("keyCreationTime")
    s["key_created"] = ({k: v for k, v in created.items() if isinstance(v, str)}
                        if isinstance(created, dict) else None)
    s["allow_blob_public_access"] = p.get("allowBlobPublicAccess")
    s["minimum_tls_version"] = p.get("minimumTlsVersion")
    s["https_only"] = p.get("supportsHttpsTrafficOnly")
    acl = _obj(p.get("networkAcls"))
    s["network"] = {
        "default_action": acl.get("defaultAction") or "Allow",
        "bypass": acl.get("bypass"),
        "ip_rules": len(_list(acl.get("ipRules"))),
        "virtual_network_rules": len(_list(acl.get("virtualNetworkRules"))),
        "public_network_access": p.get("publicNetworkAccess"),
    }
    encryption = _obj(p.get("encryption"))
    s["require_infrastructure_encryption"] = bool(
        encryption.get("requireInfrastructureEncryption"))
    s["key_listers"] = account.key_listers
    if account.blob_service is not None:
        bp = _obj(account.blob_service.get("properties"))
        blob_retention = _obj(bp.get("deleteRetentionPolicy"))
        container_retention = _obj(bp.get("containerDeleteRetentionPolicy"))
        s["arm_blob"] = {
            "delete_retention": bool(blob_retention.get("enabled")),
            "container_delete_retention": bool(container_retention.get("enabled")),
            "versioning": bool(bp.get("isVersioningEnabled")),
            "change_feed": bool(_obj(bp.get("changeFeed")).get("enabled")),
        }
        s.setdefault("delete_retention", {
            "enabled": bool(blob_retention.get("enabled")),
            "days": blob_retention.get("days"),
            "allow_permanent_delete": blob_retention.get("allowPermanentDelete"),
        })
    if account.diagnostic_settings is not None:
        s["diagnostic_logs"] = [
            str(d.get("name") or "?") for d in account.diagnostic_settings if isinstance(d, dict)
            if any(isinstance(log, dict) and log.get("enabled")
                   for log in _list(_obj(d.get("properties")).get("logs")))
        ]


def _from_data_plane(posture: AccountPosture, plane: DataPlane) -> None:
    posture.sources.append("data plane")
    posture.endpoint = plane.endpoint
    posture.errors.extend(plane.errors)
    s = posture.settings
    with_key = plane.signed_with_key
    if plane.service is not None:
        s.update(plane.service)
        if with_key and "allow_shared_key_access" not in s:
            s["allow_shared_key_access"] = True  # observed: Shared Key was just accepted
    elif with_key and any("KeyBasedAuthenticationNotPermitted" in e for e in plane.errors):
        s["allow_shared_key_access"] = False
    if plane.containers is not None:
        s["containers"] = plane.containers


def _obj(value: object) -> dict[str, Any]:
    """A JSON object, or an empty one for anything else (an answer is not trusted)."""
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
