"""A run whose detectors fail is still marked judged, and the other runs are judged."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select

from collector.detection import Detection
from collector.ingest import prepare, store_group
from collector.store.engine import make_engine
from collector.store.migrate import upgrade
from collector.store.tables import jobs, runs
from gates.policy import Policy
from tests.events import dataset, run_event

START = datetime(2024, 5, 1, 2, tzinfo=UTC)


def _run(job: str, day: int, minutes: float = 10.0) -> list[dict[str, Any]]:
    run_id = str(uuid.uuid4())
    begin = START + timedelta(days=day)
    end = begin + timedelta(minutes=minutes)
    output = dataset(f"mart.{job}", row_count=1000)
    return [
        run_event("START", run_id=run_id, event_time=begin.isoformat(), job=job),
        run_event("COMPLETE", run_id=run_id, event_time=end.isoformat(), job=job, outputs=[output]),
    ]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}", writer=True)
    upgrade(engine)
    yield engine
    engine.dispose()


class _CountedWrites:
    """The writer's `write_sync`, run directly, counting the transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.transactions = 0

    def __call__(self, action: Callable[[Connection], Any]) -> Any:
        self.transactions += 1
        with self.engine.begin() as connection:
            return action(connection)


def _store(engine: Engine, documents: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        store_group(connection, [prepare(document) for document in documents], START)


def _judged(engine: Engine) -> dict[str, int]:
    """How many of each job's runs are judged."""
    query = select(jobs.c.name, runs.c.detected_at).join(jobs).where(runs.c.state == "COMPLETED")
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return {name: sum(1 for n, at in rows if n == name and at is not None) for name, _ in rows}


def _job_name(connection: Connection, job_id: int) -> str:
    return str(connection.execute(select(jobs.c.name).where(jobs.c.id == job_id)).scalar_one())


def test_a_run_whose_judging_fails_is_still_marked_judged_and_the_others_judged(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _store(engine, [event for job in ("a", "b") for event in _run(job, 0)])

    def failing_for_a(self: Detection, run: Any, *rest: Any) -> Any:
        if run.job_name == "a":
            raise RuntimeError("a bug in a detector")
        return judge_runtime(self, run, *rest)

    judge_runtime = Detection._runtime
    monkeypatch.setattr(Detection, "_runtime", failing_for_a)
    write = _CountedWrites(engine)

    assert Detection(engine, write, Policy).judge_pending() == 2

    assert _judged(engine) == {"a": 1, "b": 1}
