"""``keyscope posture --subscription``: the management-plane client against a loopback ARM.

A real ``http.server`` on 127.0.0.1 answers with the documented response shapes of
``Microsoft.Storage/storageAccounts`` (list by subscription, ``nextLink`` paging),
``blobServices/default``, ``Microsoft.Insights/diagnosticSettings`` and
``Microsoft.Authorization`` role assignments and definitions; it throttles the first
list with a 429 and ``Retry-After``, and refuses one account's role assignments with
403. It records every request: all must be GETs, and no ``listKeys``.
"""

from __future__ import annotations

import http.server
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import jsonschema
import pytest

from keyscope.cli import main
from keyscope.posture.arm import ArmClient
from keyscope.posture.reader import Reader, ReadError, retry_after
from keyscope.verify.transport import Request, Transport, VerifyOptions
from tests.inventory_support import leak, scan
from tests.sdk import account_sas, new_key

SUB = "00000000-0000-0000-0000-0000000000aa"
RG = "rg-data"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.posture-test-token.c2lnbmF0dXJl"
NOW = "2026-12-07T12:00:00Z"
STORAGE_ACCOUNT_CONTRIBUTOR = "17d1049b-9a84-46fb-8f53-869881c3d3ab"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


def account_id(name: str) -> str:
    return (f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Storage/"
            f"storageAccounts/{name}")


def role_id(guid: str) -> str:
    return f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


WEAK = {  # a StorageV2 account as ARM returns it, every risky default left in place
    "id": account_id("weakacct"), "name": "weakacct",
    "type": "Microsoft.Storage/storageAccounts", "location": "westeurope", "kind": "StorageV2",
    "sku": {"name": "Standard_LRS", "tier": "Standard"},
    "properties": {
        "keyCreationTime": {"key1": "2021-03-01T10:00:00.1234567Z",
                            "key2": "2026-11-20T10:00:00.0000000Z"},
        "allowBlobPublicAccess": True, "minimumTlsVersion": "TLS1_0",
        "supportsHttpsTrafficOnly": False,
        "networkAcls": {"bypass": "AzureServices", "virtualNetworkRules": [], "ipRules": [],
                        "defaultAction": "Allow"},
        "encryption": {"requireInfrastructureEncryption": False, "keySource": "Microsoft.Storage",
                       "services": {"blob": {"enabled": True, "keyType": "Account"}}},
        "provisioningState": "Succeeded",
        "primaryEndpoints": {"blob": "https://weakacct.blob.core.windows.net/"},
    },
}
LOCKED = {
    "id": account_id("lockedacct"), "name": "lockedacct",
    "type": "Microsoft.Storage/storageAccounts", "location": "westeurope", "kind": "StorageV2",
    "sku": {"name": "Standard_GRS", "tier": "Standard"},
    "properties": {
        "allowSharedKeyAccess": False,
        "sasPolicy": {"sasExpirationPeriod": "1.00:00:00", "expirationAction": "Block"},
        "keyPolicy": {"keyExpirationPeriodInDays": 90},
        "keyCreationTime": {"key1": "2026-11-01T10:00:00Z", "key2": "2026-11-01T10:00:00Z"},
        "allowBlobPublicAccess": False, "minimumTlsVersion": "TLS1_2",
        "supportsHttpsTrafficOnly": True, "publicNetworkAccess": "Disabled",
        "networkAcls": {"bypass": "None", "virtualNetworkRules": [],
                        "ipRules": [{"value": "203.0.113.0/24", "action": "Allow"}],
                        "defaultAction": "Deny"},
        "encryption": {"requireInfrastructureEncryption": True, "keySource": "Microsoft.Storage"},
    },
}


def blob_service(name: str, on: bool) -> dict[str, Any]:
    return {
        "id": account_id(name) + "/blobServices/default", "name": "default",
        "type": "Microsoft.Storage/storageAccounts/blobServices",
        "properties": {
            "deleteRetentionPolicy": {"enabled": on, "days": 14, "allowPermanentDelete": False},
            "containerDeleteRetentionPolicy": {"enabled": on, "days": 14},
            "isVersioningEnabled": on, "changeFeed": {"enabled": on},
            "cors": {"corsRules": []},
        },
    }


DIAGNOSTIC = {"value": [{
    "id": account_id("lockedacct") + "/blobServices/default/providers/microsoft.insights/"
          "diagnosticSettings/to-workspace",
    "name": "to-workspace",
    "properties": {"workspaceId": "/subscriptions/x/resourceGroups/y/providers/"
                   "Microsoft.OperationalInsights/workspaces/logs",
                   "logs": [{"category": "StorageRead", "enabled": True},
                            {"category": "StorageWrite", "enabled": True},
                            {"category": "StorageDelete", "enabled": True}],
                   "metrics": [{"category": "Transaction", "enabled": True}]},
}]}


def assignment(guid: str, role: str, principal: str, kind: str, scope: str) -> dict[str, Any]:
    return {"id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}",
            "name": guid, "type": "Microsoft.Authorization/roleAssignments",
            "properties": {"roleDefinitionId": role_id(role), "principalId": principal,
                           "principalType": kind, "scope": scope}}


ROLES = {
    STORAGE_ACCOUNT_CONTRIBUTOR: {"roleName": "Storage Account Contributor", "permissions": [
        {"actions": ["Microsoft.Storage/storageAccounts/*", "Microsoft.Insights/alertRules/*"],
         "notActions": [], "dataActions": [], "notDataActions": []}]},
    READER: {"roleName": "Reader", "permissions": [
        {"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []}]},
}


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    at: float


@dataclass
class Arm:
    url: str
    seen: list[Seen] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    arm: ClassVar[Arm]
    throttled: ClassVar[set[str]] = set()

    def log_message(self, *args: object) -> None:
        pass

    def _record(self) -> str:
        self.arm.seen.append(Seen(self.command, self.path, self.headers.get("Authorization"),
                                  time.monotonic()))
        return self.path

    def do_POST(self) -> None:  # never expected: recorded, then refused
        self._record()
        self._send(405, {"error": {"code": "MethodNotAllowed", "message": "no"}})

    do_PUT = do_PATCH = do_DELETE = do_POST

    def do_GET(self) -> None:
        path = self._record()
        parts = urlsplit(path)
        p, q = parts.path, parts.query
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, {"error": {"code": "InvalidAuthenticationToken", "message": "no"}})
            return
        base = f"/subscriptions/{SUB}/providers/Microsoft.Storage/storageAccounts"
        if p == base and "api-version=2023-05-01" in q:
            if "$skiptoken" not in q:
                if "list" not in self.throttled:
                    self.throttled.add("list")
                    self._send(429, {"error": {"code": "TooManyRequests",
                                               "message": "throttled"}}, {"Retry-After": "1"})
                    return
                self._send(200, {"value": [WEAK],
                                 "nextLink": f"{self.arm.url}{base}?api-version=2023-05-01"
                                             "&$skiptoken=page2"})
            else:
                self._send(200, {"value": [LOCKED]})
            return
        for name, on in (("weakacct", False), ("lockedacct", True)):
            rid = account_id(name)
            if p == rid + "/blobServices/default":
                self._send(200, blob_service(name, on))
                return
            if p == rid + "/blobServices/default/providers/Microsoft.Insights/diagnosticSettings":
                self._send(200, DIAGNOSTIC if on else {"value": []})
                return
            if p == rid + "/providers/Microsoft.Authorization/roleAssignments":
                if on:
                    self._send(403, {"error": {"code": "AuthorizationFailed", "message":
                                     "The client does not have authorization to perform "
                                     "action 'Microsoft.Authorization/roleAssignments/read'"}})
                    return
                self._send(200, {"value": [
                    assignment("a1", STORAGE_ACCOUNT_CONTRIBUTOR, "pipeline-sp",
                               "ServicePrincipal", f"/subscriptions/{SUB}/resourceGroups/{RG}"),
                    assignment("a2", READER, "auditor", "User", f"/subscriptions/{SUB}"),
                ]})
                return
        for guid, props in ROLES.items():
            if p == role_id(guid):
                self._send(200, {"id": role_id(guid), "name": guid,
                                 "type": "Microsoft.Authorization/roleDefinitions",
                                 "properties": {**props, "type": "BuiltInRole"}})
                return
        self._send(404, {"error": {"code": "ResourceNotFound", "message": path}})

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
              ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def arm() -> Iterator[Arm]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    state = Arm(f"http://127.0.0.1:{server.server_address[1]}")
    _Handler.arm = state
    _Handler.throttled = set()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def posture(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
            arm: Arm, tmp_path: Path, *extra: str) -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(TOKEN + "\n"))
    capsys.readouterr()
    code = main(["posture", "--subscription", SUB, "--arm-token", "-", "--arm-endpoint",
                 arm.url, "--allow-internal", "--audit-log", str(tmp_path / "audit.jsonl"),
                 "--now", NOW, *extra])
    return code, capsys.readouterr().out


def test_accounts_are_read_over_pages_after_throttling_with_get_only(
    arm: Arm, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    code, out = posture(capsys, monkeypatch, arm, tmp_path, "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    jsonschema.validate(doc, json.loads(
        files("keyscope").joinpath("schemas/posture-v1.json").read_text()))

    # nothing written: every request the server received was a GET, none to listKeys
    assert arm.seen and {s.method for s in arm.seen} == {"GET"}
    assert not any("listkeys" in s.path.lower() for s in arm.seen)
    assert all(s.authorization == f"Bearer {TOKEN}" for s in arm.seen)
    # the 429 was retried after its Retry-After (1 s), then both pages were read
    lists = [s for s in arm.seen if s.path.split("?")[0].endswith("/storageAccounts")]
    assert len(lists) == 3 and "$skiptoken=page2" in lists[2].path
    assert lists[1].at - lists[0].at >= 0.95
    # the token is in no output and no audit line
    audit = (tmp_path / "audit.jsonl").read_text()
    assert TOKEN not in out and TOKEN not in audit
    assert {json.loads(line)["method"] for line in audit.splitlines()} == {"GET"}

    accounts = {a["account"]: a for a in doc["accounts"]}
    assert list(accounts) == ["weakacct", "lockedacct"]  # worst first
    weak = accounts["weakacct"]
    assert weak["resource_group"] == RG and weak["subscription"] == SUB
    codes = {c["code"] for c in weak["checks"]}
    assert codes >= {"shared-key-allowed", "no-sas-expiry-policy", "no-key-policy", "old-key",
                     "blob-public-access-allowed", "tls-below-1.2", "http-allowed",
                     "open-network", "no-infrastructure-encryption", "logging-off",
                     "soft-delete-off", "container-soft-delete-off", "versioning-off",
                     "change-feed-off", "key-listers"}
    fixes = {c["code"]: [f["command"] for f in c["fixes"]] for c in weak["checks"]}
    update = f"az storage account update --name weakacct --resource-group {RG}"
    assert f"{update} --allow-shared-key-access false" in fixes["shared-key-allowed"]
    assert (f"{update} --sas-expiration-period 1.00:00:00 --sas-expiration-action Block"
            in fixes["no-sas-expiry-policy"])
    assert f"{update} --key-exp-days 90" in fixes["no-key-policy"]
    assert (f"az storage account keys renew --account-name weakacct --resource-group {RG} "
            "--key primary") in fixes["old-key"]  # key1 from 2021; key2 is recent
    assert len([c for c in weak["checks"] if c["code"] == "old-key"]) == 1
    assert f"{update} --min-tls-version TLS1_2" in fixes["tls-below-1.2"]
    assert f"{update} --default-action Deny" in fixes["open-network"]
    assert fixes["no-infrastructure-encryption"] == [None]  # set only at creation
    logging = next(c for c in weak["checks"] if c["code"] == "logging-off")
    assert "no diagnostic setting" in logging["detail"] and logging["severity"] == "medium"
    assert "Storage Analytics logging was not read" in logging["detail"]
    blob = f"az storage account blob-service-properties update --account-name weakacct " \
           f"--resource-group {RG}"
    assert f"{blob} --enable-versioning true" in fixes["versioning-off"]
    # who may list keys: the contributor (Microsoft.Storage/storageAccounts/*), not the reader
    listers = next(c for c in weak["checks"] if c["code"] == "key-listers")
    assert "pipeline-sp" in listers["detail"] and "auditor" not in listers["detail"]
    assert listers["fixes"][0]["command"] == (
        "az role assignment delete --assignee pipeline-sp --role \"Storage Account "
        f"Contributor\" --scope /subscriptions/{SUB}/resourceGroups/{RG}")
    assert {v["state"] for v in weak["verdict"]} == {"open"}

    locked = accounts["lockedacct"]
    assert {v["state"] for v in locked["verdict"]} == {"blocked"}
    assert all(v["severity"] == "info" for v in locked["verdict"])
    assert "KeyBasedAuthenticationNotPermitted" in locked["verdict"][0]["summary"]
    assert locked["checks"] == []
    assert any("who may list keys was not read" in e and "AuthorizationFailed" in e
               for e in locked["errors"])
    assert locked["settings"]["diagnostic_logs"] == ["to-workspace"]


def test_inventory_accounts_come_first_with_their_tokens_rerated_and_results_recorded(
    arm: Arm, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    db = f"{tmp_path}/inventory.sqlite3"
    key = new_key()
    sas = account_sas("lockedacct", key, permission="rwdl",
                      expiry=datetime(2051, 10, 6, tzinfo=UTC),
                      start=datetime(2021, 10, 5, tzinfo=UTC))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(
        f'URL = "https://lockedacct.blob.core.windows.net/models/?{sas}"\n')
    leak(tmp_path / "src" / "settings.py", "weakacct")
    scan(capsys, db, str(tmp_path / "src"))

    code, out = posture(capsys, monkeypatch, arm, tmp_path, "--format", "json", f"--db={db}")
    assert code == 0, out
    doc = json.loads(out)
    names = [a["account"] for a in doc["accounts"]]
    assert names == ["weakacct", "lockedacct"]  # both in the inventory: worst first
    locked = doc["accounts"][1]
    assert locked["found_in_inventory"]
    [hit] = locked["inventory"]
    assert hit["kind"] == "account-sas" and hit["severity"] == "critical"
    assert hit["rerated"] == "info" and "refused" in hit["reason"]
    [weak_hit] = doc["accounts"][0]["inventory"]
    assert weak_hit["kind"] == "account-key" and weak_hit["rerated"] == "critical"

    from keyscope.inventory.store import open_store

    with open_store(db) as store:
        rows = store.rows("SELECT account, severity, document FROM posture_checks "
                          "ORDER BY id")
    assert [r["account"] for r in rows] == ["weakacct", "lockedacct"]
    stored = json.loads(rows[1]["document"])
    assert stored["inventory"][0]["rerated"] == "info"
    assert key not in json.dumps(rows) and TOKEN not in json.dumps(rows)
    assert sas.split("sig=")[1][:20] not in json.dumps(rows)


def test_an_account_outside_the_inventory_is_ordered_after_one_inside(
    arm: Arm, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    db = f"{tmp_path}/inventory.sqlite3"
    (tmp_path / "src").mkdir()
    leak(tmp_path / "src" / "settings.py", "lockedacct")
    scan(capsys, db, str(tmp_path / "src"))
    code, out = posture(capsys, monkeypatch, arm, tmp_path, "--format", "json", f"--db={db}")
    assert code == 0, out
    # lockedacct is harmless (blocked) but a key for it was found: it comes first
    assert [a["account"] for a in json.loads(out)["accounts"]] == ["lockedacct", "weakacct"]


def test_a_next_link_to_another_host_is_not_followed(arm: Arm) -> None:
    reader = Reader(Transport(VerifyOptions(allow_internal=True, per_host_interval=0)))
    client = ArmClient(reader, TOKEN, arm.url)
    with pytest.raises(ReadError, match="not followed"):
        list(client.pages("http://203.0.113.9/next", "List Storage Accounts"))
    assert arm.seen == []


def test_the_reader_refuses_anything_but_get(arm: Arm) -> None:
    reader = Reader(Transport(VerifyOptions(allow_internal=True, per_host_interval=0)))
    for method in ("POST", "PUT", "DELETE", "PATCH", "HEAD"):
        with pytest.raises(ReadError, match="GET requests only"):
            reader.get(Request("List Keys", method, f"{arm.url}/listKeys", f"{arm.url}/x"))
    assert arm.seen == [] and reader.sent == []


def test_retry_after_seconds_dates_and_garbage() -> None:
    assert retry_after("7") == 7.0
    assert retry_after("100000") == 60.0  # capped
    assert retry_after("Mon, 07 Dec 2026 12:00:10 GMT",
                       now=datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC).timestamp()) == 10.0
    assert retry_after("soon") == 5.0 and retry_after(None) == 5.0


def test_without_a_token_or_azure_identity_the_error_says_what_to_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:  # azure-identity is not a test dependency
        import azure.identity  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("azure-identity is installed: DefaultAzureCredential would be tried")
    code = main(["posture", "--subscription", SUB])
    assert code == 2
    err = capsys.readouterr().err
    assert "keyscope[azure]" in err and "--arm-token -" in err
