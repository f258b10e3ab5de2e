"""Fixtures: every store test runs on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from collector.api.app import create_app
from collector.settings import Settings
from collector.store.engine import make_engine
from collector.store.tables import events
from tests import postgres
from tests.settled import SettledClient
from tests.shim_helpers import Collector, running_collector, shim_env


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One throwaway PostgreSQL server for the whole session (never skipped)."""
    yield from postgres.postgres_url()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pipewarden.db'}"
    url: str = request.getfixturevalue("postgres_server")
    postgres.reset_database(url)
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The collector app in-process, started (migrated, writer running) and stopped."""
    with SettledClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def engine(client: TestClient, settings: Settings) -> Iterator[Engine]:
    """A separate engine on the client's store, for asserting on what was stored."""
    store = make_engine(settings.database_url)
    yield store
    store.dispose()


def count_events(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(events)).scalar_one())


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """A real `pipewarden serve` on a fresh SQLite store, shared by a module's tests."""
    with running_collector(tmp_path_factory.mktemp("collector")) as running:
        yield running


@pytest.fixture
def env(collector: Collector, tmp_path: Path) -> dict[str, str]:
    """The environment `pipewarden run` gets: that collector, and a spool of the test's own."""
    return shim_env(collector.url, tmp_path / "spool")
