"""Helpers that mint real SAS tokens with the Azure SDKs, for tests."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from urllib.parse import quote

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def new_key() -> str:
    """A fresh random account key in Azure's format (64 bytes, Base64)."""
    return base64.b64encode(os.urandom(64)).decode()


def blob_url(account: str, container: str, blob: str | None, sas: str,
             host: str = "blob.core.windows.net") -> str:
    path = quote(container)
    if blob is not None:
        path += "/" + quote(blob)
    return f"https://{account}.{host}/{path}?{sas}"


def account_sas(account: str, key: str, *, services: str = "bfqt", resource_types: str = "sco",
                permission: str = "rwdlacup", expiry: datetime, start: datetime | None = None,
                ip: str | None = None, protocol: str | None = None) -> str:
    from azure.storage.blob import generate_account_sas

    return generate_account_sas(account, key, resource_types=resource_types,
                                permission=permission, expiry=expiry, start=start, ip=ip,
                                services=services, protocol=protocol)


def incident_url(account: str, key: str) -> str:
    """The 2023 leak's shape: account SAS, every service, full control, until 2051."""
    sas = account_sas(account, key, expiry=datetime(2051, 10, 6, 7, 9, 59, tzinfo=UTC),
                      start=datetime(2021, 10, 5, 23, 9, 59, tzinfo=UTC),
                      protocol="https,http")
    return f"https://{account}.blob.core.windows.net/models/checkpoint.ckpt?{sas}"
