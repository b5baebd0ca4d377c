"""Recompute SAS signatures (string-to-sign by type and version) and log fingerprints.

A co-leaked account key lets keyscope prove, offline, whether a SAS was signed with
it. The string-to-sign layouts follow Microsoft's
"Create an account SAS" / "Create a service SAS" pages, version by version.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from keyscope.analyze.azure.sas import AzureSas

OVERRIDE_FIELDS = ("rscc", "rscd", "rsce", "rscl", "rsct")


class SigningUnavailable(Exception):
    """The string-to-sign cannot be rebuilt from what the token and URL show."""


def hmac_sign(key_b64: str, string_to_sign: str) -> str:
    key = base64.b64decode(key_b64)
    digest = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sas_log_hash(signature: str) -> str:
    """``SasSignature(...)`` in Azure Monitor's AuthenticationHash: SHA-256 of the Base64 text."""
    return hashlib.sha256(signature.encode("ascii")).hexdigest().upper()


def key_log_hash(key_b64: str) -> str:
    """``key1(...)``/``key2(...)`` in AuthenticationHash: SHA-256 of the decoded key bytes."""
    return hashlib.sha256(base64.b64decode(key_b64)).hexdigest().upper()


def signed_with(sas: AzureSas, account: str, key_b64: str) -> bool:
    """True when ``key_b64`` produced this SAS's signature: an account key, or for a user
    delegation SAS the delegation key's value."""
    sts = string_to_sign(sas, account)
    try:
        expected = hmac_sign(key_b64, sts)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(expected, sas.signature)


def string_to_sign(sas: AzureSas, account: str) -> str:
    """The exact text Azure signs for this token. Raises SigningUnavailable."""
    p = sas.params
    if sas.kind == "account":
        fields = [
            account,
            p.get("sp", ""),
            p["ss"],
            p["srt"],
            p.get("st", ""),
            p.get("se", ""),
            p.get("sip", ""),
            p.get("spr", ""),
            p["sv"],
        ]
        if _at_least(sas.version, "2020-12-06"):
            fields.append(p.get("ses", ""))
        return "\n".join(fields) + "\n"
    service = sas.service
    if service is None:
        raise SigningUnavailable("the service (queue or table) is only in the URL; give the URL")
    if "srh" in p or "srq" in p:
        raise SigningUnavailable("the signed request header/query values are not in the token")
    head = [p.get("sp", ""), p.get("st", ""), p.get("se", ""), canonical_resource(sas, account)]
    if sas.kind == "user-delegation":
        head += [p.get(k, "") for k in ("skoid", "sktid", "skt", "ske", "sks", "skv")]
        if service in ("blob", "dfs"):
            head += _ud_blob_fields(sas)
        else:
            head += [p.get("skdutid", ""), p.get("sduoid", "")]
    else:
        head.append(p.get("si", ""))
    common = [p.get("sip", ""), p.get("spr", ""), p.get("sv", "")]
    overrides = [p.get(f, "") for f in OVERRIDE_FIELDS]
    if service in ("blob", "dfs"):
        if _at_least(sas.version, "2018-11-09"):
            tail = [p.get("sr", ""), sas.snapshot or sas.version_id or ""]
            if _at_least(sas.version, "2020-12-06"):
                tail.append(p.get("ses", ""))
            if sas.kind == "user-delegation" and _at_least(sas.version, "2026-04-06"):
                tail += ["", ""]  # empty signed request header and query blocks
            fields = head + common + tail + overrides
        elif _at_least(sas.version, "2015-04-05"):
            fields = head + common + overrides
        else:
            fields = [*head, p.get("sv", ""), *overrides]
    elif service == "file":
        fields = head + common + overrides
    elif service == "queue":
        fields = head + common
    elif service == "table":
        fields = head + common + [p.get(k, "") for k in ("spk", "srk", "epk", "erk")]
    else:
        raise SigningUnavailable(f"no string-to-sign layout for {service}")
    return "\n".join(fields)


def _ud_blob_fields(sas: AzureSas) -> list[str]:
    """The version-dependent user delegation fields after ``skv`` (blob/DFS)."""
    p = sas.params
    fields: list[str] = []
    if _at_least(sas.version, "2020-02-10"):
        fields += [p.get("saoid", ""), p.get("suoid", ""), p.get("scid", "")]
    if _at_least(sas.version, "2025-07-05"):
        fields += [p.get("skdutid", ""), p.get("sduoid", "")]
    return fields


def canonical_resource(sas: AzureSas, account: str) -> str:
    """``/blob/acct/container/blob`` and its file, queue and table forms."""
    seg = sas.location.path_segments
    service = sas.service
    if service == "table":
        name = sas.table_name or (seg[0].split("(")[0] if seg else None)
        if not name:
            raise SigningUnavailable("the table name (tn) is needed")
        return f"/table/{account}/{name.lower()}"
    if not seg:
        raise SigningUnavailable(
            "the resource path is only in the URL; give the full URL to check the signature"
        )
    if service == "queue":
        return f"/queue/{account}/{seg[0]}"
    prefix = "file" if service == "file" else "blob"
    if (service == "file" and sas.resource == "s") or sas.resource == "c":
        return f"/{prefix}/{account}/{seg[0]}"
    return f"/{prefix}/{account}/" + "/".join(seg)


def _at_least(version: str | None, floor: str) -> bool:
    return version is not None and version >= floor
