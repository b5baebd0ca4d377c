"""Helpers of the inventory tests: secrets in real git repositories, the keyscope
CLI run in-process, and the database read back table by table."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from keyscope.cli import main
from keyscope.inventory.store import open_store
from tests.sdk import new_key

TABLES = ("scans", "credentials", "occurrences", "verifications", "triage_events", "alerts",
          "deliveries")


def connection_string(account: str, key: str) -> str:
    return (f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={key};"
            "EndpointSuffix=core.windows.net")


def leak(path: Path, account: str, key: str | None = None) -> str:
    """Write a settings file holding a fresh account key of ``account``; the key."""
    key = key or new_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'STORAGE = "{connection_string(account, key)}"\n')
    return key


def git(repo: Path, *args: str, who: str = "Alice") -> str:
    env = {"GIT_AUTHOR_NAME": who, "GIT_AUTHOR_EMAIL": f"{who.lower()}@example.org",
           "GIT_COMMITTER_NAME": who, "GIT_COMMITTER_EMAIL": f"{who.lower()}@example.org",
           "HOME": str(repo.parent), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def commit_all(repo: Path, message: str, who: str = "Alice") -> str:
    git(repo, "add", "-A", who=who)
    git(repo, "commit", "-q", "-m", message, who=who)
    return git(repo, "rev-parse", "HEAD")


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    return path


def keyscope(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run the CLI in this process; (exit code, standard output)."""
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().out


def scan(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> str:
    code, out = keyscope(capsys, "scan", "-q", "-j", "1", "--fail-on", "never",
                         "--format", "json", f"--db={url}", *args)
    assert code == 0, out
    return out


def counts(url: str) -> dict[str, int]:
    with open_store(url) as store:
        return {t: int(store.scalar(f"SELECT count(*) FROM {t}")) for t in TABLES}


def rows(url: str, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
    with open_store(url) as store:
        return store.rows(sql, params)


def everything(url: str) -> str:
    """Every value of every table, as one text (to look for what must not be there)."""
    with open_store(url) as store:
        return json.dumps({t: store.rows(f"SELECT * FROM {t}") for t in TABLES}, default=str)


def assert_no_secret(url: str, *secrets: str) -> None:
    text = everything(url)
    for secret in secrets:
        assert secret not in text and secret[:20] not in text
    if "://" not in url:  # the SQLite file and its write-ahead log, byte for byte
        for suffix in ("", "-wal"):
            file = Path(url + suffix)
            if file.exists():
                data = file.read_bytes()
                assert all(s[:20].encode() not in data for s in secrets)
