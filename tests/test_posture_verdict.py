"""``posture/verdict.py`` on settings as both planes report them, and hostile answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from keyscope.model import Severity
from keyscope.posture.arm import ArmAccount, allows
from keyscope.posture.dataplane import service_properties, stored_policies
from keyscope.posture.reader import ReadError
from keyscope.posture.run import _from_arm
from keyscope.posture.types import AccountPosture
from keyscope.posture.verdict import RULES, judge, period_seconds

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def judged(settings: dict[str, Any], **fields: Any) -> AccountPosture:
    posture = AccountPosture("acct", settings=settings, **fields)
    judge(posture, NOW)
    return posture


def test_sas_expiry_policy_block_limits_sas_kinds_and_log_is_flagged() -> None:
    block = judged({"sas_policy": {"period": "1.00:00:00", "action": "Block"}})
    assert not block.checks
    verdicts = {v.kind: v for v in block.verdicts}
    assert any("refused (SAS expiration policy, Block)" in x
               for x in verdicts["account-sas"].limited_by)
    assert not any("SAS expiration" in x for x in verdicts["account-key"].limited_by)
    log = judged({"sas_policy": {"period": "30.00:00:00", "action": "Log"}})
    assert {c.code for c in log.checks} == {"sas-expiry-log-only", "sas-expiry-long"}
    none = judged({"sas_policy": None})
    [check] = none.checks
    assert check.code == "no-sas-expiry-policy" and check.severity == RULES[check.code][0]
    assert check.contains == ("account-sas", "service-sas")


def test_a_firewall_restricts_every_kind_and_shared_key_off_blocks_them() -> None:
    restricted = judged({"network": {"default_action": "Deny"}})
    assert {v.state for v in restricted.verdicts} == {"restricted"}
    assert {v.severity for v in restricted.verdicts} == {Severity.MEDIUM}
    blocked = judged({"allow_shared_key_access": False, "network": {"default_action": "Allow"}})
    assert {v.state for v in blocked.verdicts} == {"blocked"}
    assert blocked.severity == Severity.MEDIUM  # the open network is still a check
    unset = judged({"allow_shared_key_access": None})
    assert [c.code for c in unset.checks] == ["shared-key-allowed"]
    assert "null means allowed" in unset.checks[0].detail


def test_permanent_delete_and_versioning_fixes() -> None:
    posture = judged({"delete_retention": {"enabled": True, "days": 7,
                                           "allow_permanent_delete": True},
                      "arm_blob": {"versioning": False, "container_delete_retention": True,
                                   "change_feed": True}},
                     resource_id="/subscriptions/s/resourceGroups/g/providers/"
                                 "Microsoft.Storage/storageAccounts/acct")
    checks = {c.code: c for c in posture.checks}
    assert set(checks) == {"permanent-delete-allowed", "versioning-off"}
    [fix] = checks["permanent-delete-allowed"].fixes
    assert fix.command is not None and fix.command.startswith(
        "az rest --method patch --url https://management.azure.com/subscriptions/s/")
    assert fix.command.endswith(
        """--body '{"properties":{"deleteRetentionPolicy":{"enabled":true,"days":14,"""
        """"allowPermanentDelete":false}}}'""")

def test_period_and_role_wildcards() -> None:
    assert period_seconds("1.00:00:00") == 86400
    assert period_seconds("00:30:00") == 1800
    assert period_seconds("x.1:2") is None
    action = "Microsoft.Storage/storageAccounts/listkeys/action"
    assert allows([{"actions": ["*"]}], action)
    assert allows([{"actions": ["Microsoft.Storage/*"]}], action)
    assert not allows([{"actions": ["*/read"]}], action)
    assert not allows([{"actions": ["*"], "notActions": ["Microsoft.Storage/*/listkeys/action"]}],
                      action)
    assert not allows(["junk", {"actions": "not a list"}], action)


@pytest.mark.parametrize("properties", [
    [], "x", {"networkAcls": "x", "encryption": [], "sasPolicy": 3, "keyPolicy": "y",
              "keyCreationTime": {"key1": 5, "key2": "not a date"}},
    {"networkAcls": {"ipRules": "many"}, "allowSharedKeyAccess": "maybe"},
])
def test_hostile_arm_answers_do_not_crash(properties: Any) -> None:
    account = ArmAccount({"id": "/subscriptions/s/resourceGroups/g/x", "name": "acct",
                          "properties": properties}, "s",
                         blob_service={"properties": {"changeFeed": 1,
                                                      "deleteRetentionPolicy": "on"}},
                         diagnostic_settings=[{"properties": {"logs": "all"}}, "junk"])
    posture = AccountPosture("acct")
    _from_arm(posture, account)
    judge(posture, NOW)
    assert len(posture.verdicts) == 3


def test_hostile_service_answers_are_refused_or_read_safely() -> None:
    with pytest.raises(ReadError, match="document type"):
        service_properties(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')
    with pytest.raises(ReadError, match="not XML"):
        service_properties(b"\x00\xff not xml")
    assert stored_policies(b"") == []
    empty = service_properties(b"<StorageServiceProperties/>")
    assert empty["logging"] is None and empty["delete_retention"]["enabled"] is False
