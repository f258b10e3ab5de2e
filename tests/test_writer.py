"""The writer thread: it outlives whatever happens to one request, and refuses what it cannot
commit with a retryable error instead of failing or hanging.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine

from collector.ingest import Outcome, prepare
from collector.store.engine import make_engine
from collector.store.errors import StoreUnavailable
from collector.store.migrate import upgrade
from collector.writer import Writer
from tests.conftest import count_events
from tests.events import run_event

WAIT_S = 30


@pytest.fixture
def store(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, writer=True, busy_timeout=0.2)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def writer(store: Engine) -> Iterator[Writer]:
    running = Writer(store)
    running.start()
    yield running
    running.stop()


def test_a_request_cancelled_while_queued_is_skipped_and_the_writer_goes_on(
    writer: Writer, store: Engine
) -> None:
    inside, release = threading.Event(), threading.Event()

    def hold(_connection: Connection) -> None:
        inside.set()
        assert release.wait(WAIT_S)

    held = threading.Thread(target=writer.write_sync, args=(hold,))
    held.start()
    assert inside.wait(WAIT_S)
    abandoned = writer.submit_nowait([prepare(run_event("START"))])
    assert abandoned.cancel()  # its client went away while the writer was busy
    release.set()
    held.join(WAIT_S)

    later = writer.submit_nowait([prepare(run_event("START"))])
    assert later.result(WAIT_S) == [Outcome.STORED]
    assert writer.alive
    assert count_events(store) == 1


def test_a_locked_sqlite_store_refuses_with_a_retryable_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    engine = make_engine(f"sqlite:///{path}", writer=True, busy_timeout=0.2)
    upgrade(engine)
    writer = Writer(engine)
    writer.start()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        refused = writer.submit_nowait([prepare(run_event("START"))])
        with pytest.raises(StoreUnavailable, match="database is locked"):
            refused.result(WAIT_S)
        other.execute("ROLLBACK")
        stored = writer.submit_nowait([prepare(run_event("START"))])
        assert stored.result(WAIT_S) == [Outcome.STORED]
        assert writer.alive
    finally:
        other.close()
        writer.stop()
        engine.dispose()
