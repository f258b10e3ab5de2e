"""The writer thread: it outlives whatever happens to one request, refuses what it cannot
commit with a retryable error instead of failing or hanging, and derives from what it
committed afterwards, losing nothing.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, func, select

from collector import ingest
from collector import writer as writer_module
from collector.ingest import Incoming, Outcome, prepare, store_pending
from collector.openlineage import RunEvent
from collector.store.engine import make_engine
from collector.store.errors import StoreUnavailable
from collector.store.migrate import upgrade
from collector.store.reads import count_pending_events
from collector.store.tables import events, runs
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


@contextmanager
def _held(writer: Writer) -> Iterator[None]:
    """The writer busy with another write until the block ends: what is submitted meanwhile
    is queued, and taken as one group once the block ends."""
    inside, release = threading.Event(), threading.Event()

    def hold(_connection: Connection) -> None:
        inside.set()
        assert release.wait(WAIT_S)

    held = threading.Thread(target=writer.write_sync, args=(hold,))
    held.start()
    assert inside.wait(WAIT_S)
    try:
        yield
    finally:
        release.set()
        held.join(WAIT_S)


@pytest.fixture
def group_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of events of each `store_pending` call the writer makes (the real one runs)."""
    sizes: list[int] = []
    real = writer_module.store_pending

    def counted(connection: Connection, items: Sequence[Incoming], at: datetime) -> list[Outcome]:
        sizes.append(len(items))
        return real(connection, items, at)

    monkeypatch.setattr(writer_module, "store_pending", counted)
    return sizes


def _run_state(store: Engine, run_id: str) -> str:
    with store.connect() as connection:
        query = select(runs.c.state).where(runs.c.uuid == uuid.UUID(run_id))
        return str(connection.execute(query).scalar_one())


def test_requests_queued_together_are_stored_in_one_pass_each_with_its_outcomes(
    writer: Writer, store: Engine, group_sizes: list[int]
) -> None:
    run_id = str(uuid.uuid4())
    start = prepare(run_event("START", run_id=run_id))
    complete = prepare(run_event("COMPLETE", run_id=run_id, event_time="2024-05-01T02:05:00Z"))
    other = prepare(run_event("START", job="customers_daily"))
    with _held(writer):
        first = writer.submit_nowait([start, other])
        second = writer.submit_nowait([start, complete])  # `start` again: a duplicate
        third = writer.submit_nowait([other])
    assert first.result(WAIT_S) == [Outcome.STORED, Outcome.STORED]
    assert second.result(WAIT_S) == [Outcome.DUPLICATE, Outcome.STORED]
    assert third.result(WAIT_S) == [Outcome.DUPLICATE]
    assert group_sizes == [5]
    assert count_events(store) == 3
    asyncio.run(writer.settle(WAIT_S))
    assert _run_state(store, run_id) == "COMPLETED"


def test_a_write_queued_between_requests_sees_the_events_queued_before_it_only(
    writer: Writer, store: Engine, group_sizes: list[int]
) -> None:
    run_id = str(uuid.uuid4())
    seen: list[list[str]] = []

    def look(connection: Connection) -> None:
        stored = connection.execute(select(events.c.event_type)).scalars().all()
        seen.append(stored)

    async def queue_in_order() -> None:
        with _held(writer):
            started = writer.submit_nowait([prepare(run_event("START", run_id=run_id))])
            looked = asyncio.ensure_future(writer.write(look))
            await asyncio.sleep(0)  # the write is queued, after the first request
            completed = writer.submit_nowait(
                [prepare(run_event("COMPLETE", run_id=run_id, event_time="2024-05-01T03:00:00Z"))]
            )
        await looked
        assert started.result(WAIT_S) == [Outcome.STORED]
        assert completed.result(WAIT_S) == [Outcome.STORED]

    asyncio.run(queue_in_order())
    assert seen == [["START"]]
    assert group_sizes == [1, 1]
    asyncio.run(writer.settle(WAIT_S))
    assert _run_state(store, run_id) == "COMPLETED"


def _pending(store: Engine) -> int:
    with store.connect() as connection:
        return count_pending_events(connection)


def test_events_are_answered_once_committed_and_derived_afterwards(
    writer: Writer, store: Engine
) -> None:
    run_id = str(uuid.uuid4())
    with _held(writer):  # nothing is derived while the writer is busy
        answered = writer.submit_nowait([prepare(run_event("START", run_id=run_id))])
    assert answered.result(WAIT_S) == [Outcome.STORED]
    asyncio.run(writer.settle(WAIT_S))
    assert writer.pending == 0
    assert _pending(store) == 0
    assert _run_state(store, run_id) == "RUNNING"


def test_what_a_crash_left_pending_is_derived_after_the_next_start(store: Engine) -> None:
    run_id = str(uuid.uuid4())
    with store.begin() as connection:  # committed, then the collector died before deriving
        store_pending(connection, [prepare(run_event("START", run_id=run_id))], datetime.now(UTC))
    assert _pending(store) == 1
    restarted = Writer(store)
    restarted.start()
    try:
        assert restarted.pending == 1
        deadline = time.monotonic() + WAIT_S  # derived once idle: no request, no read needed
        while _pending(store) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        restarted.stop()
    assert _pending(store) == 0
    assert _run_state(store, run_id) == "RUNNING"


def test_an_event_whose_derivation_fails_is_kept_and_the_others_are_derived(
    writer: Writer, store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_add = ingest._Plan.add

    def add(plan: ingest._Plan, incoming: Incoming) -> None:
        if isinstance(incoming.event, RunEvent) and incoming.event.job.name == "poisoned":
            raise RuntimeError("a fault in deriving this event")
        real_add(plan, incoming)

    monkeypatch.setattr(ingest._Plan, "add", add)
    good = str(uuid.uuid4())
    items = [prepare(run_event("START", job="poisoned")), prepare(run_event("START", run_id=good))]
    assert writer.submit_nowait(items).result(WAIT_S) == [Outcome.STORED] * 2
    asyncio.run(writer.settle(WAIT_S))
    assert count_events(store) == 2
    assert _pending(store) == 0
    assert _run_state(store, good) == "RUNNING"
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(runs)).scalar_one() == 1


def test_under_steady_load_events_are_derived_without_waiting_for_a_pause(
    writer: Writer, store: Engine
) -> None:
    answered = 0
    deadline = time.monotonic() + 4 * writer_module.LAG_S
    while time.monotonic() < deadline:  # never idle for IDLE_S: a request every 10 ms
        items = [prepare(run_event("START"))]
        assert writer.submit_nowait(items).result(WAIT_S) == [Outcome.STORED]
        answered += 1
        time.sleep(writer_module.IDLE_S / 5)
    assert _pending(store) < answered / 2, "derivation waited for the load to stop"
