"""Stable, keyed fingerprints of secrets: the same secret always gets the same id,
and the id reveals nothing about the secret (HMAC-SHA256)."""

from __future__ import annotations

import hmac
import os

DEFAULT_KEY = b"keyscope/fingerprint/v1"
ENV = "KEYSCOPE_FINGERPRINT_KEY"


def fingerprint(kind: str, secret: str) -> str:
    """``ks1:`` + 32 hex digits. Set KEYSCOPE_FINGERPRINT_KEY for a private keyspace."""
    key = os.environ.get(ENV, "").encode() or DEFAULT_KEY
    return "ks1:" + hmac.digest(key, f"{kind}\0{secret}".encode(), "sha256")[:16].hex()
