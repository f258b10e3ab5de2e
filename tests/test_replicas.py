"""Two collectors on one PostgreSQL database: nothing lost, nothing twice, work done once.

Two real `pipewarden serve` processes start together on an empty database (the migration
is taken by one under an advisory lock) and take concurrent load: the same events sent to
both at once (one batch in the opposite order, to cross their row locks), and runs whose
START goes to one collector while their end goes to the other. Each event must then be
stored exactly once (exactly one of its answers says "stored"), every run in the state its
events give, no answer a 5xx. Both evaluators run; each finished run is judged, each
freshness finding stored once. The time-driven checks are claimed by one collector at a
time: a second evaluator's tick does nothing while the first holds the claim. Two writers
storing events of the same jobs in opposite orders queue behind each other's claim of those
rows rather than deadlock, and a huge transaction's claim stays within PostgreSQL's lock table.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select, text

from collector import ingest
from collector.detection import Detection
from collector.evaluator import Evaluator
from collector.store import writes
from collector.store.engine import make_engine
from collector.store.migrate import upgrade
from collector.store.tables import findings, runs
from detectors import freshness
from detectors.model import Sensitivity
from gates.policy import Policy
from tests import postgres
from tests.conftest import count_events
from tests.events import run_event
from tests.load import (
    Clients,
    Collector,
    EventSource,
    Ledger,
    Planned,
    check_store,
    from_list,
    one_run,
    read_store,
    wait_for,
)

SEED = 8
TWIN_REQUESTS = 40
SPLIT_RUNS = 100
FRESH_JOB = "fresh_hourly"
POLICY = f"""
[[job]]
name = "{FRESH_JOB}"
schedule = "*/10 * * * *"
grace = "1m"
"""


@pytest.fixture
def store(postgres_server: str) -> str:
    postgres.reset_database(postgres_server)
    return postgres_server


@pytest.mark.e2e
def test_two_collectors_store_each_event_once(store: str, tmp_path: Path) -> None:
    (tmp_path / "pipewarden.toml").write_text(POLICY)
    options = {"PIPEWARDEN_EVALUATOR_INTERVAL": "0.2"}
    replicas = [Collector(store, tmp_path, name, **options) for name in ("a", "b")]
    for replica in replicas:
        replica.start()  # at once: both migrate the empty database
    try:
        for replica in replicas:
            replica.wait_healthy()
        ledger = _concurrent_load(*replicas)
        started = _fresh_job_ran(replicas[0], ledger)
        _wait_until_judged(store, ledger)
        missed_slots = _fresh_job_missed_slots(store, started)
    finally:
        codes = [replica.stop() for replica in replicas]
    assert codes == [0, 0], [replica.output() for replica in replicas]

    assert ledger.problems == [], ledger.problems
    assert set(ledger.statuses) <= {"200", "201"}, ledger.statuses
    assert ledger.unacknowledged() == []
    check_store(read_store(store), ledger)
    stored_answers = {
        key: outcomes.count("stored") for key, outcomes in ledger.acknowledged.items()
    }
    assert set(stored_answers.values()) == {1}, "each event is answered 'stored' exactly once"
    twice_sent = sum(len(outcomes) == 2 for outcomes in ledger.acknowledged.values())
    assert twice_sent > 0
    assert missed_slots > 0
    print(
        f"replicas: {ledger.statuses}, {len(ledger.acknowledged)} events, {twice_sent} sent "
        f"twice, {missed_slots} missed slots found once each"
    )


def _concurrent_load(a: Collector, b: Collector) -> Ledger:
    """Four threads: twins sending the same requests to a and b; START to a, end to b."""
    rng = random.Random(f"split-{SEED}")  # not EventSource's seed: other run ids
    source = EventSource(SEED, jobs=4)
    twins = [source.next_request() for _ in range(TWIN_REQUESTS)]
    reversed_twins = [list(reversed(request)) for request in twins]
    at = datetime(2024, 3, 1, tzinfo=UTC)
    split = [one_run(rng, at + timedelta(minutes=i), f"split_{i % 3}") for i in range(SPLIT_RUNS)]
    starts = _chunks(rng, [start for start, _ in split])
    ends = _chunks(rng, [end for _, end in split])
    ledger = Ledger()
    clients = Clients(ledger)
    clients.add(lambda: a.url, from_list(twins))
    clients.add(lambda: b.url, from_list(reversed_twins))
    clients.add(lambda: a.url, from_list(starts))
    clients.add(lambda: b.url, from_list(ends))
    clients.start()
    clients.join()
    return ledger


def _chunks(rng: random.Random, events: list[Planned]) -> list[list[Planned]]:
    """The events in requests of 1 to 8."""
    requests = []
    while events:
        size = rng.randint(1, 8)
        requests.append(events[:size])
        events = events[size:]
    return requests


def _fresh_job_ran(collector: Collector, ledger: Ledger) -> datetime:
    """One run of the scheduled job, over an hour ago: the evaluators find the missed slots.
    Returns when it started."""
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=65)
    start, end = one_run(random.Random(f"fresh-{SEED}"), started, FRESH_JOB)
    with httpx.Client(timeout=30.0) as client:
        assert ledger.send(client, collector.url, [start, end]) == "200"
    return started


def _wait_until_judged(store: str, ledger: Ledger) -> None:
    engine = make_engine(store)
    try:

        def all_judged() -> bool:
            with engine.connect() as connection:
                pending = connection.execute(
                    select(runs.c.uuid).where(
                        runs.c.state.in_(["COMPLETED", "FAILED"]), runs.c.detected_at.is_(None)
                    )
                ).all()
            return not pending

        wait_for("every finished run judged", all_judged, 60, ledger)
    finally:
        engine.dispose()


def _fresh_job_missed_slots(store: str, started: datetime) -> int:
    """The freshness findings of the scheduled job: each missed slot found, and found once,
    though both collectors' evaluators look for them every 0.2 s."""
    schedule = freshness.Schedule(cron="*/10 * * * *", grace=timedelta(minutes=1))
    engine = make_engine(store)
    found: list[datetime] = []

    def each_slot_found_once() -> bool:
        expected = freshness.missed([started], started, datetime.now(UTC), schedule, Sensitivity())
        with engine.connect() as connection:
            rows = connection.execute(
                select(findings.c.event_time).where(
                    findings.c.kind == "freshness", findings.c.job == FRESH_JOB
                )
            ).all()
        found[:] = sorted(row.event_time for row in rows)
        return found == [finding.at for finding in expected]

    try:
        wait_for("each missed slot of the scheduled job found once", each_slot_found_once, 30)
    finally:
        engine.dispose()
    twice = {slot: n for slot, n in Counter(found).items() if n > 1}
    assert not twice, f"a missed slot found more than once: {twice}"
    return len(found)


# --- the tick's claim -----------------------------------------------------------------------


class _Recording(Detection):
    """Detection whose time-driven checks are recorded, and can be held mid-way."""

    def __init__(self, engine: Engine, hold: threading.Event | None = None) -> None:
        super().__init__(engine, _no_writes, Policy)
        self.calls = 0
        self.inside = threading.Event()
        self._hold = hold

    def check_overruns(self, now: datetime) -> int:
        self.calls += 1
        self.inside.set()
        if self._hold is not None:
            assert self._hold.wait(30), "the held tick was never released"
        return 0

    def check_freshness(self, now: datetime) -> int:
        return 0


def _no_writes(_action: object) -> None:
    raise AssertionError("these ticks find nothing to write")


@pytest.fixture
def migrated(store: str) -> Iterator[Engine]:
    engine = make_engine(store)
    upgrade(engine)
    yield engine
    engine.dispose()


def test_a_tick_is_claimed_by_one_collector_at_a_time(migrated: Engine) -> None:
    release = threading.Event()
    first, second = _Recording(migrated, release), _Recording(migrated)
    now = datetime.now(UTC)
    holding = threading.Thread(target=Evaluator(migrated, first, 3600).tick, args=(now,))
    holding.start()
    try:
        assert first.inside.wait(30)
        Evaluator(migrated, second, 3600).tick(now)
        assert second.calls == 0, "the second collector did the work the first had claimed"
    finally:
        release.set()
        holding.join(30)
    Evaluator(migrated, second, 3600).tick(now)
    assert (first.calls, second.calls) == (1, 1), "the claim is released after the tick"


# --- crossing writes ------------------------------------------------------------------------


def test_two_writers_crossing_the_same_rows_queue_instead_of_deadlocking(
    migrated: Engine,
) -> None:
    """Two collectors' transactions store events of jobs x and y in opposite orders. Without
    the claim each would hold one job's row and wait for the other's: a deadlock."""
    with migrated.begin() as connection:  # the jobs' rows exist, as they mostly do
        for job in ("x", "y"):
            ingest.store(connection, ingest.prepare(run_event("START", job=job)), datetime.now(UTC))
    first = [ingest.prepare(run_event("COMPLETE", job=job)) for job in ("x", "y")]
    second = [ingest.prepare(run_event("COMPLETE", job=job)) for job in ("y", "x")]
    at = datetime.now(UTC)
    failures: list[Exception] = []

    def store_second() -> None:
        try:
            with migrated.begin() as connection:
                ingest.claim_rows(connection, second)
                for item in second:
                    ingest.store(connection, item, at)
        except Exception as error:
            failures.append(error)

    crossing = threading.Thread(target=store_second)
    with migrated.begin() as connection:
        ingest.claim_rows(connection, first)
        ingest.store(connection, first[0], at)  # job x's row is locked by this transaction now
        crossing.start()
        wait_for("the second writer to wait for the first", lambda: _lock_waits(migrated) > 0, 30)
        ingest.store(connection, first[1], at)
    crossing.join(30)
    assert failures == []
    assert count_events(migrated) == 6


def _lock_waits(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one()
        )


def test_a_huge_transaction_claims_a_bounded_number_of_locks(migrated: Engine) -> None:
    """PostgreSQL's lock table holds some thousands of locks: 50,000 names must fit."""
    with migrated.begin() as connection:
        writes.claim_keys(connection, [f"run|{number}" for number in range(50_000)])
        held = connection.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
        ).scalar_one()
    assert 0 < held <= writes.CLAIM_BUCKETS
