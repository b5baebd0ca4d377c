"""Is a log request one of a watched credential's? By ``AuthenticationHash`` (exact)
when the log carries it; else, for a SAS, by its unsigned parameters and path (classic
``$logs``), with the strength of that match stated."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from keyscope.analyze.azure.sas import KNOWN, split_query
from keyscope.errors import ParseError
from keyscope.usage.records import LogRecord
from keyscope.usage.watched import DISTINCTIVE, Watched

EXACT = "exact"  # the token's own SasSignature / key hash is on the request
STRONG = "strong"  # every signed parameter equal, one of them distinctive
WEAK = "weak"  # every signed parameter equal, none distinctive (another token may share them)
STRENGTHS = (EXACT, STRONG, WEAK)
SIGNERS = ("key1", "key2", "user-delegation", "system-1")
_PART = re.compile(r"([A-Za-z0-9-]+)\(([0-9A-Fa-f]{64})\)")
_SECONDS = re.compile(r"T\d{2}:\d{2}:\d{2}")


def hash_parts(token_hash: str) -> dict[str, str]:
    """``key1(H),SasSignature(H)`` → {"key1": H, "SasSignature": H} (upper-case);
    a bare hash (OAuth) → {"bearer": H}."""
    parts = {name: value.upper() for name, value in _PART.findall(token_hash)}
    bare = token_hash.strip()
    if not parts and len(bare) == 64:
        parts["bearer"] = bare.upper()
    return parts


def match(rec: LogRecord, w: Watched) -> tuple[str, str | None] | None:
    """(strength, signing key name or None) when ``rec`` was made with ``w``."""
    if rec.token_hash:
        parts = hash_parts(rec.token_hash)
        signer = next((name for name in SIGNERS if name in parts), None)
        if w.sas_hash and parts.get("SasSignature") == w.sas_hash:
            return EXACT, signer
        if w.key_hash:
            for name in ("key1", "key2"):
                if parts.get(name) == w.key_hash:
                    return EXACT, name
        return None
    if w.kind != "sas" or not rec.uri:
        return None
    return _by_parameters(rec, w)


def _by_parameters(rec: LogRecord, w: Watched) -> tuple[str, str | None] | None:
    try:
        parts = urlsplit(rec.uri)
        pairs = split_query(parts.query)
    except (ParseError, ValueError):
        return None
    logged = {k: v for k, v in pairs.items() if k in KNOWN and k != "sig"}
    mine = w.param_map
    if logged != mine:
        return None
    if w.account and rec.account and rec.account != w.account:
        return None
    if not _within(rec, w):
        return None
    distinctive = any(k in mine for k in DISTINCTIVE) or bool(
        _SECONDS.search(mine.get("se", ""))
    )
    return (STRONG if distinctive else WEAK), None


def _within(rec: LogRecord, w: Watched) -> bool:
    """A service SAS works on its own resource only: the request's object must be it
    (blob, file) or lie in it (container, share, directory)."""
    resource = w.param_map.get("sr")
    if resource is None or not w.path:
        return True  # an account SAS, or a token whose URL path is unknown
    logged = _object_path(rec)
    if logged is None:
        return True
    mine = w.path.strip("/").split("/")
    if resource in ("c", "s"):
        return logged[:1] == mine[:1]
    if resource == "d":
        return logged[: len(mine)] == mine
    return logged == mine


def _object_path(rec: LogRecord) -> list[str] | None:
    """The container/blob segments of the request, from ObjectKey (``/acct/c/b``)."""
    key = rec.object_key.strip()
    if key.startswith("/"):
        segments = key.split("/")[2:]  # "", account, container, …
        return [s for s in segments if s] or None
    path = unquote(urlsplit(rec.uri).path)
    segments = [s for s in path.split("/") if s]
    return segments or None
