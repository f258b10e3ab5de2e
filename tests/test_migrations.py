"""The numbered migrations build exactly the tables the code declares, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from collector.store.engine import make_engine
from collector.store.migrate import current_revision, head_revision, upgrade
from collector.store.tables import metadata


def test_migrations_match_the_declared_tables(database_url: str) -> None:
    engine = make_engine(database_url, writer=True)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_reaches_head(database_url: str) -> None:
    engine = make_engine(database_url, writer=True)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        upgrade(engine)
        assert current_revision(engine) == head_revision() == "0007"
    finally:
        engine.dispose()
