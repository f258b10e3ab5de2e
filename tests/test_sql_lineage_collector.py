"""SQL a run carries becomes stored column lineage, after the run, off the request path."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import quote

from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from collector.cli import main
from collector.lineage import parsed
from collector.lineage.parsed import Declared
from collector.store.tables import column_edges, datasets, runs
from tests.events import dataset, facet, run_event

PG = "postgres://db.example:5432"
DAILY_SQL = (
    "INSERT INTO mart.daily SELECT o.day, SUM(o.amount) AS total "
    "FROM raw.orders o WHERE o.status = 'paid' GROUP BY o.day"
)


def sql_facet(query: str, dialect: str | None = "postgres") -> dict[str, Any]:
    fields = {"query": query} | ({"dialect": dialect} if dialect else {})
    return facet("SQLJobFacet", **fields)


def post_run(
    client: TestClient,
    *,
    sql: str | None,
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    job: str = "orders_daily",
    start: str = "2024-05-01T02:00:00Z",
    end: str = "2024-05-01T02:05:00Z",
    dialect: str | None = "postgres",
) -> str:
    """START then COMPLETE of one run whose job facets carry `sql`; its run id."""
    run_id = str(uuid.uuid4())
    job_facets = {"sql": sql_facet(sql, dialect)} if sql is not None else {}
    for kind, at in (("START", start), ("COMPLETE", end)):
        event = run_event(
            kind,
            run_id=run_id,
            event_time=at,
            job=job,
            inputs=inputs,
            outputs=outputs,
            job_facets=job_facets,
        )
        response = client.post("/api/v1/lineage", json=event)
        assert response.status_code == 201, response.text
    return run_id


def judged(engine: Engine, run_id: str) -> None:
    """Wait until the evaluator has handled the run (its SQL lineage comes first)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            done = connection.execute(
                select(runs.c.detected_at).where(runs.c.uuid == uuid.UUID(run_id))
            ).scalar()
        if done is not None:
            return
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} was not judged in time")


def stored_edges(engine: Engine, output: str) -> list[tuple[str, str, str, str, str, bool, str]]:
    """(out_field, input, in_field, type, subtype, masking, source) of the edges into `output`."""
    source = datasets.alias("source")
    target = datasets.alias("target")
    query = (
        select(
            column_edges.c.out_field,
            source.c.name,
            column_edges.c.in_field,
            column_edges.c.type,
            column_edges.c.subtype,
            column_edges.c.masking,
            column_edges.c.source,
        )
        .join(source, source.c.id == column_edges.c.in_dataset_id)
        .join(target, target.c.id == column_edges.c.out_dataset_id)
        .where(target.c.name == output)
    )
    with engine.connect() as connection:
        return sorted(tuple(row) for row in connection.execute(query))  # type: ignore[misc]


def test_sql_without_a_facet_is_stored_as_parsed_edges(client: TestClient, engine: Engine) -> None:
    run_id = post_run(
        client,
        sql=DAILY_SQL,
        inputs=[dataset("raw.orders", PG)],
        outputs=[dataset("mart.daily", PG)],
    )
    judged(engine, run_id)
    assert stored_edges(engine, "mart.daily") == [
        ("", "raw.orders", "day", "INDIRECT", "GROUP_BY", False, "parsed"),
        ("", "raw.orders", "status", "INDIRECT", "FILTER", False, "parsed"),
        ("day", "raw.orders", "day", "DIRECT", "IDENTITY", False, "parsed"),
        ("total", "raw.orders", "amount", "DIRECT", "AGGREGATION", False, "parsed"),
    ]
    run = client.get(f"/api/v1/jobs/runs/{run_id}").json()
    assert run["sqlParseError"] is None

    response = client.get(
        "/api/v1/column-lineage", params={"nodeId": f"datasetField:{PG}:mart.daily:total"}
    )
    assert response.status_code == 200
    nodes = {node["id"]: node for node in response.json()["graph"]}
    total = nodes[f"datasetField:{PG}:mart.daily:total"]
    assert total["type"] == "DATASET_FIELD"
    assert total["data"]["transformationType"] == "AGGREGATION"
    inputs = {i["field"]: i for i in total["data"]["inputFields"]}
    assert inputs["amount"]["dataset"] == "raw.orders"
    assert inputs["amount"]["namespace"] == PG
    assert inputs["amount"]["transformationType"] == "AGGREGATION"
    assert [
        (t["type"], t["subtype"], t["masking"]) for t in inputs["amount"]["transformations"]
    ] == [("DIRECT", "AGGREGATION", False)]
    assert inputs["status"]["transformations"][0]["subtype"] == "FILTER"
    assert inputs["day"]["transformations"][0]["subtype"] == "GROUP_BY"
    assert set(nodes) == {
        f"datasetField:{PG}:mart.daily:total",
        f"datasetField:{PG}:raw.orders:amount",
        f"datasetField:{PG}:raw.orders:day",
        f"datasetField:{PG}:raw.orders:status",
    }


def test_a_producer_facet_wins_over_the_sql(client: TestClient, engine: Engine) -> None:
    lineage = facet(
        "ColumnLineageDatasetFacet",
        fields={"day": {"inputFields": [{"namespace": PG, "name": "raw.orders", "field": "day"}]}},
    )
    run_id = post_run(
        client,
        sql=DAILY_SQL,
        inputs=[dataset("raw.orders", PG)],
        outputs=[dataset("mart.daily", PG, columnLineage=lineage)],
    )
    judged(engine, run_id)
    assert stored_edges(engine, "mart.daily") == [
        ("day", "raw.orders", "day", "DIRECT", "", False, "facet")
    ]


def test_a_later_facet_replaces_parsed_edges_even_from_an_earlier_run(
    client: TestClient, engine: Engine
) -> None:
    inputs = [dataset("raw.orders", PG)]
    first = post_run(
        client,
        sql=DAILY_SQL,
        inputs=inputs,
        outputs=[dataset("mart.daily", PG)],
        start="2024-05-02T02:00:00Z",
        end="2024-05-02T02:05:00Z",
    )
    judged(engine, first)
    assert {edge[-1] for edge in stored_edges(engine, "mart.daily")} == {"parsed"}

    lineage = facet(
        "ColumnLineageDatasetFacet",
        fields={
            "total": {"inputFields": [{"namespace": PG, "name": "raw.orders", "field": "amount"}]}
        },
    )
    late = post_run(  # sent late, with an event time before the parsed run's
        client, sql=None, inputs=inputs, outputs=[dataset("mart.daily", PG, columnLineage=lineage)]
    )
    judged(engine, late)
    assert stored_edges(engine, "mart.daily") == [
        ("total", "raw.orders", "amount", "DIRECT", "", False, "facet")
    ]

    newer = post_run(  # SQL only again: the facet stays
        client,
        sql=DAILY_SQL,
        inputs=inputs,
        outputs=[dataset("mart.daily", PG)],
        start="2024-05-03T02:00:00Z",
        end="2024-05-03T02:05:00Z",
    )
    judged(engine, newer)
    assert {edge[-1] for edge in stored_edges(engine, "mart.daily")} == {"facet"}


def test_select_star_resolves_through_a_stored_schema(client: TestClient, engine: Engine) -> None:
    orders = dataset("shop.public.orders", PG, fields=[("id", "int"), ("amount", "numeric")])
    run_id = post_run(
        client,
        sql="INSERT INTO mart.copy SELECT * FROM public.orders",
        inputs=[orders],
        outputs=[dataset("mart.copy", "warehouse")],
    )
    judged(engine, run_id)
    assert stored_edges(engine, "mart.copy") == [
        ("amount", "shop.public.orders", "amount", "DIRECT", "IDENTITY", False, "parsed"),
        ("id", "shop.public.orders", "id", "DIRECT", "IDENTITY", False, "parsed"),
    ]
    response = client.get(
        "/api/v1/column-lineage", params={"nodeId": "datasetField:warehouse:mart.copy:amount"}
    )
    nodes = {node["id"]: node for node in response.json()["graph"]}
    (amount,) = nodes["datasetField:warehouse:mart.copy:amount"]["data"]["inputFields"]
    assert (amount["namespace"], amount["dataset"]) == (PG, "shop.public.orders")


def test_undeclared_tables_take_the_namespace_of_the_first_declared_dataset(
    client: TestClient, engine: Engine
) -> None:
    run_id = post_run(
        client,
        sql="INSERT INTO mart.daily SELECT o.id FROM raw.orders o JOIN raw.customers c "
        "ON o.customer_id = c.id",
        inputs=[dataset("raw.orders", PG)],
        outputs=[dataset("mart.daily", PG)],
    )
    judged(engine, run_id)
    joined = [edge for edge in stored_edges(engine, "mart.daily") if edge[1] == "raw.customers"]
    assert joined == [("", "raw.customers", "id", "INDIRECT", "JOIN", False, "parsed")]
    response = client.get(f"/api/v1/namespaces/{quote(PG, safe='')}/datasets/raw.customers")
    assert response.status_code == 200


def test_unparseable_sql_is_recorded_on_the_run_and_ingestion_goes_on(
    client: TestClient, engine: Engine
) -> None:
    before = parsed.parse_failures()
    lineage = facet(
        "ColumnLineageDatasetFacet",
        fields={"day": {"inputFields": [{"namespace": PG, "name": "raw.orders", "field": "day"}]}},
    )
    run_id = post_run(  # post_run asserts each event is answered 201
        client,
        sql="SELECT 1;\nINSERT INTO mart.daily\nSELECT (a FROM raw.orders;",
        inputs=[dataset("raw.orders", PG)],
        outputs=[dataset("mart.daily", PG), dataset("mart.other", PG, columnLineage=lineage)],
    )
    judged(engine, run_id)
    run = client.get(f"/api/v1/jobs/runs/{run_id}").json()
    assert run["state"] == "COMPLETED"
    assert "line 3" in run["sqlParseError"]
    assert parsed.parse_failures() > before
    assert stored_edges(engine, "mart.daily") == []
    assert stored_edges(engine, "mart.other") == [
        ("day", "raw.orders", "day", "DIRECT", "", False, "facet")
    ]
    graph = client.get("/api/v1/lineage", params={"nodeId": "job:shop:orders_daily"}).json()
    assert {node["id"] for node in graph["graph"]} == {
        "job:shop:orders_daily",
        f"dataset:{PG}:raw.orders",
        f"dataset:{PG}:mart.daily",
        f"dataset:{PG}:mart.other",
    }
    latest = client.get("/api/v1/namespaces/shop/jobs/orders_daily").json()["latestRun"]
    assert latest["sqlParseError"] == run["sqlParseError"]


def test_an_unknown_dialect_is_parsed_as_generic_sql(client: TestClient, engine: Engine) -> None:
    run_id = post_run(
        client,
        sql="INSERT INTO mart.daily SELECT o.day FROM raw.orders o",
        dialect="no-such-dialect",
        inputs=[dataset("raw.orders", PG)],
        outputs=[dataset("mart.daily", PG)],
    )
    judged(engine, run_id)
    assert stored_edges(engine, "mart.daily") == [
        ("day", "raw.orders", "day", "DIRECT", "IDENTITY", False, "parsed")
    ]


# --- the parts, without a collector ---------------------------------------------------


def test_sql_names_resolve_to_declared_datasets_on_their_last_parts() -> None:
    declared = [Declared("pg", "db.public.orders"), Declared("pg", "orders"), Declared("s3", "x")]
    assert parsed.resolve("public.orders", declared, "ns") == Declared("pg", "db.public.orders")
    assert parsed.resolve("ORDERS", declared, "ns") == Declared("pg", "orders")
    assert parsed.resolve("other.orders", declared, "ns") == Declared("pg", "orders")
    assert parsed.resolve("raw.items", declared, "ns") == Declared("ns", "raw.items")


def test_parses_are_cached_by_sql_dialect_and_schema() -> None:
    sql = f"INSERT INTO t SELECT a FROM s -- {uuid.uuid4()}"
    schema = (("s", (("a", "int"),)),)
    misses = parsed.cache_info().misses
    first = parsed.parse_cached(sql, "postgres", schema)
    assert parsed.parse_cached(sql, "postgres", schema) is first
    assert parsed.cache_info().misses == misses + 1
    parsed.parse_cached(sql, "postgres", (("s", (("a", "bigint"),)),))
    parsed.parse_cached(sql, "snowflake", schema)
    assert parsed.cache_info().misses == misses + 3


def test_the_lineage_command_is_registered(tmp_path: Any) -> None:
    script = tmp_path / "daily.sql"
    script.write_text(DAILY_SQL, encoding="utf-8")
    result = CliRunner().invoke(main, ["lineage", str(script), "--dialect", "postgres"])
    assert result.exit_code == 0, result.output
    assert "mart.daily.total" in result.output
    assert "DIRECT/AGGREGATION" in result.output
