"""The management plane: storage accounts and their settings through ARM REST, GET only.

Read per subscription: ``Microsoft.Storage/storageAccounts`` (list, ``nextLink``
paging), each account's ``blobServices/default`` (soft delete, versioning, change
feed), its diagnostic settings (resource logs sent anywhere) and the role
assignments at or above it with their role definitions, to name who may list its
keys. ``listKeys`` is a POST and is never called; nothing is written.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from keyscope.posture.reader import READ_BYTES, Reader, ReadError
from keyscope.redact import mask
from keyscope.verify.transport import Request

DEFAULT_ENDPOINT = "https://management.azure.com"
# Microsoft.Storage REST API version (storageAccounts, blobServices), documented at
# learn.microsoft.com/rest/api/storagerp; 2023-05-01 returns sasPolicy, keyPolicy,
# keyCreationTime, allowSharedKeyAccess and the rest read here.
STORAGE_API = "2023-05-01"
AUTHORIZATION_API = "2022-04-01"  # Microsoft.Authorization roleAssignments/roleDefinitions
MONITOR_API = "2021-05-01-preview"  # Microsoft.Insights diagnosticSettings
LIST_KEYS_ACTION = "Microsoft.Storage/storageAccounts/listkeys/action"
MAX_PAGES = 100  # pages of one list followed at most


@dataclass
class ArmAccount:
    """One storage account as ARM describes it, plus what was read around it."""

    resource: dict[str, Any]
    subscription: str
    blob_service: dict[str, Any] | None = None
    diagnostic_settings: list[dict[str, Any]] | None = None
    key_listers: list[dict[str, str]] | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.resource.get("name", "?"))

    @property
    def resource_id(self) -> str:
        return str(self.resource.get("id", ""))

    @property
    def resource_group(self) -> str | None:
        parts = self.resource_id.split("/")
        lower = [p.lower() for p in parts]
        if "resourcegroups" in lower:
            at = lower.index("resourcegroups")
            if at + 1 < len(parts):
                return parts[at + 1]
        return None


class ArmClient:
    """GETs against one ARM endpoint with a bearer token."""

    def __init__(self, reader: Reader, token: str, endpoint: str = DEFAULT_ENDPOINT) -> None:
        self.reader = reader
        self.endpoint = endpoint.rstrip("/")
        self._token = token
        origin = urlsplit(self.endpoint)
        self._origin = (origin.scheme.lower(), origin.netloc.lower())

    def get(self, url: str, probe: str) -> dict[str, Any]:
        """One GET of ``url`` (a path below the endpoint, or a ``nextLink``) as JSON."""
        if url.startswith("/"):
            url = self.endpoint + url
        parts = urlsplit(url)
        if (parts.scheme.lower(), parts.netloc.lower()) != self._origin:
            # A nextLink elsewhere would receive the bearer token.
            raise ReadError(f"{probe}: a link to {parts.netloc or '?'} is not followed "
                            f"(only {self._origin[1]} receives the token)")
        request = Request(
            probe,
            "GET",
            url,
            url,
            headers=(("Authorization", f"Bearer {self._token}"), ("Accept", "application/json")),
            max_body=READ_BYTES,
        )
        response = self.reader.get(request)
        try:
            body = json.loads(response.body.decode("utf-8")) if response.body else {}
        except (UnicodeDecodeError, ValueError):
            body = None
        if not 200 <= response.status < 300:
            code, message = _error(body)
            text = f"{probe}: HTTP {response.status}" + (f" {code}" if code else "")
            if message:
                text += f": {message}"
            raise ReadError(mask(text), response.status, code)
        if not isinstance(body, dict):
            raise ReadError(f"{probe}: the answer is not a JSON object")
        return body

    def pages(self, path: str, probe: str) -> Iterator[dict[str, Any]]:
        """Every item of a list, following ``nextLink``."""
        url: str | None = path
        for _ in range(MAX_PAGES):
            if url is None:
                return
            page = self.get(url, probe)
            for item in page.get("value") or []:
                if isinstance(item, dict):
                    yield item
            link = page.get("nextLink")
            url = link if isinstance(link, str) and link else None
        if url is not None:
            raise ReadError(f"{probe}: more than {MAX_PAGES} pages; the rest was not read")

    def storage_accounts(self, subscription: str) -> list[ArmAccount]:
        """Every storage account of a subscription, with what was read around it."""
        path = (f"/subscriptions/{quote(subscription, safe='')}/providers/"
                f"Microsoft.Storage/storageAccounts?api-version={STORAGE_API}")
        accounts = [ArmAccount(item, subscription)
                    for item in self.pages(path, "List Storage Accounts")]
        for account in accounts:
            self._around(account)
        return accounts

    def _around(self, account: ArmAccount) -> None:
        rid = account.resource_id
        if not rid.startswith("/"):
            account.errors.append("the account has no resource id: nothing more was read")
            return
        try:
            account.blob_service = self.get(
                f"{rid}/blobServices/default?api-version={STORAGE_API}",
                "Get Blob Service Properties (ARM)",
            )
        except ReadError as exc:
            account.errors.append(exc.reason)
        try:
            account.diagnostic_settings = list(self.pages(
                f"{rid}/blobServices/default/providers/Microsoft.Insights/"
                f"diagnosticSettings?api-version={MONITOR_API}",
                "List Diagnostic Settings",
            ))
        except ReadError as exc:
            account.errors.append(exc.reason)
        try:
            account.key_listers = self.key_listers(rid)
        except ReadError as exc:
            account.errors.append(
                f"who may list keys was not read: {exc.reason} (needs "
                "Microsoft.Authorization/roleAssignments/read and roleDefinitions/read)"
            )

    def key_listers(self, resource_id: str) -> list[dict[str, str]]:
        """The role assignments at or above the account whose role allows listKeys."""
        assignments = list(self.pages(
            f"{resource_id}/providers/Microsoft.Authorization/roleAssignments"
            f"?api-version={AUTHORIZATION_API}",
            "List Role Assignments",
        ))
        roles: dict[str, tuple[str, bool]] = {}
        out: list[dict[str, str]] = []
        for assignment in assignments:
            props = assignment.get("properties") or {}
            role_id = str(props.get("roleDefinitionId") or "")
            if not role_id.startswith("/"):
                continue
            if role_id not in roles:
                definition = self.get(f"{role_id}?api-version={AUTHORIZATION_API}",
                                      "Get Role Definition")
                dprops = definition.get("properties") or {}
                roles[role_id] = (str(dprops.get("roleName") or role_id.rsplit("/", 1)[-1]),
                                  allows(dprops.get("permissions") or [], LIST_KEYS_ACTION))
            name, lists_keys = roles[role_id]
            if lists_keys:
                out.append({
                    "principal_id": str(props.get("principalId") or "?"),
                    "principal_type": str(props.get("principalType") or "?"),
                    "role": name,
                    "scope": str(props.get("scope") or "?"),
                })
        return out


def allows(permissions: list[Any], action: str) -> bool:
    """Whether a role's permission blocks grant ``action`` (wildcards, ``notActions``)."""
    action = action.lower()
    for block in permissions:
        if not isinstance(block, dict):
            continue
        granted = any(fnmatch.fnmatchcase(action, str(a).lower())
                      for a in block.get("actions") or [])
        denied = any(fnmatch.fnmatchcase(action, str(a).lower())
                     for a in block.get("notActions") or [])
        if granted and not denied:
            return True
    return False


def _error(body: object) -> tuple[str | None, str | None]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = error.get("code")
        message = error.get("message")
        return (str(code)[:100] if code else None, str(message)[:300] if message else None)
    return None, None
