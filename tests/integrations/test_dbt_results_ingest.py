"""How dbt test results, as dbt-ol reports them, are stored: only checks that ran count.

dbt-ol (default mode) sends one test run per model with every test of it as an assertion,
the facet both as an input facet and as a dataset facet; a test dbt skipped after an
upstream failure comes as `success: false` with no failure count (`actual`). In its
structured-log mode a skipped test is an ABORT event. Events here have the shapes dbt-ol
1.54.0 sends (see tests/integrations/test_dbt.py for the real thing), on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from collector.store.tables import quality_assertions, runs
from tests.events import facet, run_event

DBT = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/dbt"
NS = "duckdb:///data/shop.duckdb"
T0, T1 = "2024-05-01T02:00:00Z", "2024-05-01T02:00:05Z"

PASSED = {"assertion": "unique", "column": "customer_id", "success": True, "actual": "0"}
FAILED = {"assertion": "not_null", "column": "email", "success": False, "actual": "1"}
NOT_RUN = {"assertion": "not_null", "column": "full_name", "success": False}


def dbt_test_run(
    *checks: dict[str, Any],
    event_type: str = "FAIL",
    producer: str = DBT,
    checks_on_start: bool = True,
) -> list[dict[str, Any]]:
    """START and the final event of a dbt-ol test run over `shop.customers`.

    The default mode sends the checks with both events; the structured-log mode only with
    the final one (`checks_on_start=False`).
    """
    assertions = facet("DataQualityAssertionsDatasetFacet", assertions=list(checks))
    tested = {
        "namespace": NS,
        "name": "shop.customers",
        "facets": {"dataQualityAssertions": assertions},
        "inputFacets": {"dataQualityAssertions": assertions},
    }
    run_id = str(uuid.uuid4())
    events = []
    for kind, at in (("START", T0), (event_type, T1)):
        inputs = [tested] if checks_on_start or kind != "START" else []
        event = run_event(kind, run_id=run_id, event_time=at, namespace="dbt", inputs=inputs)
        event["producer"] = producer
        events.append(event)
    return events


def send(client: TestClient, events: list[dict[str, Any]]) -> str:
    for event in events:
        response = client.post("/api/v1/lineage", json=event)
        assert response.status_code == 201, response.text
    return str(events[0]["run"]["runId"])


def stored(engine: Engine, run_id: str) -> tuple[str, list[tuple[str, str, bool]]]:
    """The run's state and its stored checks (assertion, column, success), sorted."""
    with engine.connect() as connection:
        state = connection.execute(
            select(runs.c.state).where(runs.c.uuid == uuid.UUID(run_id))
        ).scalar_one()
        checks = connection.execute(
            select(
                quality_assertions.c.assertion,
                quality_assertions.c.column_name,
                quality_assertions.c.success,
            ).where(quality_assertions.c.run_uuid == uuid.UUID(run_id))
        ).all()
    return state, sorted((a, c, bool(s)) for a, c, s in checks)


def test_checks_that_ran_are_stored_once_and_a_skipped_one_is_left_out(
    client: TestClient, engine: Engine
) -> None:
    run_id = send(client, dbt_test_run(PASSED, FAILED, NOT_RUN))
    assert stored(engine, run_id) == (
        "FAILED",
        [("not_null", "email", False), ("unique", "customer_id", True)],
    )


def test_a_test_run_in_which_no_check_ran_is_aborted_not_failed(
    client: TestClient, engine: Engine
) -> None:
    run_id = send(client, dbt_test_run(NOT_RUN, {**NOT_RUN, "column": "email"}))
    assert stored(engine, run_id) == ("ABORTED", [])
    run = client.get(f"/api/v1/jobs/runs/{run_id}").json()
    assert (run["state"], run["durationMs"]) == ("ABORTED", 5000)


def test_a_failed_check_without_a_count_from_another_producer_is_a_failure(
    client: TestClient, engine: Engine
) -> None:
    other = "https://github.com/great-expectations/great_expectations"
    run_id = send(client, dbt_test_run(NOT_RUN, producer=other))
    assert stored(engine, run_id) == ("FAILED", [("not_null", "full_name", False)])


def test_checks_sent_with_an_abort_did_not_run(client: TestClient, engine: Engine) -> None:
    run_id = send(client, dbt_test_run(FAILED, event_type="ABORT", checks_on_start=False))
    assert stored(engine, run_id) == ("ABORTED", [])


def test_skipped_checks_leave_the_last_real_result_in_force_for_consumers(
    client: TestClient,
) -> None:
    send(client, dbt_test_run(PASSED, FAILED))
    send(client, dbt_test_run({**FAILED, "success": False, "actual": None}))  # dbt skipped it
    consumer = {"inputs": [{"namespace": NS, "name": "shop.customers"}]}
    answer = client.post("/api/v1/gates/shop/export_customers", json=consumer).json()
    assert [(r["rule"], r["column"]) for r in answer["reasons"] if r["rule"] != "governance"] == [
        ("failed_quality", "email")
    ]


def structured_test_run(check: dict[str, Any], parent: str, at: str) -> dict[str, Any]:
    """One dbt test as dbt-ol's structured-log mode reports it: a run of its own, a child
    of the dbt invocation's run, its one check on the tested model as a dataset facet."""
    assertions = facet("DataQualityAssertionsDatasetFacet", assertions=[check])
    tested = {
        "namespace": NS,
        "name": "shop.customers",
        "facets": {"dataQualityAssertions": assertions},
    }
    parent_facet = facet(
        "ParentRunFacet", run={"runId": parent}, job={"namespace": "dbt", "name": "dbt-run-shop"}
    )
    kind = "COMPLETE" if check["success"] else "FAIL"
    event = run_event(
        kind,
        event_time=at,
        namespace="dbt",
        job=f"test.shop.{check['assertion']}_{check['column']}",
        inputs=[tested],
        run_facets={"parent": parent_facet},
    )
    event["producer"] = DBT
    return event


def gate_reasons(client: TestClient) -> list[tuple[str, str]]:
    consumer = {"inputs": [{"namespace": NS, "name": "shop.customers"}]}
    answer = client.post("/api/v1/gates/shop/export_customers", json=consumer).json()
    return [(r["rule"], r["column"]) for r in answer["reasons"] if r["rule"] != "governance"]


def test_checks_in_sibling_runs_of_one_invocation_are_judged_together(
    client: TestClient,
) -> None:
    build = str(uuid.uuid4())
    send(client, [structured_test_run(FAILED, build, "2024-05-01T02:00:01Z")])
    send(client, [structured_test_run(PASSED, build, "2024-05-01T02:00:02Z")])
    # the failure came first, yet the model's latest check is the whole invocation's
    assert gate_reasons(client) == [("failed_quality", "email")]
    next_build = str(uuid.uuid4())
    send(client, [structured_test_run({**FAILED, "success": True}, next_build, T1)])
    assert gate_reasons(client) == []
