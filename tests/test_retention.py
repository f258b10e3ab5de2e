"""Retention on a backfilled history: old runs and raw events go, what matters stays."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select, update

from collector.api.app import create_app
from collector.cli import main
from collector.retention import Retention, claimed
from collector.settings import Settings
from collector.store.tables import (
    events,
    expectations,
    gate_decisions,
    jobs,
    quality_assertions,
    run_io,
    runs,
    schema_versions,
)
from tests.events import DATASET_EVENT, JOB_EVENT, PRODUCER, dataset, facet, run_event
from tests.settled import SettledClient

PG = "postgres://db.example:5432"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
DAILY_JOBS = ("orders_daily", "customers_daily", "stock_daily")
HISTORY_DAYS = 200
RETENTION_DAYS = 90
ORDERS_V1 = [("id", "int"), ("amount", "int")]
ORDERS_V2 = [*ORDERS_V1, ("status", "text")]  # from 150 days ago
ORDERS_V3 = [("id", "int"), ("amount", "decimal"), ("status", "text")]  # from 9 days ago


def days_ago(days: float) -> datetime:
    """A run's start `days` ago, an hour before the hour of the test."""
    return NOW - timedelta(days=days, hours=1)


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    # Finished runs are judged as they arrive; the tests tick the evaluator themselves.
    settings = Settings(database_url=database_url, evaluator_interval=3600)
    with SettledClient(create_app(settings)) as test_client:
        yield test_client


def _engine(client: TestClient) -> Engine:
    engine: Engine = client.app.state.services.engine  # type: ignore[attr-defined]
    return engine


def _run(
    job: str,
    start: datetime,
    *,
    end: str = "COMPLETE",
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """START, then the end 10 minutes later, of one run."""
    run_id = str(uuid.uuid4())
    return [
        run_event(
            kind, run_id=run_id, job=job, event_time=at.isoformat(), inputs=inputs, outputs=outputs
        )
        for kind, at in (("START", start), (end, start + timedelta(minutes=10)))
    ]


def _orders_schema(days: int) -> list[tuple[str, str]]:
    return ORDERS_V1 if days >= 150 else ORDERS_V2 if days >= 10 else ORDERS_V3


def _daily(job: str, days: int, start: datetime | None = None) -> list[dict[str, Any]]:
    """One run of a daily job `days` ago (or at `start`)."""
    start = start or days_ago(days)
    if job == "orders_daily":
        lineage = facet(
            "ColumnLineageDatasetFacet",
            fields={
                "total": {
                    "inputFields": [{"namespace": PG, "name": "raw.orders", "field": "amount"}]
                }
            },
        )
        return _run(
            job,
            start,
            inputs=[dataset("raw.orders", PG, fields=_orders_schema(days))],
            outputs=[dataset("mart.orders", PG, row_count=1000 + days % 7, columnLineage=lineage)],
        )
    if job == "customers_daily":
        checks = facet(
            "DataQualityAssertionsDatasetFacet",
            assertions=[
                {"assertion": "not_null", "success": True, "column": "id"},
                {"assertion": "unique", "success": True, "column": "id"},
            ],
        )
        source = dataset("raw.customers", PG)
        source["inputFacets"] = {"dataQualityAssertions": checks}
        return _run(
            job,
            start,
            inputs=[source],
            outputs=[dataset("mart.customers", PG, row_count=500)],
        )
    return _run(job, start, outputs=[dataset("mart.stock", PG, row_count=70)])


def _other_event(kind: str, at: datetime, name: str) -> dict[str, Any]:
    """A DatasetEvent or JobEvent (raw events without a run)."""
    event: dict[str, Any] = {"eventTime": at.isoformat(), "producer": PRODUCER}
    if kind == "dataset":
        return event | {"schemaURL": DATASET_EVENT, "dataset": {"namespace": PG, "name": name}}
    return event | {"schemaURL": JOB_EVENT, "job": {"namespace": "shop", "name": name}}


def _history() -> list[dict[str, Any]]:
    """Three daily jobs over 200 days; a job that stopped after failing; one very old run."""
    found: list[dict[str, Any]] = []
    for days in range(HISTORY_DAYS - 1, -1, -1):
        for job in DAILY_JOBS:
            found += _daily(job, days)
    # export_daily succeeded until 121 days ago, then failed daily and stopped 100 days ago.
    export = [dataset("mart.export", PG)]
    for days in range(130, 99, -1):
        end = "COMPLETE" if days >= 121 else "FAIL"
        found += _run("export_daily", days_ago(days), end=end, outputs=export)
    found += _run("legacy_once", days_ago(300))
    found += [
        _other_event("dataset", days_ago(250), "raw.archive"),
        _other_event("job", days_ago(200), "legacy_once"),
        _other_event("dataset", days_ago(3), "raw.archive"),
    ]
    return found


def _post(client: TestClient, batch: list[dict[str, Any]]) -> None:
    response = client.post("/api/v1/lineage/batch", json=batch)
    assert response.status_code == 200
    assert {r["status"] for r in response.json()["results"]} == {"stored"}


def _wait_until_judged(engine: Engine) -> None:
    """Until the evaluator has judged every finished run (retention leaves unjudged ones)."""
    deadline = time.monotonic() + 120
    query = select(func.count()).where(runs.c.state_rank == 2, runs.c.detected_at.is_(None))
    while True:
        with engine.connect() as connection:
            if connection.execute(query).scalar_one() == 0:
                return
        assert time.monotonic() < deadline, "the evaluator did not judge the history in time"
        time.sleep(0.2)


def _count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as connection:
        query = select(func.count()).select_from(table).where(*where)
        return int(connection.execute(query).scalar_one())


def _orphans(engine: Engine) -> dict[str, int]:
    """Rows that name a run no longer stored."""
    stored = select(runs.c.uuid)
    return {
        "run_io": _count(engine, run_io, run_io.c.run_uuid.not_in(stored)),
        "assertions": _count(
            engine, quality_assertions, quality_assertions.c.run_uuid.not_in(stored)
        ),
        "events": _count(
            engine, events, events.c.run_uuid.is_not(None), events.c.run_uuid.not_in(stored)
        ),
    }


def _counters(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The counters retention must not lower."""
    names = {
        "pipewarden_runs_total",
        "pipewarden_gate_decisions_total",
        "pipewarden_schema_changes_total",
    }
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
        if sample.name in names
    }


def _age_decisions(engine: Engine, job: str, first_days_ago: int) -> None:
    """Move a job's gate decisions back in time, a day apart (decided_at is wall time)."""
    with engine.begin() as connection:
        ids = connection.execute(
            select(gate_decisions.c.id)
            .where(gate_decisions.c.job == job)
            .order_by(gate_decisions.c.id)
        ).scalars()
        for offset, decision_id in enumerate(ids):
            connection.execute(
                update(gate_decisions)
                .where(gate_decisions.c.id == decision_id)
                .values(decided_at=NOW - timedelta(days=first_days_ago - offset))
            )


@dataclass
class Backfill:
    client: TestClient
    engine: Engine
    latest_runs: dict[str, str]
    false_positive: int
    counters: dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def backfill(client: TestClient) -> Backfill:
    """The history through the real ingest path, judged, with gate decisions and feedback."""
    engine = _engine(client)
    _post(client, _history())
    _wait_until_judged(engine)
    for _ in range(40):
        assert client.get("/api/v1/gates/shop/orders_daily").status_code == 200
    for _ in range(5):
        assert client.get("/api/v1/gates/shop/legacy_once").status_code == 200
    _age_decisions(engine, "orders_daily", 200)
    _age_decisions(engine, "legacy_once", 200)
    for _ in range(3):  # and three recent ones
        assert client.get("/api/v1/gates/shop/orders_daily").status_code == 200
    failures = client.get("/api/v1/findings", params={"job": "export_daily"}).json()["findings"]
    assert failures, "the failing job was expected to have findings"
    oldest = min(failures, key=lambda f: f["eventTime"])
    answer = client.post(
        f"/api/v1/findings/{oldest['id']}/feedback", json={"verdict": "false_positive"}
    )
    assert answer.status_code == 200
    latest = {
        job: client.get(f"/api/v1/namespaces/shop/jobs/{job}").json()["latestRun"]["id"]
        for job in (*DAILY_JOBS, "export_daily", "legacy_once")
    }
    return Backfill(client, engine, latest, oldest["id"], _counters(client))


EXPECTED_RUNS_REMOVED = 3 * (HISTORY_DAYS - RETENTION_DAYS) + 29  # export keeps 2 of 31


def test_retention_removes_old_history_and_keeps_what_matters(
    backfill: Backfill, database_url: str
) -> None:
    client, engine = backfill.client, backfill.engine

    # A dry run says what would go and removes nothing.
    before = {table.name: _count(engine, table) for table in (runs, events, run_io)}
    result = CliRunner().invoke(
        main, ["db", "prune", "--dry-run", "--database-url", database_url, "--retention-days", "90"]
    )
    assert result.exit_code == 0, result.output
    assert f"would remove runs {EXPECTED_RUNS_REMOVED} (raw events " in result.output
    assert "job and dataset events 2, schema versions 1" in result.output
    assert "closed findings 1, gate decisions 13" in result.output
    assert {table.name: _count(engine, table) for table in (runs, events, run_io)} == before

    retention = Retention(engine, client.app.state.services.writer.write_sync, 90, batch_size=100)  # type: ignore[attr-defined]
    expected = retention.count(NOW)
    batches: list[tuple[str, int]] = []
    removed = retention.prune(NOW, progress=lambda what, n: batches.append((what, n)))

    # What the count said is what went, batch by batch, none over the batch size.
    assert removed.runs == expected.runs == EXPECTED_RUNS_REMOVED
    assert (removed.run_events, removed.run_io) == (expected.run_events, expected.run_io)
    assert removed.run_events == 2 * EXPECTED_RUNS_REMOVED
    assert removed.assertions == 2 * (HISTORY_DAYS - RETENTION_DAYS)
    assert (removed.other_events, removed.schema_versions) == (2, 1)
    assert (removed.findings, removed.gate_decisions) == (1, 13)
    run_batches = [n for what, n in batches if what == "runs"]
    assert len(run_batches) == EXPECTED_RUNS_REMOVED // 100 + 1
    assert max(n for _, n in batches) <= 100
    assert sum(run_batches) == EXPECTED_RUNS_REMOVED

    # Old runs and raw events are gone, recent ones kept, nothing left pointing at nothing.
    cutoff = NOW - timedelta(days=RETENTION_DAYS)
    for job in DAILY_JOBS:
        listed = client.get(f"/api/v1/namespaces/shop/jobs/{job}/runs", params={"limit": 500})
        assert listed.json()["totalCount"] == RETENTION_DAYS
    assert _orphans(engine) == {"run_io": 0, "assertions": 0, "events": 0}
    old = client.get("/api/v1/events/lineage", params={"before": cutoff.isoformat()}).json()
    assert old["totalCount"] == 2 * 3  # legacy_once's run and export_daily's two kept runs

    # Every job keeps its latest run, however old; a failing job its last success too.
    for job, run_id in backfill.latest_runs.items():
        shown = client.get(f"/api/v1/namespaces/shop/jobs/{job}").json()["latestRun"]
        assert shown["id"] == run_id, job
    export = client.get("/api/v1/namespaces/shop/jobs/export_daily/runs").json()["runs"]
    assert [run["state"] for run in export] == ["FAILED", "COMPLETED"]

    # The current schema is still what the dataset shows; the one in force at the cutoff
    # stays too, so the gate measures a change from what the kept history ran on.
    shown = client.get(f"/api/v1/namespaces/{quote(PG, safe='')}/datasets/raw.orders").json()
    assert [(f["name"], f["type"]) for f in shown["fields"]] == ORDERS_V3
    with engine.connect() as connection:  # raw.orders is the one dataset with a schema
        kept = connection.execute(
            select(schema_versions.c.fields).order_by(schema_versions.c.event_time)
        ).scalars()
        assert [[(f["name"], f["type"]) for f in fields] for fields in kept] == [
            ORDERS_V2,
            ORDERS_V3,
        ]

    # Counters read as before (retention never lowers them); findings, gates, readiness
    # and lineage too.
    assert _counters(client) == backfill.counters
    found = client.get("/api/v1/findings", params={"job": "export_daily"}).json()["findings"]
    assert found
    assert backfill.false_positive not in {f["id"] for f in found}
    assert all(f["status"] == "open" for f in found)
    assert client.get("/api/v1/gates/shop/export_daily").status_code == 200
    readiness = {m["job"]: m for m in client.get("/api/v1/maturity").json()["jobs"]}
    assert readiness["orders_daily"]["recentDecisions"] == 30
    assert readiness["legacy_once"]["recentDecisions"] == 5
    graph = client.get("/api/v1/lineage", params={"nodeId": "job:shop:orders_daily"}).json()
    assert f"dataset:{PG}:raw.orders" in {node["id"] for node in graph["graph"]}
    field = f"datasetField:{PG}:mart.orders:total"
    assert client.get("/api/v1/column-lineage", params={"nodeId": field}).status_code == 200

    # A second pass finds nothing; a new run is judged against the kept history (its
    # duration band comes from the 90 kept runs: learned, not learning).
    assert retention.prune(NOW).rows == 0
    started = NOW - timedelta(minutes=20)
    _post(client, _daily("orders_daily", 0, start=started))
    _wait_until_judged(engine)
    with engine.connect() as connection:
        band = connection.execute(
            select(expectations.c.event_time, expectations.c.learning)
            .join(jobs, jobs.c.id == expectations.c.job_id)
            .where(jobs.c.name == "orders_daily", expectations.c.metric == "duration")
        ).one()
    assert tuple(band) == (started, False)


def test_the_collector_prunes_on_its_tick_and_the_cli_prunes_too(
    client: TestClient, database_url: str
) -> None:
    engine = _engine(client)
    _post(client, _run("nightly", days_ago(120)) + _run("nightly", days_ago(100)))
    _post(client, _run("nightly", days_ago(1)) + _run("weekly", days_ago(200)))
    _wait_until_judged(engine)
    client.app.state.services.evaluator.tick(datetime.now(UTC))  # type: ignore[attr-defined]
    assert _count(engine, runs) == 2  # nightly's latest, weekly's only run

    _post(client, _run("nightly", days_ago(95)))
    _wait_until_judged(engine)
    result = CliRunner().invoke(main, ["db", "prune", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert "removed runs 1 (raw events 2," in result.output
    assert _count(engine, runs) == 2


def test_zero_days_keeps_everything(client: TestClient, database_url: str) -> None:
    engine = _engine(client)
    _post(client, _run("nightly", days_ago(400)) + _run("nightly", days_ago(1)))
    _wait_until_judged(engine)
    off = Retention(engine, client.app.state.services.writer.write_sync, 0)  # type: ignore[attr-defined]
    assert off.run_due(NOW) is None
    result = CliRunner().invoke(
        main,
        ["db", "prune", "--database-url", database_url],
        env={"PIPEWARDEN_RETENTION_DAYS": "0"},
    )
    assert result.exit_code == 0, result.output
    assert "retention is off" in result.output
    assert _count(engine, runs) == 2


def test_unjudged_runs_are_kept_until_judged(client: TestClient) -> None:
    engine = _engine(client)
    _post(client, _run("nightly", days_ago(120)) + _run("nightly", days_ago(1)))
    _wait_until_judged(engine)
    with engine.begin() as connection:
        connection.execute(update(runs).values(detected_at=None))
    retention = Retention(engine, client.app.state.services.writer.write_sync, 90)  # type: ignore[attr-defined]
    assert retention.prune(NOW).runs == 0
    client.app.state.services.evaluator.wake()  # type: ignore[attr-defined]
    _wait_until_judged(engine)
    assert retention.prune(NOW).runs == 1


def test_one_collector_at_a_time_prunes_on_postgresql(postgres_server: str) -> None:
    from tests import postgres

    postgres.reset_database(postgres_server)
    settings = Settings(database_url=postgres_server, evaluator_interval=3600)
    with SettledClient(create_app(settings)) as client:
        engine = _engine(client)
        _post(client, _run("nightly", days_ago(120)) + _run("nightly", days_ago(1)))
        _wait_until_judged(engine)
        write = client.app.state.services.writer.write_sync  # type: ignore[attr-defined]
        first, second = Retention(engine, write, 90), Retention(engine, write, 90)
        with claimed(engine, wait=False) as mine:  # another collector is pruning
            assert mine
            assert second.run_due(NOW) is None
            assert _count(engine, runs) == 2
        removed = first.run_due(NOW)
        assert removed is not None
        assert removed.runs == 1
        assert second.run_due(NOW) is not None  # the lock was let go: its turn, nothing left
        assert _count(engine, runs) == 1


def test_prune_refuses_a_store_not_migrated(database_url: str) -> None:
    result = CliRunner().invoke(main, ["db", "prune", "--database-url", database_url])
    assert result.exit_code == 1
    assert "revision none, not 0007: run `pipewarden db upgrade` first" in result.output
