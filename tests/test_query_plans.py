"""Every query the API runs is indexed: no full table scan, whatever the history length.

SQLite's EXPLAIN QUERY PLAN says `SCAN <table>` for a full scan and names the index
otherwise; each statement the API sends while ingesting and reading is checked. On
PostgreSQL the planner prefers a sequential scan of a small table even where an index
serves, so each statement is explained with sequential scans disabled: a `Seq Scan` left in
the plan is one no index can avoid.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import monotonic, sleep
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, insert, select

from collector.api.app import create_app
from collector.auth import create_token
from collector.ingest import prepare, store_group
from collector.retention import Retention
from collector.settings import Settings
from collector.store.engine import make_engine
from collector.store.migrate import upgrade
from collector.store.prune import removed_totals_of
from collector.store.tables import findings, runs
from tests.events import dataset, facet, run_event
from tests.settled import SettledClient
from tests.test_store_group import mixed_events

FULL_SCAN = re.compile(r"\bSCAN (\w+)$")
SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")


@pytest.fixture
def traced(database_url: str) -> Iterator[tuple[TestClient, list[tuple[str, Any]]]]:
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE")):
            statements.append((statement, parameters))

    app = create_app(Settings(database_url=database_url))
    with SettledClient(app) as client:
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

    assert len(statements) > 40
    assert _full_scans(client, statements) == []


def test_lineage_walks_take_one_indexed_query_per_hop(database_url: str) -> None:
    """Both lineage graphs are read a level at a time, each level one indexed statement: what
    a request sends grows with the hops it walks, not with the jobs and edges on them."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        request = not threading.current_thread().name.startswith("pipewarden-")
        if request and statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    app = create_app(Settings(database_url=database_url))
    with TestClient(app) as client:
        for namespace, width in (("narrow", 1), ("wide", 8)):
            _post_chain(client, namespace, width)
        event.listen(app.state.services.engine, "before_cursor_execute", record)
        statements: list[tuple[str, Any]] = []
        counts: dict[str, dict[str, int]] = {}
        for namespace in ("narrow", "wide"):
            for path in (
                "/api/v1/lineage?nodeId=job:{ns}:step_3&depth=10",
                "/api/v1/lineage?nodeId=dataset:{ns}-db:t0&depth=10",
                "/api/v1/column-lineage?nodeId=job:{ns}:step_3&depth=10",
                "/api/v1/column-lineage?nodeId=dataset:{ns}-db:t0&depth=10&withDownstream=true",
            ):
                sent.clear()
                assert client.get(path.format(ns=namespace)).status_code == 200, path
                counts.setdefault(path, {})[namespace] = len(sent)
                statements += sent
        assert all(count["narrow"] == count["wide"] for count in counts.values()), counts
        # the node, its own links, one statement for each of the chain's 4 levels, the nodes
        assert counts["/api/v1/lineage?nodeId=job:{ns}:step_3&depth=10"]["wide"] == 1 + 1 + 4 + 2
        assert _full_scans(client, statements) == []


def _post_chain(client: TestClient, namespace: str, width: int) -> None:
    """t0 → step_0 → t1 → … → step_3 → t4, column by column; each step also reads
    `width - 1` tables of its own into the same column."""
    db = f"{namespace}-db"
    columns = [("v", "int"), ("k", "int")]

    def source(table: str, field: str, kind: str, subtype: str) -> dict[str, Any]:
        transformation = {"type": kind, "subtype": subtype, "masking": False}
        return {"namespace": db, "name": table, "field": field, "transformations": [transformation]}

    for step in range(4):
        tables = [f"t{step}", *(f"side_{step}_{n}" for n in range(1, width))]
        lineage = facet(
            "ColumnLineageDatasetFacet",
            fields={"v": {"inputFields": [source(t, "v", "DIRECT", "IDENTITY") for t in tables]}},
            dataset=[source(f"t{step}", "k", "INDIRECT", "FILTER")],
        )
        event_json = run_event(
            "COMPLETE",
            namespace=namespace,
            job=f"step_{step}",
            inputs=[dataset(table, db, fields=columns) for table in tables],
            outputs=[dataset(f"t{step + 1}", db, fields=columns, columnLineage=lineage)],
        )
        assert client.post("/api/v1/lineage", json=event_json).status_code == 201


def test_retention_uses_indexes(traced: tuple[TestClient, list[tuple[str, Any]]]) -> None:
    """Counting and removing old history, a batch at a time, walks indexes only."""
    client, statements = traced
    now = datetime.now(UTC)
    for days in (200, 150, 120, 1):
        start = now - timedelta(days=days)
        for kind, at in (("START", start), ("COMPLETE", start + timedelta(minutes=5))):
            event_json = run_event(
                kind,
                run_id=str(uuid.UUID(int=days)),
                event_time=at.isoformat(),
                inputs=[dataset("orders", "pg", fields=[("id", "int"), ("n", "int")][: days % 3])],
                outputs=[dataset("daily", "pg", row_count=3)],
            )
            assert client.post("/api/v1/lineage", json=event_json).status_code == 201
    assert client.get("/api/v1/gates/shop/orders_daily").status_code == 200
    services = client.app.state.services  # type: ignore[attr-defined]
    _wait_until_judged(client)
    statements.clear()
    retention = Retention(services.engine, services.writer.write_sync, 90, batch_size=1)
    assert retention.count(now).runs == 3
    assert retention.prune(now).runs == 3
    with services.engine.connect() as connection:  # what the metrics add back
        assert [row.removed for row in removed_totals_of(connection, "run")] == [3]
    assert len(statements) > 15
    assert _full_scans(client, statements) == []


def _wait_until_judged(client: TestClient) -> None:
    """Until the evaluator has judged every finished run (and so sends nothing more)."""
    services = client.app.state.services  # type: ignore[attr-defined]
    unjudged = select(func.count()).where(runs.c.state_rank == 2, runs.c.detected_at.is_(None))
    deadline = monotonic() + 20
    while True:
        with services.engine.connect() as connection:
            if connection.execute(unjudged).scalar_one() == 0:
                return
        assert monotonic() < deadline, "the evaluator did not judge the runs in time"
        sleep(0.05)


def _full_scans(
    client: TestClient,
    statements: list[tuple[str, Any]],
    sqlite_scan: re.Pattern[str] = FULL_SCAN,
    postgres_scan: re.Pattern[str] = SEQ_SCAN,
) -> list[tuple[str, str]]:
    """(plan line, statement) for each statement the store would answer with a full scan
    (of any table, or of those the patterns name)."""
    app_engine = client.app.state.services.engine  # type: ignore[attr-defined]
    scans = []
    with app_engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            connection.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in statements:
            explain = "EXPLAIN" if postgres else "EXPLAIN QUERY PLAN"
            plan = connection.exec_driver_sql(f"{explain} {statement}", _one(parameters))
            for row in plan:
                line = row[0] if postgres else row.detail
                if (postgres_scan if postgres else sqlite_scan).search(line):
                    scans.append((line, statement))
        connection.rollback()
    return scans


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


def test_a_scoped_tokens_namespace_list_uses_the_index(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    secret, _ = create_token(tokens, "reader", "read", ["shop", "billing"])
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM namespaces" in statement:
            statements.append((statement, parameters))

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", auth_file=str(tokens))
    app = create_app(settings)
    with SettledClient(app) as client:
        event.listen(app.state.services.engine, "before_cursor_execute", record)
        answer = client.get("/api/v1/namespaces", headers={"Authorization": f"Bearer {secret}"})
        assert answer.status_code == 200
        ((statement, parameters),) = statements
        assert " IN " in statement
        with app.state.services.engine.connect() as connection:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", _one(parameters))
            details = [row.detail for row in plan]
    assert any(detail.startswith("SEARCH namespaces") for detail in details), details
    assert not [detail for detail in details if FULL_SCAN.search(detail)], details


def test_a_gate_reading_checks_of_sibling_runs_uses_indexes(
    traced: tuple[TestClient, list[tuple[str, Any]]], tmp_path: Path
) -> None:
    """The latest checks of an input, spread over child runs of one parent (dbt tests)."""
    client, statements = traced
    parent = facet(
        "ParentRunFacet",
        run={"runId": "6c3a3a0e-1d0f-4a57-9a3c-1b1f2b9a4c20"},
        job={"namespace": "dbt", "name": "dbt-run"},
    )
    for n, success in enumerate((False, True)):
        checks = facet(
            "DataQualityAssertionsDatasetFacet",
            assertions=[{"assertion": f"check_{n}", "success": success}],
        )
        tested = dataset("orders", "pg", dataQualityAssertions=checks)
        event_json = run_event(
            "COMPLETE", job=f"test_{n}", inputs=[tested], run_facets={"parent": parent}
        )
        assert client.post("/api/v1/lineage", json=event_json).status_code == 201
    statements.clear()
    consumer = {"inputs": [{"namespace": "pg", "name": "orders"}]}
    answer = client.post("/api/v1/gates/shop/consumer", json=consumer).json()
    assert [r["rule"] for r in answer["reasons"]].count("failed_quality") == 1
    assert _full_scans(client, statements) == []
    app_engine = client.app.state.services.engine  # type: ignore[attr-defined]
    if app_engine.dialect.name != "sqlite":
        return
    with app_engine.connect() as connection:
        plans = [
            (row.detail, statement)
            for statement, parameters in statements
            for row in connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", _one(parameters)
            )
        ]
    # the siblings' checks are found through their runs, not through the dataset's history
    sibling_reads = [detail for detail, s in plans if "quality_assertions.run_uuid IN" in s]
    assert "SEARCH runs USING INDEX ix_runs_parent_run_uuid (parent_run_uuid=?)" in sibling_reads
    assert any("USING INDEX uq_quality_assertions_check" in d for d in sibling_reads)


def test_a_gate_reads_a_few_indexed_statements(
    traced: tuple[TestClient, list[tuple[str, Any]]],
) -> None:
    """A gate reads the job with its newest run and last success, the run's datasets with
    their state, the job's column edges and its inputs' producers, however many inputs;
    schema versions, quality results and anomaly messages only where an input has some.
    Every one of those statements is indexed."""
    client, statements = traced
    orders = [("id", "int"), ("n", "int")]
    reads_id = facet(
        "ColumnLineageDatasetFacet",
        fields={"n": {"inputFields": [{"namespace": "pg", "name": "orders", "field": "id"}]}},
    )
    failed = facet(
        "DataQualityAssertionsDatasetFacet", assertions=[{"assertion": "unique", "success": False}]
    )
    history = [  # (job, time, inputs, outputs)
        ("load_orders", "01:00", [], [dataset("orders", "pg", fields=orders)]),
        (
            "orders_daily",
            "02:00",
            [dataset("orders", "pg"), dataset("customers", "pg")],
            [dataset("daily", "pg", columnLineage=reads_id)],
        ),
        ("load_orders", "03:00", [], [dataset("orders", "pg", fields=orders[:1])]),
        ("check_orders", "03:30", [dataset("orders", "pg", dataQualityAssertions=failed)], []),
        ("plain", "04:00", [dataset(f"plain_{n}", "pg") for n in range(3)], []),
    ]
    for job, time, inputs, outputs in history:
        event_json = run_event(
            "COMPLETE",
            job=job,
            event_time=f"2024-05-01T{time}:00Z",
            inputs=inputs,
            outputs=outputs,
        )
        assert client.post("/api/v1/lineage", json=event_json).status_code == 201
    services = client.app.state.services  # type: ignore[attr-defined]
    services.writer.write_sync(
        lambda connection: connection.execute(
            insert(findings).values(
                key="volume|orders",
                kind="volume",
                namespace="shop",
                job="load_orders",
                dataset_namespace="pg",
                dataset="orders",
                event_time=datetime(2024, 5, 1, 3, tzinfo=UTC),
                detected_at=datetime(2024, 5, 1, 3, tzinfo=UTC),
                severity="warn",
                score=5.0,
                status="open",
                message="orders: 0 rows",
            )
        )
    )
    _wait_until_judged(client)
    services.evaluator.stop()  # so that what is sent below is the gate's alone

    def selects(path: str, plan: dict[str, Any] | None = None) -> list[tuple[str, Any]]:
        """The SELECTs one gate call sends; its answer's rules go to `rules`."""
        statements.clear()
        answer = client.post(path, json=plan) if plan else client.get(path)
        assert answer.status_code == 200, answer.text
        rules[path] = {reason["rule"] for reason in answer.json()["reasons"]}
        return [(s, p) for s, p in statements if s.lstrip().upper().startswith("SELECT")]

    rules: dict[str, set[str]] = {}
    plain = selects("/api/v1/gates/shop/plain")
    assert len(plain) == 4, [s for s, _ in plain]
    known = selects("/api/v1/gates/shop/orders_daily")
    assert len(known) == 7, [s for s, _ in known]  # and a schema change, a check, an anomaly
    found = {"failed_quality", "open_anomaly"}
    assert found | {"breaking_schema_change"} <= rules["/api/v1/gates/shop/orders_daily"]
    declared = selects(
        "/api/v1/gates/shop/new_job",
        {"inputs": [{"namespace": "pg", "name": "orders"}, {"namespace": "pg", "name": "x"}]},
    )
    assert found <= rules["/api/v1/gates/shop/new_job"]  # a new job has no schema to break
    statements[:] = plain + known + declared
    assert _full_scans(client, statements) == []


# Tables that grow with the history (every run, event, check, finding): a hot path may look
# rows up in them by index, never read them through, with or without an index (SQLite says
# `SCAN t USING INDEX i` when it walks a whole index, unless the index is a partial one of
# what waits; tables of jobs and datasets may be read through). Gate decisions are still
# counted per job by a walk of their index at each scrape: the gate would have to count them
# as it records them, as the evaluator counts runs as it judges them.
HISTORY = "(runs|events|run_io|findings|schema_versions|quality_assertions)"
WAITING = "(ix_events_pending|ix_runs_undetected)"  # partial: only what waits is in them
HISTORY_SCAN = re.compile(rf"\bSCAN {HISTORY}\b(?! USING (COVERING )?INDEX {WAITING}\b)")
HISTORY_SEQ_SCAN = re.compile(rf"Seq Scan on {HISTORY}\b")


def _post_history(client: TestClient, jobs: int, days: int) -> None:
    """`days` daily runs of `jobs` jobs, the last of each job failed, all judged."""
    now = datetime.now(UTC).replace(microsecond=0)
    batch = []
    for job in range(jobs):
        for day in range(days, 0, -1):
            start = now - timedelta(days=day, minutes=job)
            run_id = str(uuid.uuid4())
            end = "FAIL" if day == 1 else "COMPLETE"
            for kind, at in (("START", start), (end, start + timedelta(minutes=5 + day % 3))):
                batch.append(
                    run_event(
                        kind,
                        run_id=run_id,
                        job=f"job_{job}",
                        event_time=at.isoformat(),
                        outputs=[dataset(f"out_{job}", "pg", row_count=100 + day % 7)],
                    )
                )
    assert client.post("/api/v1/lineage/batch", json=batch).status_code == 200
    _wait_until_judged(client)


def _history_scans(client: TestClient, statements: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """(plan line, statement) for each statement that reads a history table through."""
    return _full_scans(client, statements, HISTORY_SCAN, HISTORY_SEQ_SCAN)


def test_a_scrape_reads_no_history_through(
    traced: tuple[TestClient, list[tuple[str, Any]]],
) -> None:
    """`/metrics` reads per job and dataset, the runs awaiting judgement and the KPI window:
    its statements and what each reads stay the same however many runs are stored."""
    client, statements = traced
    _post_history(client, jobs=3, days=12)
    assert client.get("/api/v1/gates/shop/job_0").status_code == 200
    statements.clear()
    exposition = client.get("/metrics").text
    assert 'pipewarden_runs_total{namespace="shop",pipeline="job_2",state="failed"} 1.0' in (
        exposition
    )
    assert _history_scans(client, statements) == []
    first = [statement for statement, _ in statements]
    app_engine = client.app.state.services.engine  # type: ignore[attr-defined]
    if app_engine.dialect.name == "sqlite":
        with app_engine.connect() as connection:
            latest, parameters = next(s for s in statements if "AS failed_at" in s[0])
            explained = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {latest}", parameters)
            plan = [row.detail for row in explained]
        step = "SEARCH runs USING INDEX ix_runs_job_id_state_created_at (job_id=? AND state=?)"
        assert plan.count(step) == 2, plan  # the latest success and failure of each job

    _post_history(client, jobs=6, days=12)  # more jobs, more runs: the same statements
    statements.clear()
    client.get("/metrics")
    assert [statement for statement, _ in statements] == first


def test_judging_a_run_and_the_evaluators_tick_use_indexes(
    traced: tuple[TestClient, list[tuple[str, Any]]],
) -> None:
    """A run's judgement reads its job's latest runs; the tick reads each job's latest starts."""
    client, statements = traced
    _post_history(client, jobs=2, days=30)
    statements.clear()
    _post_history(client, jobs=2, days=1)  # judged against the 30 days before
    services = client.app.state.services  # type: ignore[attr-defined]
    services.evaluator.tick(datetime.now(UTC))
    reads = [s for s, _ in statements if s.lstrip().upper().startswith("SELECT")]
    history = [s for s in reads if "runs.created_at <" in s]  # a job's runs before one
    assert history
    assert all("LIMIT" in s and "runs.facets" not in s for s in history), history
    assert _history_scans(client, statements) == []
