"""From a rule's captured value to explained Azure credentials (scan path).

Each parser trims the value to the credential, reads it strictly (a value that does
not parse is not a credential), finds context the value lacks (the account name
next to a bare key), and drops placeholders and emulator credentials.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import lru_cache

from keyscope.analyze.azure.explainer import explain_found
from keyscope.analyze.azure.filters import other_service, suppressed
from keyscope.analyze.azure.keys import AzureAccountKey, parse_account_key
from keyscope.analyze.azure.reader import ReadResult, read_credentials
from keyscope.analyze.azure.sas import KNOWN as SAS_PARAMS
from keyscope.analyze.azure.sas import AzureSas
from keyscope.analyze.policy import DEFAULT_POLICY, Policy
from keyscope.analyze.textforms import join_wrapped, unescape_layers
from keyscope.errors import ParseError
from keyscope.providers.interface import Candidate, Rejected

_SCHEME = re.compile(r"(?i)\b(?:https?|wss?)://")
_ACCOUNT_CONTEXT = (
    re.compile(r"(?i)AccountName\s*=\s*([a-z0-9]{3,24})\b"),
    re.compile(r"(?i)--account-name[\s=]+[\"']?([a-z0-9]{3,24})\b"),
    re.compile(
        r"(?i)(?:storage_?account(?:_?name)?|account_?name|accountName|STORAGE_ACCOUNT(?:_NAME)?)"
        r"[\"']?\s*[:=]\s*[\"']?([a-z0-9]{3,24})[\"']?"
    ),
    # Hadoop's fs.azure.account.key.<account>.dfs.core.windows.net setting
    re.compile(r"(?i)fs\.azure\.account\.key\.([a-z0-9]{3,24})\.(?:blob|dfs)\.core\."),
    # SDK credentials: StorageCredentials("account", key), StorageSharedKeyCredential(…)
    re.compile(
        r"(?:StorageCredentials|SharedKeyCredential|NamedKeyCredential)\s*\(\s*"
        r"(?:account_?name\s*[:=]\s*)?[\"']([a-z0-9]{3,24})[\"']"
    ),
)
# Each pattern runs only on a context holding its word (lower case): a key's context is
# read for every key candidate, and a pattern without a literal start is slow in ``re``.
_ACCOUNT_WORDS = ("accountname", "--account-name", "account", "fs.azure.account.key.", "credential")
# a storage host, with or without scheme (URLs, //host/share mounts, cmdkey /add:host):
# found by its suffix, then the name just before it
_HOST_SUFFIX = re.compile(r"(?i)\.(?:blob|dfs|file|queue|table)\.core\.")
_HOST_NAME = re.compile(r"(?i)(?<![a-z0-9.$%{_-])[a-z0-9]{3,24}\Z")
# the name followed by a host's labels (Hadoop's setting), not by nothing
_HOST_CONTEXT = (_ACCOUNT_CONTEXT[3],)
# The case-insensitive patterns for lower-case text (None: the pattern is case-sensitive,
# or has an upper-case escape such as \S that lower case would change).
_FOLDED = tuple(
    re.compile(p.pattern.removeprefix("(?i)").lower())
    if p.flags & re.IGNORECASE and not re.search(r"\\[A-Z]", p.pattern)
    else None
    for p in _ACCOUNT_CONTEXT
)
# What an account name written in code is when it is no literal: an object or module
# (``self.account_name``, ``var.x``), a longer identifier (``account_name``), a call or index.
_IDENTIFIER_AFTER = frozenset("._-([{}>$")
_TEMPLATE_BEFORE = frozenset("$%{_@")
# Unquoted words that name a value instead of being one (``account_name = name``).
_NOT_NAMES = frozenset(
    "self this cls var vars local locals each module data env process config settings "
    "args kwargs params props options opts input inputs os none null nil undefined true false "
    "name account storage accountname storageaccount storageaccountname string str".split()
)
_ENDPOINT = re.compile(
    r"(?i)\bhttps?://(?P<account>[a-z0-9]{3,24})\.(?:blob|dfs|file|queue|table)\."
    r"core\.(?:windows\.net|usgovcloudapi\.net|chinacloudapi\.cn)(?:/[^\s\"'`?#<>]*)?"
)
CONTEXT_LINES = 6
KEY_LABEL_WINDOW = 64
_KEY_LABEL = re.compile(r"(?i)key|secret|credential|pass|pwd")
_WORD = re.compile(r"[A-Za-z0-9]")
_STORAGE_LABEL = re.compile(r"(?i)storage|account|blob|fs\.azure|wasb|abfs")
_VALUE_TAG = re.compile(r"(?i)</?value>")
_DIGEST_LABEL = re.compile(r"(?i)sha-?(?:256|384|512)|digest|checksum|integrity|hash")
_CONCAT = re.compile(r"""["'][ \t]*\+[ \t]*\r?\n[ \t]*["']|[ \t]*\+[ \t]*\r?\n[ \t]*["']""")
_NEWLINE = re.compile(r"""["']?[ \t]*\r?\n[ \t]*["']?""")


def sas_candidates(
    value: str,
    now: datetime,
    policy: Policy = DEFAULT_POLICY,
    context: Callable[[], str] | None = None,
) -> list[Candidate | Rejected]:
    """A SAS URL or bare query. A bare query's account comes from ``context`` (the
    lines around it: ``AZURE_STORAGE_ACCOUNT=…``, a storage host), when it names one."""
    reason = _sas_rejection(value)
    if reason is not None:  # looked for context only once the value itself holds
        return [Rejected(reason)]
    text = trim_sas(value)
    account = None
    if context is not None and not _SCHEME.match(text):
        around = context()
        account = account_near(around)
        url = endpoint_near(around, account) if account else None
        if url is not None:
            paired = _read(f"{url}?{text.lstrip('?')}")
            if not isinstance(paired, Rejected):
                for i, sas in enumerate(paired.sas):
                    loc = replace(sas.location, from_context=True)
                    paired.sas[i] = replace(sas, location=loc)
                return _explained(paired, now, policy)
    return _explained(_read(text, account), now, policy)


@lru_cache(maxsize=1024)
def _sas_rejection(value: str) -> str | None:
    """Why ``value`` is no SAS at all, whatever its context; cached, as a file may
    repeat one broken value thousands of times."""
    found = _read(trim_sas(value))
    return found.reason if isinstance(found, Rejected) else None


def endpoint_near(context: str, account: str) -> str | None:
    """The storage URL of ``account`` nearest the middle of ``context`` (a bare SAS
    query's endpoint, e.g. ``AZURE_CONTAINER_URL=…`` on the line above), unless that
    URL carries a SAS of its own."""
    middle = len(context) // 2
    best: tuple[int, str] | None = None
    for m in _ENDPOINT.finditer(context):
        if m.group("account").lower() != account or context[m.end() : m.end() + 1] == "?":
            continue
        distance = abs(m.start() - middle)
        if best is None or distance < best[0]:
            best = (distance, m.group(0).rstrip("/.,;:)"))
    return best[1] if best else None


def connection_string_candidates(
    value: str, now: datetime, policy: Policy = DEFAULT_POLICY
) -> list[Candidate | Rejected]:
    # "…" +\n "…" (string concatenation) joins with nothing; a plain line break
    # separates two settings.
    text = _CONCAT.sub("", value)
    text = _NEWLINE.sub(";", text).strip().strip("\"';")
    text = re.sub(r";{2,}", ";", text)
    out: list[Candidate | Rejected] = []
    for one in split_connection_strings(text):
        out.extend(_explained(_read(one), now, policy))
    return out


def split_connection_strings(text: str) -> list[str]:
    """Settings one after another that repeat a setting are two connection strings: a
    storage one, and a look-alike (``AccountKey=…`` of Cosmos DB) on the line below."""
    groups: list[list[str]] = [[]]
    names: set[str] = set()
    for part in text.split(";"):
        name = part.split("=", 1)[0].strip().lower()
        if name in names:
            groups.append([])
            names = set()
        names.add(name)
        groups[-1].append(part)
    return [";".join(g) for g in groups]


def account_key_candidates(
    value: str, context: str, prefix: str, now: datetime, policy: Policy = DEFAULT_POLICY
) -> list[Candidate | Rejected]:
    """A bare key counts only when the text before it on its line names it a key
    (``access_key =``, ``--account-key``, ``"accountKey":``) and its account name is
    near: a SHA-512 digest has exactly the same shape."""
    label = key_label(prefix, context, value)
    if _DIGEST_LABEL.search(label) or not _KEY_LABEL.search(label):
        return [Rejected("88-character Base64 value not labelled as a key")]
    around = _enclosing_string(context, value)
    if not _STORAGE_LABEL.search(label):
        # "Key": "…" says nothing of its service; the line above may ("Endpoint": …)
        around += " " + _line_above(context, value)
    lookalike = other_service(label + " " + around)
    if lookalike:
        return [Rejected(lookalike)]
    account = account_near(context)
    if account is None:
        return [Rejected("no account name near the key")]
    try:
        key = parse_account_key(value, account)
    except ParseError as exc:
        return [Rejected(str(exc))]
    return _explained(ReadResult(keys=[key], accounts=[account]), now, policy)


def key_label(prefix: str, context: str, value: str) -> str:
    """The text that names a key: what precedes it on its line, or, when that is only
    punctuation (``"…"`` ⏎ or ``<value>…``), the end of the line above
    (``"fs.azure.account.key.…":`` ⏎ ``"<key>"``, ``StorageCredentials("acct",`` ⏎ ``"<key>"``)."""
    label = prefix[-KEY_LABEL_WINDOW:]
    if _WORD.search(_VALUE_TAG.sub("", label)):
        return label
    at = _centre(context, value)
    if at < 0:
        return label
    line_start = context.rfind("\n", 0, at)
    if line_start <= 0:
        return label
    above = context[context.rfind("\n", 0, line_start) + 1 : line_start].rstrip()
    return above[-KEY_LABEL_WINDOW:] + label


def _centre(context: str, value: str) -> int:
    """Where ``value`` sits in ``context`` (the lines around it are centred on it)."""
    at = (len(context) - len(value)) // 2
    return at if context[at : at + len(value)] == value else context.find(value)


def _enclosing_string(context: str, value: str) -> str:
    """The quoted string (or, unquoted, the line) that holds ``value``: a connection
    string around a key, which names its service."""
    at = _centre(context, value)
    if at < 0:
        return ""
    end = at + len(value)
    line_start = context.rfind("\n", 0, at) + 1
    line_end = context.find("\n", end)
    line_end = len(context) if line_end < 0 else line_end
    if context[at - 1 : at] in ("'", '"') and context[end : end + 1] == context[at - 1 : at]:
        return ""  # the key alone in quotes: its label says what it is
    opened = max(context.rfind('"', line_start, at), context.rfind("'", line_start, at))
    closed = [
        i for i in (context.find('"', end, line_end), context.find("'", end, line_end)) if i >= 0
    ]
    return context[opened + 1 if opened >= 0 else line_start : min(closed) if closed else line_end]


def _line_above(context: str, value: str) -> str:
    at = _centre(context, value)
    line_start = context.rfind("\n", 0, max(at, 0))
    if line_start <= 0:
        return ""
    return context[context.rfind("\n", 0, line_start) + 1 : line_start]


def account_near(context: str) -> str | None:
    """The account name closest to the middle of ``context`` (key lines ± a few), taken
    only from literal text: ``account_name=self.account_name``, ``${var.account}`` or
    ``%s`` name none."""
    middle = len(context) // 2
    best: tuple[int, str] | None = None
    for start, end in _names(context):
        distance = abs(start - middle)
        if best is None or distance < best[0]:
            best = (distance, context[start:end].lower())
    return best[1] if best else None


def _names(context: str) -> list[tuple[int, int]]:
    """Where account names are written out in ``context``."""
    lower = context.lower()
    # the same offsets in lower case (ASCII): there a pattern can run case-sensitively,
    # which ``re`` does several times faster
    folded = len(lower) == len(context)
    spans: list[tuple[int, int]] = []
    for word, pattern, fast in zip(_ACCOUNT_WORDS, _ACCOUNT_CONTEXT, _FOLDED, strict=True):
        if word in lower:
            host = pattern in _HOST_CONTEXT
            found = fast.finditer(lower) if folded and fast else pattern.finditer(context)
            spans.extend(
                m.span(1) for m in found if literal_name(context, m.start(1), m.end(1), host=host)
            )
    if ".core." in lower:
        for m in _HOST_SUFFIX.finditer(context):
            name = _HOST_NAME.search(context, max(0, m.start() - 24), m.start())
            if name is not None:
                spans.append(name.span())
    return spans


def literal_name(text: str, start: int, end: int, host: bool = False) -> bool:
    """``text[start:end]`` is an account name written out, not an identifier or a
    template's placeholder: not part of ``self.x``, ``this.x``, ``var.x``, ``x_name``,
    ``f(x)``, ``${x}``, ``{{ x }}``, ``%s``, ``$VAR``; unquoted, not a word such as
    ``self`` or ``name``. ``host``: the name is a host's first label (``x.blob.core…``)."""
    before = text[start - 1 : start]
    if before in _TEMPLATE_BEFORE:
        return False
    if host:
        return True
    after = text[end : end + 1]
    if after in _IDENTIFIER_AFTER or (after.isalnum() and after.isascii()):
        return False
    quoted = before in ("'", '"') and after == before
    return quoted or text[start:end].lower() not in _NOT_NAMES


def trim_sas(value: str) -> str:
    """Join a value wrapped over lines, and cut what the capture took before the URL
    or query: ``url=``, ``AZURE_SAS=``."""
    value = unescape_layers(join_wrapped(value))
    anchor = value.lower().rfind("sig")
    schemes = [m.start() for m in _SCHEME.finditer(value, 0, max(anchor, 0))]
    if schemes:
        return value[schemes[-1] :]
    q = value.rfind("?", 0, max(anchor, 0))
    text = value[q + 1 :] if q >= 0 else value
    while "=" in text:
        name = text.split("=", 1)[0].lower()
        if name in SAS_PARAMS or "%" in name or "\\" in name or "&" in name:
            break
        text = text.split("=", 1)[1]
    return text


def _read(text: str, account: str | None = None) -> ReadResult | Rejected:
    try:
        return read_credentials(text, account)
    except ParseError as exc:
        return Rejected(str(exc))


def _explained(
    found: ReadResult | Rejected, now: datetime, policy: Policy
) -> list[Candidate | Rejected]:
    if isinstance(found, Rejected):
        return [found]
    credentials: list[AzureSas | AzureAccountKey] = [*found.sas, *found.keys]
    explanations = explain_found(found, now, policy=policy)
    out: list[Candidate | Rejected] = []
    for explanation, credential in zip(explanations, credentials, strict=True):
        secret = credential.signature if isinstance(credential, AzureSas) else credential.key
        reason = suppressed(explanation, secret)
        out.append(Rejected(reason) if reason else Candidate(explanation, secret, credential))
    return out
