"""Recognise Azure Storage credentials in a pasted value: SAS URLs, bare SAS query
strings, connection strings and account keys, in any of their escaped forms."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from keyscope.analyze.azure.hosts import AzureLocation, parse_location
from keyscope.analyze.azure.keys import (
    AzureAccountKey,
    looks_like_connection_string,
    parse_account_key,
    parse_connection_string,
)
from keyscope.analyze.azure.sas import AzureSas, is_sas_query, parse_sas, split_query
from keyscope.analyze.textforms import percent_decode, unescape_layers
from keyscope.errors import NotStorageCredential, ParseError

MAX_INPUT = 1 << 20
_KEY_TOKEN = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])")
_HOSTLIKE = re.compile(r"^[A-Za-z0-9.-]+\.[A-Za-z]{2,}(?::\d+)?/")
_WORDS = re.compile(r'[\s"<>`]+')
_ENCODED_URL = re.compile(r"(?i)^[a-z]+(?:%3a|%253a)(?:%2f|%252f)(?:%2f|%252f)")
_TRIM = "\"'`<>()[]{},;\\"


@dataclass
class ReadResult:
    """What one input holds: SAS tokens, account keys, and context (account names)."""

    sas: list[AzureSas] = field(default_factory=list)
    keys: list[AzureAccountKey] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)


def read_credentials(text: str, account: str | None = None) -> ReadResult:
    """Find every Azure Storage credential in ``text``. Strict on anything that claims
    to be a SAS; raises ParseError when nothing is found."""
    if len(text) > MAX_INPUT:
        raise ParseError(f"input is {len(text)} characters; explain takes at most {MAX_INPUT}")
    text = unescape_layers(text.strip())
    if not text:
        raise ParseError("empty input: give a SAS URL, SAS query, connection string or key")
    _reject_lookalike_text(text)
    result = ReadResult()
    if looks_like_connection_string(text):
        _read_connection_string(text, result)
    else:
        for word in _WORDS.split(text):
            _read_word(word.strip(_TRIM), result, account)
    if not result.sas and not result.keys:
        raise ParseError(
            "no Azure Storage credential found: expected a SAS URL, a SAS query string "
            "(…&sig=…), a connection string, or an account key with --account NAME"
        )
    if account:
        result.accounts.append(account)
    return result


def _read_connection_string(text: str, result: ReadResult) -> None:
    cs = parse_connection_string(text)
    if cs.account:
        result.accounts.append(cs.account)
    if cs.account_key:
        key = parse_account_key(cs.account_key, cs.account)
        if not key.public_dev_key or cs.development_storage:
            key = AzureAccountKey(
                key=key.key,
                account=key.account,
                location=cs.location("blob"),
                public_dev_key=key.public_dev_key,
                identifiable=key.identifiable,
            )
        result.keys.append(key)
    if cs.sas:
        pairs = split_query(cs.sas)
        result.sas.append(parse_sas(pairs, cs.location("blob")))


def _read_word(word: str, result: ReadResult, account: str | None) -> None:
    if not word:
        return
    if "://" in word or _HOSTLIKE.match(word):
        url = word if "://" in word else "https://" + word
        try:
            parts = urlsplit(url)
        except ValueError:
            raise ParseError(f"{_short(word)!r} is not a valid URL") from None
        query = parts.query
        if not query and "%3f" in parts.path.lower():
            # The whole URL was percent-encoded inside another URL's query.
            return _read_word(percent_decode(word), result, account)
        pairs = split_query(query) if query else {}
        if not pairs:
            inner = _nested_url(query)
            if inner:
                return _read_word(inner, result, account)
            return
        inner = next((v for v in pairs.values() if "://" in v and "sig=" in v.lower()), None)
        if inner and not is_sas_query(pairs):
            return _read_word(inner, result, account)
        if is_sas_query(pairs) or "sig" in pairs:
            location: AzureLocation = parse_location(parts.scheme, parts.netloc, parts.path)
            result.sas.append(parse_sas(pairs, location))
        return
    lower = word.lower()
    if _ENCODED_URL.match(word):
        return _read_word(percent_decode(word, 1), result, account)
    if "sig=" in lower or "sig%3d" in lower or "sig%253d" in lower:
        pairs = split_query(word)
        result.sas.append(parse_sas(pairs))
        return
    key = _KEY_TOKEN.search(word)  # bare, or the value of NAME=… / "name": "…"
    if key:
        result.keys.append(parse_account_key(key.group(0), account))


def _nested_url(query: str) -> str | None:
    decoded = percent_decode(query)
    m = re.search(r"https?://\S+", decoded)
    return m.group(0) if m else None


def _reject_lookalike_text(text: str) -> None:
    if re.match(r"(?i)^SharedAccessSignature\s+sr=", text):
        raise NotStorageCredential(
            "not an Azure Storage SAS: 'SharedAccessSignature sr=…&sig=…&se=<epoch>&skn=…' is a "
            "Service Bus / Event Hubs / IoT Hub token"
        )
    if re.search(r"(?i)SharedAccessKeyName\s*=", text):
        raise NotStorageCredential(
            "not an Azure Storage credential: Endpoint=sb://…;SharedAccessKeyName=…;"
            "SharedAccessKey=… is a Service Bus / Event Hubs connection string"
        )


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."
