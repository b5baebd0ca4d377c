"""False-positive filters: small, separately testable functions applied in a chain.

Each returns a reason string when the candidate should not be reported, else None.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from keyscope.analyze.azure.hosts import DEV_ACCOUNT
from keyscope.model import Explanation

_WORDS = "fake|sanitized|redacted|example|dummy|placeholder|sample|xxxx|0000000000|your"
_PLACEHOLDER_WORDS = re.compile(f"(?i){_WORDS}")
_PLACEHOLDER_LOWER = re.compile(_WORDS)  # on ASCII text lower-cased: the same, faster
MIN_DISTINCT_SIGNATURE_BYTES = 16  # 32 random bytes have ~30 distinct values
MIN_DISTINCT_KEY_CHARS = 24


def placeholder_secret(secret: str) -> str | None:
    """Signatures and keys that are documentation or test-recording stand-ins."""
    text, words_in = (
        (secret.lower(), _PLACEHOLDER_LOWER) if secret.isascii() else (secret, _PLACEHOLDER_WORDS)
    )
    words = words_in.findall(text)
    # A random secret can hold one such word by chance (1 in a few thousand keys);
    # a placeholder starts with one or repeats them.
    if len(words) >= 2 or words_in.match(text):
        return "placeholder secret"
    try:
        raw = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        return None
    floor = MIN_DISTINCT_SIGNATURE_BYTES if len(raw) <= 32 else MIN_DISTINCT_KEY_CHARS
    if len(set(raw)) < floor:
        return "low-entropy secret (not randomly generated)"
    return None


def emulator(explanation: Explanation) -> str | None:
    """The public emulator key and what it signs: UseDevelopmentStorage=true, the
    ``devstoreaccount1`` account, tokens signed with the published key.

    Other accounts on an emulator endpoint are reported (at info severity): their keys
    are chosen by someone (``AZURITE_ACCOUNTS``) and may be reused for real."""
    a = explanation.access
    public = (
        a.kind == "public-dev-key"
        or a.account == DEV_ACCOUNT
        or bool(a.details.get("signed_with_public_key"))
        or (a.emulator and a.account is None)
    )
    if public:
        return "public emulator credential"
    return None


# Keys of other Azure services look like storage keys (Cosmos DB and Batch keys are
# the very same 88 Base64 characters). Their connection strings and host names say
# which service they belong to.
_OTHER_SERVICES = (
    (
        "Cosmos DB",
        ("accountendpoint", ".documents.azure.", "cosmos", "documentdb"),
        re.compile(r"(?i)AccountEndpoint\s*=|\.documents\.azure\.|cosmos|documentdb"),
    ),
    (
        "Service Bus / Event Hubs / IoT Hub",
        ("sharedaccesskey", ".azure-devices.", "service", "event", "iot", "hostname="),
        re.compile(
            r"(?i)SharedAccessKey|\.servicebus\.|\.azure-devices\.|"
            r"service_?bus|event_?hubs?(?![a-z])|iot_?hub|(?-i:(?:^|;)\s*HostName=)"
        ),
    ),
    (
        "SignalR / Web PubSub",
        ("signalr", ".webpubsub.", "accesskey="),
        re.compile(r"(?i)\.signalr\.net|\.webpubsub\.|signalr|(?-i:;\s*AccessKey=)"),
    ),
    ("App Configuration", ("azconfig", "app"), re.compile(r"(?i)\.azconfig\.io|app_?config")),
    ("Batch", ("batch",), re.compile(r"(?i)\.batch\.azure\.com|batch_?account")),
    (
        "Azure AI Search",
        ("search", "api-key"),
        re.compile(r"(?i)\.search\.windows\.net|search_?(?:api_?|admin_?|query_?)?key|api-key"),
    ),
    ("Azure Cache for Redis", ("redis",), re.compile(r"(?i)\.redis\.cache\.|redis")),
    # their connection strings begin Endpoint=… (storage's are BlobEndpoint=…)
    (
        "another Azure service",
        ("endpoint",),
        re.compile(r"(?<![A-Za-z])Endpoint\s*=\s*(?:sb|https?)://"),
    ),
)
# The letters outside ASCII that a case-insensitive pattern takes for ASCII ones and
# lower() does not turn into them (the dotted and dotless i, the long s).
_FOLD = {0x130: "i", 0x131: "i", 0x17F: "s"}


def other_service(text: str) -> str | None:
    """The look-alike service ``text`` (a key's label and the string it sits in) names.
    Each pattern runs only where a word it cannot match without occurs (looked for in
    lower case): the case-insensitive patterns over a key's lines cost more than the
    rest of its reading."""
    lower = (text if text.isascii() else text.translate(_FOLD)).lower()
    for service, words, pattern in _OTHER_SERVICES:
        if any(word in lower for word in words) and pattern.search(text):
            return f"look-alike: a {service} key, not Azure Storage"
    return None


EXPLANATION_FILTERS: tuple[Callable[[Explanation], str | None], ...] = (emulator,)


def suppressed(explanation: Explanation, secret: str) -> str | None:
    """The first filter that rejects the candidate, or None to report it."""
    reason = placeholder_secret(secret)
    if reason:
        return reason
    for f in EXPLANATION_FILTERS:
        reason = f(explanation)
        if reason:
            return reason
    return None
