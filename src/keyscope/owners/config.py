"""The ``[owners]`` table of the config file: who owns what, beyond git and CODEOWNERS.

    [owners.accounts]          # the credential's account (storage account, AWS
    acmeprod = ["@acme/storage", "storage@acme.example"]   # account id, GCP project)
    [owners.repositories]      # the repository (its directory name, path as scanned,
    "acme/web" = "@acme/web"   # or origin URL; glob patterns)
    [owners.paths]             # a CODEOWNERS pattern over the path in its repository
    "deploy/**" = ["Ops <ops@acme.example>"]

Every matching entry adds its owners (unlike CODEOWNERS, where the last one wins).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyscope.config import config_table
from keyscope.errors import ConfigError
from keyscope.model import Owner
from keyscope.owners.codeowners import Glob, compile_pattern
from keyscope.owners.people import owner_from_text

KEYS = ("accounts", "repositories", "paths")


@dataclass(frozen=True)
class Entry:
    key: str  # the account / repository glob, or the path pattern, as written
    owners: tuple[Owner, ...]
    glob: Glob | None = None  # paths only
    regex: re.Pattern[str] | None = None  # accounts and repositories


@dataclass(frozen=True)
class OwnersMap:
    accounts: tuple[Entry, ...] = ()
    repositories: tuple[Entry, ...] = ()
    paths: tuple[Entry, ...] = ()
    source: str = field(default="", compare=False)

    def for_account(self, account: str | None) -> list[Owner]:
        if not account:
            return []
        hits = [e for e in self.accounts if e.regex and e.regex.fullmatch(account)]
        return [o for e in hits for o in e.owners]

    def for_repository(self, names: tuple[str, ...]) -> list[Owner]:
        return [
            o
            for e in self.repositories
            if e.regex and any(e.regex.fullmatch(n) for n in names)
            for o in e.owners
        ]

    def for_path(self, path: str) -> list[Owner]:
        return [o for e in self.paths if e.glob and e.glob.matches(path) for o in e.owners]


def owners_from_mapping(data: object, source: str) -> OwnersMap:
    """Build the map from the ``owners`` table of a config file (ConfigError names the
    entry that is wrong)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: [owners] must be a table")
    for key in data:
        if key not in KEYS:
            raise ConfigError(
                f"{source}: unknown table {key!r} in [owners] (known: {', '.join(KEYS)})"
            )
    tables: dict[str, tuple[Entry, ...]] = {}
    for key in KEYS:
        table = data.get(key, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [owners.{key}] must be a table of pattern = owners")
        tables[key] = tuple(_entry(key, k, v, source) for k, v in table.items())
    return OwnersMap(tables["accounts"], tables["repositories"], tables["paths"], source)


def _entry(table: str, key: str, value: Any, source: str) -> Entry:
    where = f"{source}: [owners.{table}] {key!r}"
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{where}: give an owner or a list of owners (strings)")
    owners: list[Owner] = []
    for text in values:
        owner = owner_from_text(text, f"[owners.{table}] {key}")
        if owner is None:
            raise ConfigError(
                f"{where}: {text!r} is not an owner (@user, @org/team, a team name, "
                "an address, or 'Name <address>')"
            )
        owners.append(owner)
    if table == "paths":
        glob = compile_pattern(key)
        if glob is None:
            raise ConfigError(f"{where}: not a path pattern")
        return Entry(key, tuple(owners), glob=glob)
    flags = re.IGNORECASE if table == "accounts" else 0
    regex = re.compile(fnmatch.translate(key), flags)
    return Entry(key, tuple(owners), regex=regex)


def load_owners(path: Path | None = None, start: Path | None = None) -> OwnersMap:
    """The ``[owners]`` table of the config file (see ``config.config_table``); an
    empty map without one."""
    found = config_table(path, start)
    if found is None or "owners" not in found[1]:
        return OwnersMap()
    return owners_from_mapping(found[1]["owners"], str(found[0]))
