"""``[[notify]]`` entries of the config file (``keyscope.toml``, or
``[[tool.keyscope.notify]]`` in ``pyproject.toml``), checked, then built into
notifiers. Secrets are named, never written: ``secret-env``, ``url-env`` (a Slack or
Teams URL is itself a credential), ``password-env``; a secret in the file is an error.

    [[notify]]
    kind = "webhook"              # webhook | slack | teams | email
    name = "siem"                 # default: kind-N (the Nth entry of that kind)
    url = "https://siem.example/keyscope"   # or url-env
    secret-env = "KEYSCOPE_WEBHOOK_SECRET"  # HMAC key of the signature (required)
    min-severity = "high"         # default: low

    [[notify]]
    kind = "email"
    host = "smtp.example.com"     # port 587 and STARTTLS by default; tls = true: port 465
    username = "keyscope"
    password-env = "SMTP_PASSWORD"
    from = "keyscope@example.com"
    to = ["security@example.com"]
    to-owners = true              # also the owners' addresses …
    owner-domains = ["example.com"]   # … in these domains only
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from keyscope.config import config_table
from keyscope.errors import ConfigError
from keyscope.model import Severity
from keyscope.notify.email import EmailNotifier
from keyscope.notify.http import transport
from keyscope.notify.interface import Notifier, NotifyOptions
from keyscope.notify.payload import ADDRESS
from keyscope.notify.slack import SlackNotifier
from keyscope.notify.teams import TeamsNotifier
from keyscope.notify.webhook import WebhookNotifier
from keyscope.verify.guard import destination
from keyscope.verify.transport import loopback_name

COMMON = frozenset({"kind", "name", "min-severity"})
KEYS: dict[str, frozenset[str]] = {
    "webhook": frozenset({"url", "url-env", "secret-env"}),
    "slack": frozenset({"url-env"}),
    "teams": frozenset({"url-env"}),
    "email": frozenset(
        {"host", "port", "starttls", "tls", "username", "password-env", "from", "to",
         "to-owners", "owner-domains", "ca-file"}
    ),
}  # fmt: skip
# Keys that would hold a secret in the file, and what to write instead.
SECRET_KEYS = {
    "secret": "secret-env",
    "password": "password-env",
    "token": "secret-env",
    "api-key": "secret-env",
}
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_SECRET_QUERY = re.compile(r"sig|signature|token|key|secret|code|auth|pass|credential", re.I)
# hosts whose webhook URL is the credential (Slack, Teams connectors and Workflows)
_SECRET_HOSTS = re.compile(
    r"(^|\.)(hooks\.slack\.com|webhook\.office\.com|logic\.azure\.com|"
    r"powerplatform\.com|api\.powerautomate\.com|flow\.microsoft\.com)$",
    re.I,
)


@dataclass(frozen=True)
class Target:
    """One ``[[notify]]`` entry, checked; secrets still only named."""

    kind: str
    name: str
    min_severity: Severity
    settings: Mapping[str, Any]  # the kind's own keys, as written
    source: str  # "FILE: [[notify]] NAME", for errors


def targets_from_list(entries: object, source: str) -> list[Target]:
    """Check every ``[[notify]]`` entry (ConfigError names the entry and the key)."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{source}: notify must be an array of tables ([[notify]])")
    out: list[Target] = []
    counts: dict[str, int] = {}
    for number, entry in enumerate(entries, 1):
        kind = entry.get("kind")
        where = f"{source}: [[notify]] #{number}"
        if kind not in KEYS:
            raise ConfigError(f"{where}: kind must be one of {', '.join(KEYS)} (got {kind!r})")
        counts[kind] = counts.get(kind, 0) + 1
        name = entry.get("name", f"{kind}-{counts[kind]}")
        if not isinstance(name, str) or not re.fullmatch(r"[\w.-]{1,64}", name):
            raise ConfigError(f"{where}: name must be 1-64 letters, digits, '.', '_' or '-'")
        if any(t.name == name for t in out):
            raise ConfigError(f"{where}: a second destination named {name!r}")
        where = f"{source}: [[notify]] {name!r}"
        _check_keys(entry, kind, where)
        level = entry.get("min-severity", "low")
        try:
            min_severity = Severity.parse(level) if isinstance(level, str) else None
        except ValueError:
            min_severity = None
        if min_severity is None:
            names = ", ".join(s.label for s in Severity)
            raise ConfigError(f"{where}: min-severity must be one of {names}")
        settings = {k: v for k, v in entry.items() if k not in COMMON}
        {"webhook": _webhook, "slack": _hook_env, "teams": _hook_env, "email": _email}[kind](
            settings, where
        )
        out.append(Target(kind, name, min_severity, settings, where))
    return out


def _check_keys(entry: Mapping[str, Any], kind: str, where: str) -> None:
    for key in entry:
        if key in SECRET_KEYS:
            raise ConfigError(
                f"{where}: {key!r} would keep a secret in the file; put it in an "
                f"environment variable and name it: {SECRET_KEYS[key]} = \"VARIABLE\""
            )
        if key == "url" and kind in ("slack", "teams"):
            raise ConfigError(
                f"{where}: a {kind} webhook URL is itself a credential; put it in an "
                'environment variable and name it: url-env = "VARIABLE"'
            )
        if key not in COMMON | KEYS[kind]:
            known = ", ".join(sorted(COMMON | KEYS[kind]))
            raise ConfigError(f"{where}: unknown key {key!r} for kind {kind!r} (known: {known})")
    for key, value in entry.items():
        if key.endswith("-env") and not (isinstance(value, str) and _ENV.fullmatch(value)):
            raise ConfigError(f"{where}: {key} must name an environment variable")


def _webhook(s: Mapping[str, Any], where: str) -> None:
    if ("url" in s) == ("url-env" in s):
        raise ConfigError(f"{where}: give url or url-env (one of them)")
    if "secret-env" not in s:
        raise ConfigError(
            f"{where}: secret-env is required (the environment variable holding the "
            "HMAC key that signs each alert)"
        )
    if "url" in s:
        url = s["url"]
        if not isinstance(url, str):
            raise ConfigError(f"{where}: url must be a string")
        check_url(url, where, literal=True)


def _hook_env(s: Mapping[str, Any], where: str) -> None:
    if "url-env" not in s:
        raise ConfigError(f"{where}: url-env is required (the variable holding the URL)")


def _email(s: Mapping[str, Any], where: str) -> None:
    for key in ("host", "from"):
        if not isinstance(s.get(key), str) or not s[key]:
            raise ConfigError(f"{where}: {key} is required")
    if not ADDRESS.fullmatch(s["from"]):
        raise ConfigError(f"{where}: from must be an e-mail address")
    port = s.get("port", 587)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ConfigError(f"{where}: port must be a number from 1 to 65535")
    for key in ("starttls", "tls", "to-owners"):
        if key in s and not isinstance(s[key], bool):
            raise ConfigError(f"{where}: {key} must be true or false")
    if s.get("starttls", True) and s.get("tls", False) and "starttls" in s:
        raise ConfigError(f"{where}: starttls and tls exclude each other")
    to = _addresses(s.get("to", []), f"{where}: to")
    if not to and not s.get("to-owners", False):
        raise ConfigError(f"{where}: give to (addresses), to-owners = true, or both")
    domains = s.get("owner-domains", [])
    if not isinstance(domains, list) or not all(isinstance(d, str) and d for d in domains):
        raise ConfigError(f"{where}: owner-domains must be a list of domain names")
    if ("username" in s) != ("password-env" in s):
        raise ConfigError(f"{where}: username and password-env go together")
    if "ca-file" in s and not (isinstance(s["ca-file"], str) and s["ca-file"]):
        raise ConfigError(f"{where}: ca-file must be a path")


def _addresses(value: object, where: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(
        isinstance(v, str) and ADDRESS.fullmatch(v) for v in values
    ):
        raise ConfigError(f"{where} must be an e-mail address or a list of them")
    return tuple(values)


def check_url(url: str, where: str, *, literal: bool) -> None:
    """A destination URL: http(s), a valid host; ``literal`` (written in the file): no
    credential in it (user:password@, a token in the query, a Slack/Teams host)."""
    found = destination(url)
    if isinstance(found, str):
        raise ConfigError(f"{where}: the URL cannot be used: {found}")
    if found.scheme == "http" and not loopback_name(found.host):
        raise ConfigError(f"{where}: plain http:// goes only to a loopback address; use https://")
    if not literal:
        return
    parts = urlsplit(url)
    secret_query = any(_SECRET_QUERY.search(k) for k, _ in parse_qsl(parts.query, True))
    if parts.password or parts.username or secret_query or _SECRET_HOSTS.search(found.host):
        raise ConfigError(
            f"{where}: this URL holds a credential; put it in an environment variable "
            'and name it: url-env = "VARIABLE"'
        )


def load_targets(path: Path | None = None, start: Path | None = None) -> list[Target]:
    """The ``[[notify]]`` entries of the config file (see ``config.config_table``)."""
    found = config_table(path, start)
    if found is None or "notify" not in found[1]:
        return []
    return targets_from_list(found[1]["notify"], str(found[0]))


def build(
    target: Target, options: NotifyOptions, environ: Mapping[str, str] | None = None
) -> Notifier:
    """The notifier for ``target``, its secrets read from ``environ`` (default: the
    process environment); ConfigError when one is not set."""
    env = os.environ if environ is None else environ
    s, where = target.settings, target.source

    def secret(key: str) -> str:
        name = s[key]
        value = env.get(name, "")
        if not value:
            raise ConfigError(f"{where}: the environment variable {name} ({key}) is not set")
        return value

    via = transport(options)
    if target.kind in ("slack", "teams", "webhook"):
        url = s["url"] if "url" in s else secret("url-env")
        check_url(url, f"{where}: url-env {s.get('url-env')}", literal=False)
        if target.kind == "slack":
            return SlackNotifier(target.name, target.min_severity, url, via)
        if target.kind == "teams":
            return TeamsNotifier(target.name, target.min_severity, url, via)
        key = secret("secret-env").encode()
        return WebhookNotifier(target.name, target.min_severity, url, key, via)
    tls = bool(s.get("tls", False))
    starttls = bool(s.get("starttls", not tls))
    return EmailNotifier(
        target.name,
        target.min_severity,
        host=s["host"],
        port=int(s.get("port", 465 if tls else 587)),
        security="tls" if tls else "starttls" if starttls else "none",
        username=s.get("username"),
        password=secret("password-env") if "password-env" in s else None,
        sender=s["from"],
        to=_addresses(s.get("to", []), f"{where}: to"),
        to_owners=bool(s.get("to-owners", False)),
        owner_domains=tuple(d.lower() for d in s.get("owner-domains", [])),
        ca_file=s.get("ca-file"),
        via=via,
    )


def load_notifiers(
    options: NotifyOptions,
    path: Path | None = None,
    start: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Notifier]:
    """Every configured destination, built (ConfigError for a bad entry or a secret
    missing from the environment)."""
    return [build(t, options, environ) for t in load_targets(path, start)]
