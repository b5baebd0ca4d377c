"""Fetch an account's own logs (opt-in, read-only): the classic ``$logs`` container and
the ``insights-logs-storage*`` containers diagnostic settings archive to, listed and
downloaded with the owner's credential (an account SAS with list and read, or a
connection string with the key) through verify/'s guarded transport: List Blobs and
Get Blob only, every request in the audit log, internal addresses refused unless
``--allow-internal``. Blobs are written to a private directory that usage then reads."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote

from keyscope.analyze.azure.reader import read_credentials
from keyscope.analyze.azure.sas import AzureSas
from keyscope.errors import KeyscopeError, ParseError
from keyscope.verify.azure import _base as service_base
from keyscope.verify.sharedkey import shared_key_headers
from keyscope.verify.transport import NotSent, Request, Transport, VerifyOptions

CONTAINERS = ("$logs", "insights-logs-storageread", "insights-logs-storagewrite",
              "insights-logs-storagedelete")
LIST_BYTES = 8 << 20  # one List Blobs page (5000 names at most)
MAX_BLOB = 256 << 20  # one log blob (held in memory once); a larger one is skipped
MAX_BLOBS = 100_000
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class Fetched:
    """What was downloaded (under ``directory``) and what was not."""

    directory: Path
    blobs: int = 0
    bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Account:
    base: str  # https://acct.blob.core.windows.net, or the emulator's path-style root
    shown: str
    query: str  # the SAS query ("" with a key)
    sign: Callable[[Request, str], dict[str, str]] | None


def account_from(credential: str) -> _Account:
    """The blob service root and authorization of the owner's credential."""
    try:
        found = read_credentials(credential)
    except ParseError as exc:
        raise KeyscopeError(f"--fetch-logs: {exc}") from None
    for key in found.keys:
        acct = key.account or next(iter(found.accounts), None)
        if not acct:
            continue
        loc = key.location
        base = service_base(loc, acct) if loc.host else f"https://{acct}.blob.core.windows.net"
        if base is None:
            continue

        def sign(request: Request, target: str, acct: str = acct,
                 secret: str = key.key) -> dict[str, str]:
            return shared_key_headers(request.method, target, acct, secret,
                                      dict(request.headers))

        return _Account(base, base, "", sign)
    for sas in found.sas:
        return _sas_account(sas)
    raise KeyscopeError("--fetch-logs: give an account SAS URL (ss=b, srt=co, sp=rl) or a "
                        "connection string with the account key")


def _sas_account(sas: AzureSas) -> _Account:
    loc = sas.location
    base = service_base(loc, loc.account) if loc.host else None
    if base is None:
        raise KeyscopeError("--fetch-logs: the SAS must be a URL naming the storage account")
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in sas.params.items())
    return _Account(base, base, query, None)


def fetch_logs(credential: str, directory: Path, options: VerifyOptions,
               containers: tuple[str, ...] = CONTAINERS, prefix: str = "",
               transport: Transport | None = None) -> Fetched:
    """Download every log blob of ``containers`` (names starting with ``prefix``)."""
    account = account_from(credential)
    send = transport or Transport(replace(options, max_per_host=MAX_BLOBS,
                                          per_host_interval=0.0, concurrency=1))
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    out = Fetched(directory)
    for container in containers:
        for name, size in _list(send, account, container, prefix, out):
            where = f"{container}/{name}"
            if size > MAX_BLOB:
                out.skipped.append((where, f"{size} bytes, over {MAX_BLOB}: not fetched"))
                continue
            path = f"/{quote(container)}/{quote(name)}"
            try:
                resp = send.send(_request(account, "Get Blob", path, "", MAX_BLOB + 1))
            except NotSent as exc:
                out.skipped.append((where, f"not fetched: {exc.detail}"))
                continue
            if resp.status != 200 or len(resp.body) > MAX_BLOB:
                out.skipped.append((where, f"Get Blob answered {resp.status}"))
                continue
            # numbered: a name of dots or one that differs only by unsafe characters
            # cannot reach outside the directory or overwrite another blob
            target = (directory / _SAFE_NAME.sub("_", container)
                      / f"{out.blobs:06d}-{_SAFE_NAME.sub('_', name)[-200:]}")
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(resp.body)
            out.blobs += 1
            out.bytes += len(resp.body)
    return out


def _request(account: _Account, probe: str, path: str, params: str, limit: int) -> Request:
    query = "&".join(p for p in (params, account.query) if p)
    shown_query = "&".join(p for p in (params, re.sub(r"sig=[^&]*", "sig=REDACTED",
                                                      account.query)) if p)
    url = f"{account.base}{path}" + (f"?{query}" if query else "")
    shown = f"{account.shown}{path}" + (f"?{shown_query}" if shown_query else "")
    return Request(probe, "GET", url, shown, authorize=account.sign, max_body=limit,
                   notice="read-only: your own account's logs, logged by it")


def _list(send: Transport, account: _Account, container: str, prefix: str,
          out: Fetched) -> list[tuple[str, int]]:
    """(name, size) of every blob in ``container``; a missing container is none."""
    names: list[tuple[str, int]] = []
    marker = ""
    while True:
        params = "restype=container&comp=list"
        if prefix:
            params += f"&prefix={quote(prefix, safe='')}"
        if marker:
            params += f"&marker={quote(marker, safe='')}"
        try:
            resp = send.send(_request(account, "List Blobs", f"/{quote(container)}", params,
                                      LIST_BYTES))
        except NotSent as exc:
            out.skipped.append((container, f"not listed: {exc.detail}"))
            return names
        if resp.status == 404:
            return names
        if resp.status != 200:
            out.skipped.append((container, f"List Blobs answered {resp.status}"))
            return names
        try:
            root = ET.fromstring(resp.body)
        except ET.ParseError:
            out.skipped.append((container, "List Blobs answer is not XML"))
            return names
        for blob in root.iter("Blob"):
            name = blob.findtext("Name") or ""
            size = blob.findtext("Properties/Content-Length") or "0"
            if name and len(names) < MAX_BLOBS:
                names.append((name, int(size) if size.isdigit() else 0))
        marker = root.findtext("NextMarker") or ""
        if not marker:
            return names
