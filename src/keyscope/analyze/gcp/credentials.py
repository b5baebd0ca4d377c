"""Google Cloud credentials read from text: service-account JSON keys, HMAC keys (a
``GOOG…`` access id with its secret beside it), API keys (``AIza…``), and what a
service-account email says of its project."""

from __future__ import annotations

import re
from dataclasses import dataclass

from keyscope.analyze.azure.filters import placeholder_secret
from keyscope.analyze.placeholders import word_pattern
from keyscope.analyze.textforms import unescape_json
from keyscope.errors import ParseError

PROVIDER = "gcp"
KEY_ID = re.compile(r"[0-9a-f]{40}")
_FIELD = r'"{name}"\s*:\s*"(?P<v>(?:[^"\\]|\\.){{1,4000}})"'
_PEM = re.compile(
    r"-----BEGIN (?:RSA )?PRIVATE KEY-----(?P<body>[A-Za-z0-9+/=\s]{100,})-----END (?:RSA )?"
    r"PRIVATE KEY-----"
)
_EMAIL = re.compile(r"[a-z0-9][a-z0-9.-]{0,99}@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.gserviceaccount\.com")
ACCESS_ID = re.compile(r"(?<![A-Za-z0-9])(?P<id>GOOG[A-Z0-9]{20,57})(?![A-Za-z0-9])")
_HMAC_SECRET = re.compile(r"(?<![A-Za-z0-9/+])(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])")
_SECRET_LABEL = re.compile(r"(?i)secret")
API_KEY = re.compile(r"(?<![A-Za-z0-9_-])(?P<key>AIza[0-9A-Za-z_-]{35})(?![A-Za-z0-9_-])")
LABEL_WINDOW = 64
# Google's documentation examples (the HMAC key page), in READMEs and tests.
DOC_VALUES = frozenset({
    "GOOGTS7C7FUP3AIRVJTE2BCDKINBTES3HC2GY5CBFJDCQ2SYHV6A6XXVTJFSA",
    "bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ",
})
_PLACEHOLDER = word_pattern(
    "example", "placeholder", "your", "xxxx", "redacted", "dummy", "fake", "sample", "0{8}"
)


@dataclass(frozen=True)
class ServiceAccount:
    """What a service-account email says: its project (an ID or a number)."""

    email: str
    project: str | None
    project_is_number: bool
    kind: str  # user-managed | compute-default | app-engine-default | service-agent | other


@dataclass(frozen=True)
class GcpServiceAccountKey:
    """A service-account JSON key: its RSA private key and who it signs as."""

    key_id: str  # private_key_id
    account: ServiceAccount
    project_id: str | None  # the file's project_id field
    client_id: str | None
    private_key: str  # the PEM body (secret)


@dataclass(frozen=True)
class GcpHmacKey:
    """A Cloud Storage HMAC key: access id and its 40-character secret."""

    access_id: str
    secret: str

    @property
    def service_account(self) -> bool:
        """61-character ids belong to service accounts, 24-character ones to users."""
        return len(self.access_id) == 61


@dataclass(frozen=True)
class GcpApiKey:
    """An API key: identifies (and bills) a project; may be restricted."""

    key: str


def service_account(email: str) -> ServiceAccount:
    """The project a service-account email names (documented forms), else ``None``."""
    email = email.lower()
    name, _, domain = email.partition("@")
    if domain.endswith(".iam.gserviceaccount.com"):
        label = domain[: -len(".iam.gserviceaccount.com")]
        if label.startswith("gcp-sa-") and name.startswith("service-"):
            return ServiceAccount(email, name[8:], True, "service-agent")
        return ServiceAccount(email, label, False, "user-managed")
    if domain == "appspot.gserviceaccount.com":
        return ServiceAccount(email, name, False, "app-engine-default")
    if domain == "developer.gserviceaccount.com":
        number = name.split("-", 1)[0]
        kind = "compute-default" if name.endswith("-compute") else "other"
        return ServiceAccount(email, number if number.isdigit() else None, True, kind)
    if domain == "cloudservices.gserviceaccount.com" and name.isdigit():
        return ServiceAccount(email, name, True, "service-agent")
    return ServiceAccount(email, None, False, "other")


def is_service_account(email: str) -> bool:
    return _EMAIL.fullmatch(email.lower()) is not None


def _field(name: str, text: str) -> str | None:
    m = re.search(_FIELD.format(name=re.escape(name)), text)
    return unescape_json(m.group("v")) if m else None


def parse_key_file(key_id: str, text: str) -> GcpServiceAccountKey:
    """The service-account key whose ``private_key_id`` is ``key_id``, read from the
    JSON around it (a file, a paste, escaped inside another JSON string); raises
    ``ParseError`` when its private key or client email is not there."""
    text = text.replace('\\"', '"') if '\\"' in text else text
    if not KEY_ID.fullmatch(key_id):
        raise ParseError("private_key_id is not 40 hex digits")
    kind = _field("type", text)
    if kind is not None and kind != "service_account":
        raise ParseError(f"credential type {kind[:40]!r} is not service_account")
    email = _field("client_email", text)
    if email is None or not is_service_account(email):
        raise ParseError("no service-account client_email beside the private_key_id")
    pem = _field("private_key", text)
    body = _PEM.search(pem.replace("\\n", "\n")) if pem else None
    if body is None:
        raise ParseError("no PEM private_key beside the private_key_id")
    secret = "".join(body.group("body").split())
    return GcpServiceAccountKey(
        key_id=key_id,
        account=service_account(email),
        project_id=_field("project_id", text),
        client_id=_field("client_id", text),
        private_key=secret,
    )


def find_hmac(access_id: str, context: str) -> GcpHmacKey | None:
    """The secret that goes with an HMAC access id: a 40-character Base64 value
    labelled ``secret`` or on the access id's own line; the nearest wins."""
    at = context.find(access_id, max(0, len(context) // 2 - len(access_id) - 1))
    if at < 0:
        at = context.find(access_id)
    line_start = context.rfind("\n", 0, max(at, 0)) + 1
    line_end = context.find("\n", max(at, 0))
    line_end = len(context) if line_end < 0 else line_end
    best: tuple[int, str] | None = None
    for m in _HMAC_SECRET.finditer(context):
        secret = m.group("secret")
        if not (any(c.isupper() for c in secret) and any(c.islower() for c in secret)):
            continue
        start = context.rfind("\n", 0, m.start()) + 1
        label = context[max(start, m.start() - LABEL_WINDOW) : m.start()]
        if not (line_start <= m.start() < line_end or _SECRET_LABEL.search(label)):
            continue
        distance = abs(m.start() - at)
        if best is None or distance < best[0]:
            best = (distance, secret)
    return GcpHmacKey(access_id, best[1]) if best else None


def placeholder(value: str) -> str | None:
    """Why an id, key or secret is a documentation or test stand-in, else ``None``."""
    if value in DOC_VALUES:
        return "Google's documentation example"
    if _PLACEHOLDER.search(value) or len(set(value[4:])) < 8:
        return "placeholder value"
    return placeholder_secret(value) if len(value) == 40 else None
