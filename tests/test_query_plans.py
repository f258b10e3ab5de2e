"""Every query the API runs is indexed: no full table scan, whatever the history length.

SQLite's EXPLAIN QUERY PLAN says `SCAN <table>` for a full scan and names the index
otherwise; each statement the API sends while ingesting and reading is checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from time import monotonic, sleep
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from collector.api.app import create_app
from collector.ingest import prepare, store_group
from collector.settings import Settings
from collector.store.engine import make_engine
from collector.store.migrate import upgrade
from tests.events import dataset, facet, run_event
from tests.test_store_group import mixed_events

FULL_SCAN = re.compile(r"\bSCAN (\w+)$")


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[tuple[TestClient, list[tuple[str, Any]]]]:
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE")):
            statements.append((statement, parameters))

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'plans.db'}"))
    with TestClient(app) as client:
        for engine in (app.state.services.engine, app.state.services.writer._engine):
            event.listen(engine, "before_cursor_execute", record)
        yield client, statements


def test_ingest_and_reads_use_indexes(traced: tuple[TestClient, list[tuple[str, Any]]]) -> None:
    client, statements = traced
    run_id = "6c3a3a0e-1d0f-4a57-9a3c-1b1f2b9a4c11"
    lineage = facet(
        "ColumnLineageDatasetFacet",
        fields={"n": {"inputFields": [{"namespace": "pg", "name": "orders", "field": "id"}]}},
    )
    for kind, time in (("START", "2024-05-01T02:00:00Z"), ("COMPLETE", "2024-05-01T02:05:00Z")):
        event_json = run_event(
            kind,
            run_id=run_id,
            event_time=time,
            inputs=[dataset("orders", "pg", fields=[("id", "int")])],
            outputs=[dataset("daily", "pg", row_count=3, columnLineage=lineage)],
        )
        assert client.post("/api/v1/lineage", json=event_json).status_code == 201
    _post_sql_runs(client)
    for path in (
        "/api/v1/namespaces",
        "/api/v1/namespaces/shop/jobs",
        "/api/v1/namespaces/shop/jobs/orders_daily",
        "/api/v1/namespaces/shop/jobs/orders_daily/runs",
        f"/api/v1/jobs/runs/{run_id}",
        "/api/v1/namespaces/pg/datasets",
        f"/api/v1/namespaces/pg/datasets/{quote('daily')}",
        "/api/v1/lineage?nodeId=job:shop:orders_daily",
        "/api/v1/events/lineage?after=2024-01-01T00:00:00Z",
        "/api/v1/column-lineage?nodeId=datasetField:pg:sql_daily:total&withDownstream=true",
        "/api/v1/column-lineage?nodeId=dataset:pg:orders&withDownstream=true",
        "/api/v1/column-lineage?nodeId=job:shop:orders_sql",
    ):
        assert client.get(path).status_code == 200, path

    app_engine = client.app.state.services.engine  # type: ignore[attr-defined]
    scans = []
    with app_engine.connect() as connection:
        for statement, parameters in statements:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", _one(parameters))
            for row in plan:
                if FULL_SCAN.search(row.detail):
                    scans.append((row.detail, statement))
    assert len(statements) > 40
    assert scans == []


def _post_sql_runs(client: TestClient) -> None:
    """Runs that carry SQL and no columnLineage: the evaluator parses and stores their lineage."""
    sql = facet(
        "SQLJobFacet",
        query="INSERT INTO sql_daily SELECT id, SUM(n) AS total "
        "FROM orders WHERE n > 0 GROUP BY id",
        dialect="postgres",
    )
    broken = facet("SQLJobFacet", query="INSERT INTO broken SELECT (a FROM orders")
    runs = {
        "6c3a3a0e-1d0f-4a57-9a3c-1b1f2b9a4c12": ("orders_sql", sql),
        "6c3a3a0e-1d0f-4a57-9a3c-1b1f2b9a4c13": ("orders_broken", broken),
    }
    for run_id, (job, job_facet) in runs.items():
        event_json = run_event(
            "COMPLETE",
            run_id=run_id,
            job=job,
            event_time="2024-05-01T03:00:00Z",
            inputs=[dataset("orders", "pg", fields=[("id", "int"), ("n", "int")])],
            outputs=[dataset("sql_daily", "pg")],
            job_facets={"sql": job_facet},
        )
        assert client.post("/api/v1/lineage", json=event_json).status_code == 201
    deadline = monotonic() + 20
    path = "/api/v1/column-lineage?nodeId=datasetField:pg:sql_daily:total"
    while client.get(path).status_code != 200 or (
        client.get("/api/v1/jobs/runs/6c3a3a0e-1d0f-4a57-9a3c-1b1f2b9a4c13").json()["sqlParseError"]
        is None
    ):
        assert monotonic() < deadline, "the evaluator did not parse the runs' SQL in time"
        sleep(0.05)


def _one(parameters: Any) -> Any:
    """One statement's parameters (the first set of an executemany)."""
    if isinstance(parameters, list):
        return parameters[0]
    return parameters


def test_a_group_of_events_uses_indexes(tmp_path: Path) -> None:
    """`store_group` over many events (new rows, then the same rows again) is indexed too."""
    engine = make_engine(f"sqlite:///{tmp_path / 'group.db'}", writer=True)
    upgrade(engine)
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE")):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    received_at = datetime.now(UTC)
    documents = mixed_events()
    for group in (documents[:4], documents[4:]):
        with engine.begin() as connection:
            store_group(connection, [prepare(document) for document in group], received_at)
    event.remove(engine, "before_cursor_execute", record)
    scans = []
    with engine.connect() as connection:
        for statement, parameters in statements:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", _one(parameters))
            scans += [(row.detail, statement) for row in plan if FULL_SCAN.search(row.detail)]
    engine.dispose()
    updated = {
        statement.split()[1] for statement, _ in statements if statement.startswith("UPDATE")
    }
    assert {"jobs", "datasets", "runs"} <= updated
    assert scans == []
