"""Severity policy: rate a credential's blast radius against least privilege,
short lifetime and https-only, after Microsoft's SAS guidance.

Configurable in ``[tool.keyscope.policy]`` of ``pyproject.toml`` or ``[policy]`` of
``keyscope.toml`` (see README).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from keyscope.analyze.timefmt import duration
from keyscope.errors import ConfigError
from keyscope.model import Access, Explanation, Reason, Severity, Verification

# code: (default severity, what it means) — the README documents this table.
RULES: dict[str, tuple[Severity, str]] = {
    "account-key": (Severity.CRITICAL, "an account key gives full control with no expiry"),
    "write": (Severity.CRITICAL, "can create, overwrite or modify data"),
    "delete": (Severity.CRITICAL, "can delete data"),
    "account-control": (
        Severity.CRITICAL,
        "can change service settings (logging, soft delete, CORS)",
    ),
    "anti-forensics": (Severity.CRITICAL, "can erase or switch off the account's access logs"),
    "wide-read": (
        Severity.HIGH,
        "can read and list a whole account, container or share for longer than the wide-read limit",
    ),
    "account-sas": (
        Severity.MEDIUM,
        "account SAS used for sharing; prefer a service or user delegation SAS",
    ),
    "long-lifetime": (Severity.MEDIUM, "valid for longer than the maximum lifetime"),
    "hidden-lifetime": (
        Severity.MEDIUM,
        "lifetime and permissions live in a stored access policy and cannot be checked offline",
    ),
    "http-allowed": (Severity.LOW, "allows plain HTTP"),
    "live": (Severity.LOW, "a live credential grants access"),
    "expired": (Severity.LOW, "expired: no longer grants access"),
    "emulator": (Severity.INFO, "points at a local emulator or is the public development key"),
}
# These cap the final severity, whatever else applies.
CAPS = {"emulator": Severity.INFO, "expired": Severity.LOW}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Policy:
    """The thresholds and per-rule severities used to rate a credential."""

    max_lifetime: int = 3600
    wide_read_max_lifetime: int = 86400
    require_https: bool = True
    allow_account_sas: bool = False
    severity: dict[str, Severity | None] = field(default_factory=dict)
    # Names model files may reference besides the built-in allowlist (e.g. your own
    # nn.Module classes). The never-allow list always wins.
    model_allow: frozenset[str] = frozenset()

    def severity_of(self, code: str) -> Severity | None:
        """The severity a rule calls for; ``None`` when the user switched it off."""
        if code in self.severity:
            return self.severity[code]
        return RULES[code][0]


DEFAULT_POLICY = Policy()


def evaluate(
    access: Access, policy: Policy = DEFAULT_POLICY
) -> tuple[Severity, tuple[Reason, ...]]:
    """Rate one credential. Returns the severity and every rule that applied."""
    hits: list[tuple[str, str]] = []
    v = access.validity
    classes = {c for cap in access.capabilities for c in cap.classes}

    if access.emulator or access.kind == "public-dev-key":
        hits.append(("emulator", RULES["emulator"][1]))
    if v.expired:
        hits.append(("expired", v.summary))
    if access.kind == "account-key":
        hits.append(("account-key", RULES["account-key"][1]))
    else:
        if "write" in classes:
            names = [c.name for c in access.capabilities if "write" in c.classes]
            hits.append(("write", f"can {', '.join(names)}"))
        if "delete" in classes:
            names = [c.name for c in access.capabilities if "delete" in c.classes]
            hits.append(("delete", f"can {', '.join(names)}"))
    for code in ("account-control", "anti-forensics"):
        if code in access.destructive and access.kind != "account-key":
            hits.append((code, RULES[code][1]))

    lifetime = v.lifetime_seconds if v.lifetime_seconds is not None else v.remaining_seconds
    wide = access.scope.level in ("account", "container", "share", "directory")
    if (
        wide
        and {"read", "list"} <= classes
        and (lifetime is None or lifetime > policy.wide_read_max_lifetime)
    ):
        span = "unknown" if lifetime is None else _human(lifetime)
        hits.append(("wide-read", f"reads and lists {access.scope.description} for {span}"))
    if access.kind == "account-sas" and not policy.allow_account_sas:
        hits.append(("account-sas", RULES["account-sas"][1]))
    if access.kind.endswith("-sas"):
        if v.effective_expiry is None:
            hits.append(("hidden-lifetime", RULES["hidden-lifetime"][1]))
        elif lifetime is not None and lifetime > policy.max_lifetime:
            hits.append(
                (
                    "long-lifetime",
                    f"valid for {_human(lifetime)}, more than {_human(policy.max_lifetime)}",
                )
            )
        if policy.require_https and "http" in access.network.protocols:
            hits.append(("http-allowed", "allows plain HTTP (spr=https,http or no spr)"))
    if not v.expired:
        hits.append(("live", RULES["live"][1]))

    reasons: list[Reason] = []
    for code, message in hits:
        sev = policy.severity_of(code)
        if sev is not None:
            reasons.append(Reason(code=code, severity=sev, message=message))
    severity = max((r.severity for r in reasons), default=Severity.INFO)
    for r in reasons:
        if r.code in CAPS:
            severity = min(severity, r.severity)
    reasons.sort(key=lambda r: (-r.severity, r.code))
    return severity, tuple(reasons)


def parse_duration(value: object, name: str) -> int:
    """``3600``, ``"90m"``, ``"1h"``, ``"7d"`` → seconds."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m and int(m[1]) > 0:
            return int(m[1]) * _UNITS[m[2]]
    raise ConfigError(f"{name}: {value!r} is not a duration such as 3600, '90m', '1h' or '7d'")


def policy_from_mapping(data: dict[str, Any], source: str) -> Policy:
    """Build a Policy from the ``policy`` table of a config file."""
    policy = DEFAULT_POLICY
    known = {
        "max-lifetime",
        "wide-read-max-lifetime",
        "require-https",
        "allow-account-sas",
        "severity",
        "model-allow",
    }
    for key in data:
        if key not in known:
            raise ConfigError(
                f"{source}: unknown policy setting {key!r} (known: {', '.join(sorted(known))})"
            )
    if "max-lifetime" in data:
        policy = replace(policy, max_lifetime=parse_duration(data["max-lifetime"], "max-lifetime"))
    if "wide-read-max-lifetime" in data:
        policy = replace(
            policy,
            wide_read_max_lifetime=parse_duration(
                data["wide-read-max-lifetime"], "wide-read-max-lifetime"
            ),
        )
    for key, attr in (
        ("require-https", "require_https"),
        ("allow-account-sas", "allow_account_sas"),
    ):
        if key in data:
            if not isinstance(data[key], bool):
                raise ConfigError(f"{source}: {key} must be true or false")
            policy = replace(policy, **{attr: data[key]})
    if "model-allow" in data:
        allow = data["model-allow"]
        if not isinstance(allow, list) or not all(isinstance(a, str) and "." in a for a in allow):
            raise ConfigError(f"{source}: model-allow must be a list of 'module.Name' strings")
        policy = replace(policy, model_allow=frozenset(allow))
    overrides: dict[str, Severity | None] = {}
    severity = data.get("severity", {})
    if not isinstance(severity, dict):
        raise ConfigError(f"{source}: severity must be a table of rule = level")
    for code, level in severity.items():
        if code not in RULES:
            raise ConfigError(
                f"{source}: unknown rule {code!r} in [severity] (known: {', '.join(RULES)})"
            )
        if level == "off":
            overrides[code] = None
            continue
        try:
            overrides[code] = Severity.parse(str(level))
        except ValueError as exc:
            raise ConfigError(f"{source}: severity.{code}: {exc}") from None
    return replace(policy, severity=overrides)


def load_policy(path: Path | None = None, start: Path | None = None) -> Policy:
    """Read the policy from ``path``, or from the first keyscope.toml or pyproject.toml
    with a keyscope section found upwards from ``start`` (default: the working
    directory, stopping at a repository root). No such file: the default policy."""
    if path is not None:
        return _read(path) or DEFAULT_POLICY
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for name in ("keyscope.toml", "pyproject.toml"):
            candidate = folder / name
            if candidate.is_file():
                found = _read(candidate)
                if found is not None:
                    return found
        if (folder / ".git").exists():
            break
    return DEFAULT_POLICY


def _read(path: Path) -> Policy | None:
    """The policy in one file; ``None`` for a pyproject.toml without [tool.keyscope]."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a keyscope config") from None
    table: object = data
    name = "the top level"
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        table = tool.get("keyscope") if isinstance(tool, dict) else None
        if table is None:
            return None
        name = "[tool.keyscope]"
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {name} must be a table")
    # Only the policy is read from a file; anything else would be silently ignored.
    for key in table:
        if key != "policy":
            raise ConfigError(
                f"{path}: unknown setting {key!r} in {name} (only [policy] is read from a "
                "config file; give scan options such as --exclude on the command line)"
            )
    section = table.get("policy", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [policy] must be a table")
    return policy_from_mapping(section, str(path))


def _human(seconds: int) -> str:
    return duration(seconds)


def after_verification(explanation: Explanation, verification: Verification) -> Explanation:
    """Attach a live check's verdict and move the severity one step: up when the
    service accepted the credential, down (never below low) when it is refused for
    good. The finding is kept either way: history, forks and key reuse still matter.
    Emulator credentials keep their cap."""
    reasons = list(explanation.reasons)
    severity = explanation.severity
    emulator = any(r.code == "emulator" for r in reasons)
    if verification.live is True and not emulator:
        severity = Severity(min(Severity.CRITICAL, severity + 1))
        reasons.append(Reason("verified-live", severity, verification.summary))
    elif verification.status == "account-not-found":
        reasons.append(Reason("account-gone", severity, verification.summary))
    elif verification.live is False and not emulator:
        severity = Severity(max(Severity.LOW, severity - 1))
        reasons.append(Reason("verified-dead", severity, verification.summary))
    reasons.sort(key=lambda r: (-r.severity, r.code))
    return replace(
        explanation, severity=severity, reasons=tuple(reasons), verification=verification
    )
