"""One database connection, SQLite or PostgreSQL, behind the same small API.

SQL is written once with ``?`` placeholders (translated for psycopg) and runs in
explicit transactions: ``BEGIN IMMEDIATE`` on SQLite (WAL, a busy timeout), a plain
transaction on PostgreSQL, retried when the server breaks a deadlock.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from keyscope.analyze.timefmt import iso
from keyscope.errors import KeyscopeError

ENV = "KEYSCOPE_DB"
BUSY_MS = 30_000  # SQLite: how long a writer waits for another one
RETRIES = 5  # PostgreSQL: a transaction the server aborted (deadlock) is run again
CHUNK_PARAMS = 30_000  # parameters per multi-row statement (SQLite allows 32766)

Row = dict[str, Any]
T = TypeVar("T")
_POSTGRES = re.compile(r"^postgres(?:ql)?://", re.IGNORECASE)
_SQLITE = re.compile(r"^sqlite:(?://)?", re.IGNORECASE)


def default_url() -> str:
    """``$KEYSCOPE_DB``, else ``$XDG_DATA_HOME/keyscope/inventory.sqlite3``
    (``~/.local/share`` by default)."""
    env = os.environ.get(ENV, "").strip()
    if env:
        return env
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(data) / "keyscope" / "inventory.sqlite3")


def is_database_url(text: str) -> bool:
    """``postgresql://…``, ``postgres://…`` or ``sqlite:…``: never a path to scan."""
    return bool(_POSTGRES.match(text) or _SQLITE.match(text))


def shown_url(url: str) -> str:
    """``url`` without its password, for messages."""
    if not _POSTGRES.match(url):
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def stamp(dt: datetime) -> str:
    """The one text form of a time in the inventory: ``2026-12-07T16:40:00Z`` (UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    text = iso(dt.astimezone(UTC))
    assert text is not None
    return text


def later(moment: str, seconds: float) -> str:
    """``moment`` (a :func:`stamp`) plus ``seconds``."""
    dt = datetime.strptime(moment, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return stamp(dt + timedelta(seconds=seconds))


class Store:
    """An open inventory database. Use :func:`open_store`."""

    def __init__(self, connection: Any, dialect: str, url: str) -> None:
        self.connection = connection
        self.dialect = dialect  # "sqlite" | "postgresql"
        self.url = shown_url(url)
        self._depth = 0

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sql(self, sql: str) -> str:
        return sql if self.dialect == "sqlite" else sql.replace("?", "%s")

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """One transaction; a nested call joins the open one."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self.connection.execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._depth = 0
            self.connection.execute("ROLLBACK")
            raise
        self._depth = 0
        self.connection.execute("COMMIT")

    def atomic(self, work: Callable[[Store], T]) -> T:
        """``work`` in one transaction, run again if PostgreSQL aborted it (deadlock,
        serialization failure)."""
        for attempt in range(RETRIES):
            try:
                with self.transaction():
                    return work(self)
            except Exception as exc:
                if self._depth or not _retryable(exc) or attempt == RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        cursor = self.connection.execute(self._sql(sql), tuple(params))
        return int(cursor.rowcount)

    def many(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        """Run one statement for each parameter row."""
        batch = [tuple(r) for r in rows]
        if not batch:
            return
        if self.dialect == "sqlite":
            self.connection.executemany(sql, batch)
        else:
            with self.connection.cursor() as cursor:
                cursor.executemany(self._sql(sql), batch)

    def insert(self, head: str, rows: Sequence[Sequence[object]], tail: str = "") -> list[Row]:
        """``head VALUES (…), (…) … tail`` for many rows, a few statements for all of
        them (one round trip per :data:`CHUNK_PARAMS` parameters); the rows a
        ``RETURNING`` tail gave, else one ``{"count": n}`` per statement."""
        if not rows:
            return []
        width = len(rows[0])
        step = max(1, CHUNK_PARAMS // width)
        out: list[Row] = []
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            params = [value for row in chunk for value in row]
            if self.dialect == "sqlite":
                marks = "(" + ", ".join("?" for _ in range(width)) + ")"
                values = ", ".join(marks for _ in chunk)
                cursor = self.connection.execute(f"{head} VALUES {values} {tail}", params)
            else:  # PostgreSQL's own $n: psycopg need not parse a long statement
                values = _numbered(width, len(chunk))
                cursor = self._raw()
                cursor.execute(f"{head} VALUES {values} {tail}", params)
            if "RETURNING" in tail:
                out.extend(dict(r) for r in cursor.fetchall())
            else:
                out.append({"count": int(cursor.rowcount)})
        return out

    def _raw(self) -> Any:
        from psycopg import RawCursor
        from psycopg.rows import dict_row

        return RawCursor(self.connection, row_factory=dict_row)

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """The rows of one query, as dicts."""
        cursor = self.connection.execute(self._sql(sql), tuple(params))
        return [dict(r) for r in cursor.fetchall()]

    def one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def scalar(self, sql: str, params: Sequence[object] = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else next(iter(row.values()))


@lru_cache(maxsize=16)
def _numbered(width: int, count: int) -> str:
    """``($1, $2), ($3, $4)`` for ``count`` rows of ``width`` values."""
    return ", ".join(
        "(" + ", ".join(f"${i * width + j + 1}" for j in range(width)) + ")"
        for i in range(count)
    )


def _retryable(exc: Exception) -> bool:
    state = getattr(getattr(exc, "diag", None), "sqlstate", None)
    return state in ("40001", "40P01")  # serialization_failure, deadlock_detected


def sqlite_path(url: str) -> Path:
    """The file a SQLite URL (``sqlite:///abs``, ``sqlite:rel``) or plain path names."""
    m = _SQLITE.match(url)
    return Path(url[m.end() :] if m else url).expanduser()


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """Open (creating and migrating as needed) the inventory at ``url``: a
    ``postgresql://`` URL, or a SQLite file (``sqlite:///path`` or a plain path);
    ``None``: :func:`default_url`."""
    from keyscope.inventory import schema

    url = url or default_url()
    store = _connect_postgres(url) if _POSTGRES.match(url) else _connect_sqlite(url)
    if migrate:
        try:
            schema.migrate(store)
        except BaseException:
            store.close()
            raise
    return store


def _connect_sqlite(url: str) -> Store:
    path = sqlite_path(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        connection = sqlite3.connect(path, isolation_level=None, timeout=BUSY_MS / 1000)
        connection.row_factory = sqlite3.Row
        connection.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")
    except (OSError, sqlite3.Error) as exc:
        raise KeyscopeError(f"inventory {path}: {exc}") from None
    return Store(connection, "sqlite", str(path))


def _connect_postgres(url: str) -> Store:
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError:
        raise KeyscopeError(
            f"inventory {shown_url(url)}: PostgreSQL needs psycopg: "
            "pip install 'keyscope[postgres]'"
        ) from None
    try:
        connection = psycopg.connect(url, autocommit=True, row_factory=dict_row)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KeyscopeError(f"inventory {shown_url(url)}: {_without(reason, url)}") from None
    return Store(connection, "postgresql", url)


def _without(message: str, url: str) -> str:
    password = urlsplit(url).password
    return message.replace(password, "***") if password else message


def as_json_object(value: object) -> Mapping[str, object]:
    """A JSON column read back: a mapping (PostgreSQL's driver may decode it already)."""
    import json

    data = json.loads(value) if isinstance(value, str) else value
    return data if isinstance(data, dict) else {}
