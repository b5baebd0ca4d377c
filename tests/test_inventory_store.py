"""Opening an inventory: the default location, URLs, passwords kept out of messages,
and migrations (an older database is brought up to date, a newer one refused)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from keyscope.errors import KeyscopeError
from keyscope.inventory import schema
from keyscope.inventory.store import default_url, open_store, shown_url, sqlite_path
from tests.inventory_support import counts, keyscope, leak
from tests.postgres import Postgres


def test_default_url_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KEYSCOPE_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_url() == str(tmp_path / "data" / "keyscope" / "inventory.sqlite3")
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_url() == str(tmp_path / "home/.local/share/keyscope/inventory.sqlite3")
    monkeypatch.setenv("KEYSCOPE_DB", "postgresql://db.example/inv")
    assert default_url() == "postgresql://db.example/inv"
    assert sqlite_path("sqlite:///var/x.db") == Path("/var/x.db")
    assert sqlite_path("sqlite:rel/x.db") == Path("rel/x.db")


def test_bare_db_records_in_the_user_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KEYSCOPE_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    tree = tmp_path / "tree"
    leak(tree / "a.env", "acmea")
    # "--db" then a path: the path is scanned, the default inventory records it
    code, _ = keyscope(capsys, "scan", "-q", "-j", "1", "--fail-on", "never", "--db", str(tree))
    assert code == 0
    file = tmp_path / "data" / "keyscope" / "inventory.sqlite3"
    assert counts(str(file))["credentials"] == 1
    monkeypatch.setenv("KEYSCOPE_DB", str(tmp_path / "env.sqlite3"))
    code, out = keyscope(capsys, "inventory", "list")
    assert code == 0 and out == "0 credential(s)\n"
    code, _ = keyscope(capsys, "scan", "-q", "-j", "1", "--fail-on", "never", "--db", str(tree))
    code, out = keyscope(capsys, "inventory", "list")
    assert out.endswith("1 credential(s)\n")


def test_db_url_given_after_a_space(
    postgres: Postgres, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres.database()
    tree = tmp_path / "tree"
    leak(tree / "a.env", "acmea")
    code, _ = keyscope(capsys, "scan", "-q", "-j", "1", "--fail-on", "never", "--db", url,
                       str(tree))
    assert code == 0 and counts(url)["credentials"] == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_passwords_stay_out_of_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://scanner:Hunter2pw@127.0.0.1:{_closed_port()}/inventory"
    assert shown_url(url).startswith("postgresql://scanner:***@127.0.0.1:")
    with pytest.raises(KeyscopeError) as caught:
        open_store(url)
    assert "Hunter2pw" not in str(caught.value) and "***" in str(caught.value)
    capsys.readouterr()
    code, _ = keyscope(capsys, "scan", "-q", "--db", url, str(tmp_path))
    err = capsys.readouterr().err
    assert code == 2 and "Hunter2pw" not in err


def test_an_older_database_is_migrated_and_a_newer_one_refused(db_url: str) -> None:
    with open_store(db_url, migrate=False) as store:
        assert schema.migrate(store, upto=1) == 1
        store.execute("INSERT INTO scans (started_at, keyscope_version, sources, options) "
                      "VALUES ('2026-01-01T00:00:00Z', '0.0.1', '[]', '{}')")
        with pytest.raises(Exception):  # noqa: B017 - the outbox does not exist yet
            store.execute("SELECT count(*) FROM alerts")
    with open_store(db_url) as store:
        assert schema.version(store) == schema.LATEST == 6
        assert store.scalar("SELECT keyscope_version FROM scans") == "0.0.1"
        assert store.scalar("SELECT count(*) FROM alerts") == 0
        assert store.scalar("SELECT count(*) FROM credentials WHERE owners = '[]'") == 0
        assert store.scalar("SELECT count(*) FROM usage_keys") == 0  # 4: keyscope usage
        store.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 'x')")
    with pytest.raises(KeyscopeError, match="newer than this keyscope"):
        open_store(db_url)


def test_sqlite_is_opened_in_wal_mode(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "inv.sqlite3")) as store:
        assert store.scalar("PRAGMA journal_mode") == "wal"
        assert int(store.scalar("PRAGMA busy_timeout")) >= 10_000


def test_a_scan_without_db_loads_no_database_code(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "a.txt").write_text("nothing here\n")
    code = ("import sys\nfrom keyscope.cli import main\n"
            f"main(['scan', '-q', '-j', '1', {str(tmp_path)!r}])\n"
            "print('\\n'.join(sys.modules))\n")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True, timeout=120).stdout.split())
    assert "keyscope.inventory.arguments" in loaded  # the CLI knows the command
    assert not loaded & {"sqlite3", "keyscope.inventory.store", "keyscope.inventory.record",
                         "psycopg"}
