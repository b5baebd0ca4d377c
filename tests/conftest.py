"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.azurite import Azurite, AzuriteError, Seed
from tests.crawl_site import CrawlSite, SiteServer, build_site
from tests.postgres import Postgres, PostgresError

if TYPE_CHECKING:
    from tests.dask_cluster import DaskCluster


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """A running, seeded Azurite (blob, queue, table) for the whole session.

    Tests that change state must do so on their own throwaway containers, queues or
    tables and delete them afterwards; the seeded data (``azurite.seeded``) stays as is.
    """
    emulator = Azurite()
    try:
        emulator.start()
    except AzuriteError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        emulator.seed()
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def azurite_seed(azurite: Azurite) -> Seed:
    """What ``azurite`` was seeded with (container, blob, policy, queue, table names)."""
    assert azurite.seeded is not None
    return azurite.seeded


@pytest.fixture(scope="session")
def crawl_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrawlSite]:
    """The crawl tests' website (``tests/crawl_site.py``) on loopback, with a second,
    out-of-scope origin; the servers' request logs are cleared by each test that
    reads them (``CrawlSite.clear``)."""
    root = tmp_path_factory.mktemp("site")
    with SiteServer(None, {}) as other:
        tokens = build_site(root, other.url)
        other.tokens = tokens
        with SiteServer(root / "www", tokens, other.url) as site:
            yield CrawlSite(site, other, tokens)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A running PostgreSQL server (the OS package) for the whole session; each test
    asks it for a database of its own (``postgres.database()``)."""
    server = Postgres()
    try:
        server.start()
    except PostgresError as exc:
        server.stop()
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty inventory database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path_factory.mktemp("inventory") / "inventory.sqlite3")
    server: Postgres = request.getfixturevalue("postgres")
    return server.database()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    """A real ``dask scheduler`` and two ``dask worker`` processes on loopback, for
    one test module."""
    from tests.dask_cluster import DaskCluster

    running = DaskCluster(tmp_path_factory.mktemp("dask"))
    try:
        running.start(workers=2)
        yield running
    finally:
        running.stop()
