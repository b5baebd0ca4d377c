"""The credentials to look for in logs (``Watched``), and where they come from: a token
given directly, a scan's JSON report, or the inventory. Never the secret itself: the
log hashes, the unsigned SAS parameters, the resource path and the leak date."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from keyscope.analyze.azure.explainer import redact_key, redact_sas
from keyscope.analyze.azure.reader import read_credentials
from keyscope.analyze.azure.signing import key_log_hash, sas_log_hash
from keyscope.analyze.fingerprint import fingerprint
from keyscope.analyze.timefmt import parse_datetime
from keyscope.errors import KeyscopeError, ParseError

_HEX64 = re.compile(r"[0-9A-Fa-f]{64}")
# SAS parameters whose exact value (to the second, an address, a principal) narrows a
# classic-log match to few tokens.
DISTINCTIVE = ("st", "sip", "skoid", "saoid", "suoid", "scid", "si", "sduoid")


@dataclass(frozen=True)
class Watched:
    """One credential looked for in logs."""

    label: str  # the redacted form shown to people
    fingerprint: str  # ks1:… as in scan reports and the inventory
    kind: str  # "sas" | "account-key"
    sas_hash: str | None = None  # SasSignature(…): upper-case hex
    key_hash: str | None = None  # key1(…)/key2(…): upper-case hex
    params: tuple[tuple[str, str], ...] = ()  # the SAS's parameters but sig, decoded
    account: str | None = None
    path: str | None = None  # "/container/blob" the token's URL names, when known
    leaked_at: datetime | None = None

    @property
    def param_map(self) -> dict[str, str]:
        return dict(self.params)

    def needles(self) -> list[bytes]:
        """Byte strings at least one of which is on every log line this credential can
        match: the hashes (both cases) and the expiry (or policy id) as logged."""
        out: list[bytes] = []
        for h in (self.sas_hash, self.key_hash):
            if h:
                out += [h.upper().encode(), h.lower().encode()]
        p = self.param_map
        if self.kind == "sas":
            if "se" in p:
                se = p["se"]
                forms = {se, quote(se, safe=""), quote(se, safe="").replace("%3A", "%3a")}
                out += [f"se={f}".encode() for f in sorted(forms)]
            elif "si" in p:
                out.append(f"si={quote(p['si'], safe='')}".encode())
        return list(dict.fromkeys(out))


def unsigned_query(params: Mapping[str, str]) -> str:
    """The SAS's parameters but ``sig`` as a query string (what the JSON report carries)."""
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items() if k != "sig")


def from_tokens(texts: Iterable[str], leaked_at: datetime | None = None) -> list[Watched]:
    """Every SAS and account key in each text (URLs, queries, connection strings)."""
    out: list[Watched] = []
    for text in texts:
        found = read_credentials(text)
        for sas in found.sas:
            params = tuple((k, v) for k, v in sas.params.items() if k != "sig")
            segments = sas.location.path_segments
            out.append(Watched(
                label=redact_sas(sas),
                fingerprint=fingerprint("azure-sas", sas.signature),
                kind="sas",
                sas_hash=sas_log_hash(sas.signature),
                params=params,
                account=sas.location.account,
                path=("/" + "/".join(segments)) if segments and not sas.location.from_context
                else None,
                leaked_at=leaked_at,
            ))
        for key in found.keys:
            out.append(Watched(
                label=redact_key(key.key),
                fingerprint=fingerprint("azure-account-key", key.key),
                kind="account-key",
                key_hash=key_log_hash(key.key),
                account=key.account,
                leaked_at=leaked_at,
            ))
    return _unique(out)


def from_report(path: Path) -> list[Watched]:
    """The Azure credentials of a ``scan``/``explain`` JSON report, by their log hashes
    and unsigned parameters; the leak date is the earliest introducing commit's."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyscopeError(f"--from-scan {path}: not a keyscope JSON report ({exc})") from None
    if not isinstance(doc, dict):
        raise KeyscopeError(f"--from-scan {path}: not a keyscope JSON report")
    out: list[Watched] = []
    for finding in doc.get("findings") or []:
        dates = [
            loc.get("git", {}).get("date")
            for loc in finding.get("locations") or []
            if isinstance(loc, dict) and isinstance(loc.get("git"), dict)
        ]
        leaked = min((d for d in (_date(x) for x in dates) if d), default=None)
        w = from_explanation(finding.get("explanation") or {}, leaked)
        if w is not None:
            out.append(w)
    for exp in doc.get("credentials") or []:
        w = from_explanation(exp, None)
        if w is not None:
            out.append(w)
    return _unique(out)


def from_explanation(exp: Mapping[str, Any], leaked_at: datetime | None) -> Watched | None:
    """A report's explanation → :class:`Watched`, or None if it has no Azure log hash."""
    logs = exp.get("log_fingerprints") or {}
    auth = str(logs.get("AuthenticationHash") or "")
    found = _HEX64.search(auth)
    if not found:
        return None
    access = exp.get("access") or {}
    h = found.group(0).upper()
    account = access.get("account") if isinstance(access, dict) else None
    if auth.startswith("SasSignature("):
        query = str(logs.get("unsigned_parameters") or "")
        return Watched(
            label=str(exp.get("redacted") or ""),
            fingerprint=str(exp.get("fingerprint") or ""),
            kind="sas",
            sas_hash=h,
            params=tuple(parse_qsl(query, keep_blank_values=True)),
            account=account if isinstance(account, str) else None,
            path=str(logs["resource_path"]) if logs.get("resource_path") else None,
            leaked_at=leaked_at,
        )
    return Watched(
        label=str(exp.get("redacted") or ""),
        fingerprint=str(exp.get("fingerprint") or ""),
        kind="account-key",
        key_hash=h,
        account=account if isinstance(account, str) else None,
        leaked_at=leaked_at,
    )


def _date(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value, "date")
    except (ParseError, ValueError):
        return None


def _unique(items: list[Watched]) -> list[Watched]:
    seen: dict[str, Watched] = {}
    for w in items:
        key = w.fingerprint or (w.sas_hash or w.key_hash or w.label)
        old = seen.get(key)
        if old is None or (w.leaked_at and (old.leaked_at is None or w.leaked_at < old.leaked_at)):
            seen[key] = w
    return list(seen.values())
