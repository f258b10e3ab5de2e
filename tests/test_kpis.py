"""The KPIs on a small crafted history, stored directly so every time is known."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from collector.kpis import compute, window_of
from collector.store.engine import make_engine
from collector.store.migrate import upgrade
from collector.store.tables import (
    datasets,
    findings,
    gate_decisions,
    job_io,
    jobs,
    namespaces,
    runs,
)
from gates.policy import Policy, parse_policy

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SLA_POLICY = parse_policy('[[job]]\nname = "load"\nsla = "30m"\n')
RANKS = {"COMPLETED": 3, "FAILED": 3, "ABORTED": 3}


@pytest.fixture
def store(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _at(days: int, hour: int, minute: int = 0) -> datetime:
    return (NOW - days * DAY).replace(hour=hour, minute=minute)


class History:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.job_ids: dict[str, int] = {}
        with engine.begin() as c:
            c.execute(insert(namespaces).values(name="shop", created_at=NOW, updated_at=NOW))

    def job(self, name: str) -> int:
        with self.engine.begin() as c:
            job_id = c.execute(
                insert(jobs)
                .values(
                    namespace="shop",
                    name=name,
                    created_at=NOW,
                    updated_at=NOW,
                    facets={},
                    facet_times={},
                )
                .returning(jobs.c.id)
            ).scalar_one()
        self.job_ids[name] = job_id
        return int(job_id)

    def run(self, job: str, state: str, start: datetime, end: datetime) -> uuid.UUID:
        run_uuid = uuid.uuid4()
        with self.engine.begin() as c:
            c.execute(
                insert(runs).values(
                    uuid=run_uuid,
                    job_id=self.job_ids[job],
                    state=state,
                    state_rank=RANKS[state],
                    state_time=end,
                    created_at=start,
                    updated_at=end,
                    started_at=start,
                    ended_at=end,
                    duration_ms=int((end - start).total_seconds() * 1000),
                    facets={},
                    facet_times={},
                )
            )
        return run_uuid

    def finding(
        self,
        kind: str,
        job: str,
        event_time: datetime,
        detected_at: datetime,
        run_uuid: uuid.UUID | None = None,
        status: str = "open",
    ) -> None:
        with self.engine.begin() as c:
            c.execute(
                insert(findings).values(
                    key=str(uuid.uuid4()),
                    kind=kind,
                    namespace="shop",
                    job=job,
                    run_uuid=run_uuid,
                    event_time=event_time,
                    detected_at=detected_at,
                    severity="warning",
                    score=1.0,
                    status=status,
                    message="m",
                )
            )

    def decision(self, job: str, decision: str, mode: str, at: datetime) -> None:
        effective = "block" if decision == "block" and mode == "enforce" else "allow"
        with self.engine.begin() as c:
            c.execute(
                insert(gate_decisions).values(
                    uuid=uuid.uuid4(),
                    namespace="shop",
                    job=job,
                    decided_at=at,
                    decision=decision,
                    mode=mode,
                    effective=effective,
                    reasons=[],
                )
            )

    def io(self, job: str, dataset: str) -> None:
        with self.engine.begin() as c:
            dataset_id = c.execute(
                insert(datasets)
                .values(
                    namespace="shop",
                    name=dataset,
                    created_at=NOW,
                    updated_at=NOW,
                    facets={},
                    facet_times={},
                    io_facets={},
                    io_facet_times={},
                )
                .returning(datasets.c.id)
            ).scalar_one()
            c.execute(
                insert(job_io).values(
                    job_id=self.job_ids[job],
                    dataset_id=dataset_id,
                    direction="output",
                    last_seen=NOW,
                )
            )


@pytest.fixture
def history(store: Engine) -> History:
    """Two jobs: `load` (SLA 30 min) fails twice and recovers late; `export` drifts."""
    h = History(store)
    h.job("load")
    h.job("export")
    h.run("load", "COMPLETED", _at(10, 2), _at(10, 2, 10))  # outside the window
    ok = h.run("load", "COMPLETED", _at(3, 2), _at(3, 2, 10))  # within the SLA
    h.run("load", "FAILED", _at(2, 2), _at(2, 2, 5))  # a streak starts at 02:05
    h.run("load", "ABORTED", _at(2, 3), _at(2, 3, 5))
    late = h.run("load", "COMPLETED", _at(2, 5), _at(2, 6))  # recovers at 06:00, 60 min long
    drifted = h.run("export", "COMPLETED", _at(1, 3), _at(1, 4))
    h.finding("runtime", "load", _at(2, 5), _at(2, 6) + timedelta(seconds=60), late)
    h.finding("volume", "load", _at(2, 6), _at(2, 6) + timedelta(seconds=120), late)
    h.finding("schema_drift", "export", _at(1, 4), _at(1, 4) + timedelta(seconds=30), drifted)
    h.finding("freshness", "load", _at(1, 2), _at(1, 3))  # a missed slot, found after 1 h
    h.finding("runtime", "load", _at(3, 2), _at(3, 5), ok, status="false_positive")  # left out
    h.io("export", "mart.exports")
    h.decision("load", "block", "enforce", NOW - 2 * DAY)
    h.decision("load", "block", "monitor", NOW - 3 * DAY)
    h.decision("export", "block", "monitor", NOW - 1 * DAY)
    h.decision("export", "warn", "monitor", NOW - 1 * DAY)
    h.decision("export", "allow", "enforce", NOW - 1 * DAY)
    h.decision("load", "block", "enforce", NOW - 20 * DAY)  # outside the window
    return h


def test_kpis_of_a_crafted_week(history: History) -> None:
    kpis = compute(history.engine, SLA_POLICY, "7d", now=NOW)
    assert kpis.runs == {"completed": 3, "failed": 1, "aborted": 1}
    assert kpis.task_success_rate == pytest.approx(3 / 5)
    assert kpis.job_success_rates == {
        ("shop", "load"): pytest.approx(2 / 4),
        ("shop", "export"): 1.0,
    }
    assert kpis.to_json()["perJob"] == [
        {"namespace": "shop", "job": "export", "taskSuccessRate": 1.0},
        {"namespace": "shop", "job": "load", "taskSuccessRate": 0.5},
    ]
    # Per run, its first finding: 60 s (load's late run), 30 s (export's drift), 3600 s
    # for the missed slot; the false positive is left out.
    assert kpis.detections == 3
    assert kpis.mean_time_to_detect == pytest.approx((60 + 30 + 3600) / 3)
    assert kpis.schema_drifts == 1
    assert kpis.time_to_detect_schema_drift == pytest.approx(30)
    # First failure 02:05, first success after it ends 06:00.
    assert kpis.recoveries == 1
    assert kpis.mean_time_to_recover == pytest.approx(3 * 3600 + 55 * 60)
    # load: 4 finished runs + 1 missed slot expected, 1 completed within 30 min.
    assert (kpis.sla_on_time, kpis.sla_expected, kpis.sla_jobs) == (1, 5, 1)
    assert kpis.sla_adherence == pytest.approx(1 / 5)
    assert kpis.jobs == 2
    assert kpis.lineage_coverage == pytest.approx(0.5)
    assert kpis.column_lineage_coverage == 0
    assert (kpis.blocked_runs, kpis.would_block_runs) == (1, 2)


def test_sla_adherence_is_null_without_an_sla(history: History) -> None:
    kpis = compute(history.engine, Policy(), "7d", now=NOW)
    assert kpis.sla_adherence is None
    assert kpis.sla_jobs == 0
    assert kpis.to_json()["slaAdherence"] is None


def test_a_shorter_window_sees_less(history: History) -> None:
    kpis = compute(history.engine, SLA_POLICY, "36h", now=NOW)
    assert kpis.runs == {"completed": 1, "failed": 0, "aborted": 0}
    assert kpis.mean_time_to_recover is None
    assert (kpis.blocked_runs, kpis.would_block_runs) == (0, 1)


def test_an_empty_store_has_no_rates(store: Engine) -> None:
    values: dict[str, Any] = compute(store, Policy(), now=NOW).to_json()
    assert values["taskSuccessRate"] is None
    assert values["meanTimeToDetectSeconds"] is None
    assert values["lineageCoverage"] is None
    assert values["blockedRuns"] == 0


def test_window_is_read_like_the_policy_durations() -> None:
    assert window_of("7d") == timedelta(days=7)
    assert window_of("1w") == timedelta(days=7)
    assert window_of("90m") == timedelta(minutes=90)
    with pytest.raises(ValueError, match="duration"):
        window_of("a week")


def test_the_endpoint_answers_and_refuses_a_bad_window(client: TestClient) -> None:
    answer = client.get("/api/v1/kpis", params={"window": "30d"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["window"] == "30d"
    assert body["runs"] == {"completed": 0, "failed": 0, "aborted": 0}
    assert body["slaAdherence"] is None
    assert client.get("/api/v1/kpis").json()["window"] == "7d"
    bad = client.get("/api/v1/kpis", params={"window": "soon"})
    assert bad.status_code == 400
    assert "window" in bad.text
