"""The config file: ``keyscope.toml`` or ``pyproject.toml`` (under ``[tool.keyscope]``),
found upwards from the working directory or named by ``--config``. It holds the
severity policy (``[policy]``; rule codes in its ``[severity]`` table are checked
against every registered provider's rules), the owners map (``[owners]``, read by
``owners/config.py``) and the alert destinations (``[[notify]]``, read by
``notify/config.py``); see README.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from keyscope.analyze.policy import DEFAULT_POLICY, Policy
from keyscope.errors import ConfigError
from keyscope.model import Severity
from keyscope.providers.registry import rule_codes

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


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
    codes = rule_codes()
    for code, level in severity.items():
        if code not in codes:
            raise ConfigError(
                f"{source}: unknown rule {code!r} in [severity] (known: {', '.join(codes)})"
            )
        if level == "off":
            overrides[code] = None
            continue
        try:
            overrides[code] = Severity.parse(str(level))
        except ValueError as exc:
            raise ConfigError(f"{source}: severity.{code}: {exc}") from None
    return replace(policy, severity=overrides)


# The tables a config file may hold; anything else would be silently ignored.
SECTIONS = ("policy", "owners", "notify", "alerts")


def load_policy(path: Path | None = None, start: Path | None = None) -> Policy:
    """Read the policy from ``path``, or from the first keyscope.toml or pyproject.toml
    with a keyscope section found upwards from ``start`` (default: the working
    directory, stopping at a repository root). No such file: the default policy."""
    found = config_table(path, start)
    if found is None:
        return DEFAULT_POLICY
    where, table = found
    section = table.get("policy", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: [policy] must be a table")
    return policy_from_mapping(section, str(where))


def config_table(
    path: Path | None = None, start: Path | None = None
) -> tuple[Path, dict[str, Any]] | None:
    """The keyscope table of ``path``, or of the first keyscope.toml or pyproject.toml
    with a keyscope section found upwards from ``start`` (see :func:`load_policy`),
    with the file it came from; ``None`` when there is none."""
    if path is not None:
        table = _read(path)
        return (path, table) if table is not None else None
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for name in ("keyscope.toml", "pyproject.toml"):
            candidate = folder / name
            if candidate.is_file():
                found = _read(candidate)
                if found is not None:
                    return candidate, found
        if (folder / ".git").exists():
            break
    return None


def _read(path: Path) -> dict[str, Any] | None:
    """The keyscope table of one file; ``None`` for a pyproject.toml without
    [tool.keyscope]."""
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
    for key in table:
        if key not in SECTIONS:
            raise ConfigError(
                f"{path}: unknown setting {key!r} in {name} (a config file holds "
                f"{', '.join(SECTIONS)}; give scan options such as --exclude on the command line)"
            )
    return table
