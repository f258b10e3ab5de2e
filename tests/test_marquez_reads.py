"""Marquez-compatible reads over a small, known history, on SQLite and on PostgreSQL.

The history is two jobs in namespace `shop`:

- `orders_daily` reads `public.orders` and writes `public.daily_orders` (both in
  `postgres://db.example:5432`), twice: run 1 on May 1 (schema of two columns, 100 rows),
  run 2 on May 2 (a third column, 120 rows, data-quality assertions).
- `warehouse.export/daily_csv` reads `public.daily_orders` and writes
  `s3://bucket/exports/daily.csv` in namespace `s3://bucket`; its one run fails.

Every event goes in through `POST /api/v1/lineage`, in event-time order; each test then
asserts exact values read back through the Marquez paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tests.events import dataset, facet, run_event

NS = "shop"
PG = "postgres://db.example:5432"
S3 = "s3://bucket"
ORDERS = "public.orders"
DAILY = "public.daily_orders"
EXPORT = "s3://bucket/exports/daily.csv"
JOB = "orders_daily"
EXPORT_JOB = "warehouse.export/daily_csv"

RUN_1 = "0b0f1c3e-6a43-4c55-8e1a-5f3f4a7b9c01"
RUN_2 = "0b0f1c3e-6a43-4c55-8e1a-5f3f4a7b9c02"
RUN_3 = "0b0f1c3e-6a43-4c55-8e1a-5f3f4a7b9c03"
UNKNOWN_RUN = "0b0f1c3e-6a43-4c55-8e1a-5f3f4a7b9cff"

SQL = facet(
    "SQLJobFacet",
    query="INSERT INTO public.daily_orders SELECT date(created_at), count(*), sum(amount) "
    "FROM public.orders GROUP BY 1",
    dialect="postgres",
)
ORDERS_FIELDS = [("id", "INTEGER"), ("amount", "DECIMAL(10,2)"), ("created_at", "TIMESTAMP")]
DAILY_FIELDS_V1 = [("day", "DATE"), ("orders", "BIGINT")]
DAILY_FIELDS_V2 = [*DAILY_FIELDS_V1, ("revenue", "DECIMAL(12,2)")]
EXPORT_FIELDS = [("day", "string"), ("orders", "long")]
ASSERTIONS = facet(
    "DataQualityAssertionsDatasetFacet",
    assertions=[
        {"assertion": "not_null", "success": True, "column": "day"},
        {"assertion": "row_count_positive", "success": True},
    ],
)
ERROR = facet(
    "ErrorMessageRunFacet", message="bucket is not writable", programmingLanguage="python"
)


def nominal(day: int) -> dict[str, Any]:
    return facet(
        "NominalTimeRunFacet",
        nominalStartTime=f"2024-05-0{day}T00:00:00Z",
        nominalEndTime=f"2024-05-0{day + 1}T00:00:00Z",
    )


def statistics(rows: int) -> dict[str, Any]:
    return facet("OutputStatisticsOutputDatasetFacet", rowCount=rows)


def schema(fields: list[tuple[str, str]]) -> dict[str, Any]:
    return facet("SchemaDatasetFacet", fields=[{"name": n, "type": t} for n, t in fields])


def history() -> list[dict[str, Any]]:
    """The six events of the fixture history, oldest first."""
    orders = dataset(ORDERS, PG, fields=ORDERS_FIELDS)
    return [
        run_event(
            "START",
            run_id=RUN_1,
            event_time="2024-05-01T02:00:00Z",
            job=JOB,
            inputs=[orders],
            outputs=[dataset(DAILY, PG, fields=DAILY_FIELDS_V1)],
            job_facets={"sql": SQL},
            run_facets={"nominalTime": nominal(1)},
        ),
        run_event(
            "COMPLETE",
            run_id=RUN_1,
            event_time="2024-05-01T02:01:30.250Z",
            job=JOB,
            inputs=[orders],
            outputs=[dataset(DAILY, PG, fields=DAILY_FIELDS_V1, row_count=100)],
            job_facets={"sql": SQL},
        ),
        run_event(
            "START",
            run_id=RUN_2,
            event_time="2024-05-02T02:00:00Z",
            job=JOB,
            inputs=[orders],
            outputs=[dataset(DAILY, PG, fields=DAILY_FIELDS_V2)],
            job_facets={"sql": SQL},
            run_facets={"nominalTime": nominal(2)},
        ),
        run_event(
            "COMPLETE",
            run_id=RUN_2,
            event_time="2024-05-02T02:02:00Z",
            job=JOB,
            inputs=[orders],
            outputs=[
                dataset(
                    DAILY,
                    PG,
                    fields=DAILY_FIELDS_V2,
                    row_count=120,
                    dataQualityAssertions=ASSERTIONS,
                )
            ],
            job_facets={"sql": SQL},
        ),
        run_event(
            "START",
            run_id=RUN_3,
            event_time="2024-05-02T03:00:00Z",
            job=EXPORT_JOB,
            inputs=[dataset(DAILY, PG)],
            outputs=[dataset(EXPORT, S3, fields=EXPORT_FIELDS)],
        ),
        run_event(
            "FAIL",
            run_id=RUN_3,
            event_time="2024-05-02T03:00:05Z",
            job=EXPORT_JOB,
            inputs=[dataset(DAILY, PG)],
            outputs=[dataset(EXPORT, S3, fields=EXPORT_FIELDS)],
            run_facets={"errorMessage": ERROR},
        ),
    ]


@dataclass(frozen=True)
class Shop:
    client: TestClient
    events: list[dict[str, Any]]


@pytest.fixture
def shop(client: TestClient) -> Shop:
    sent = history()
    for event in sent:
        response = client.post("/api/v1/lineage", json=event)
        assert response.status_code == 201, response.text
        assert response.json() == {"status": "stored"}
    return Shop(client, sent)


def q(name: str) -> str:
    """A name as a client puts it in a path segment."""
    return quote(name, safe="")


def get(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def error(client: TestClient, path: str, status: int, **params: Any) -> str:
    """The message of an error answer, after checking its status and shape."""
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "errors"}
    assert body["code"] == status
    message: str = body["message"]
    return message


# --- namespaces -------------------------------------------------------------------------


def test_namespaces_lists_job_and_dataset_namespaces(shop: Shop) -> None:
    body = get(shop.client, "/api/v1/namespaces")
    # Like Marquez, the OpenLineage write path creates a namespace and never touches it
    # again, so updatedAt is the time of the first event that named it.
    assert body == {
        "namespaces": [
            {
                "name": PG,
                "createdAt": "2024-05-01T02:00:00Z",
                "updatedAt": "2024-05-01T02:00:00Z",
                "ownerName": "anonymous",
                "description": None,
                "isHidden": False,
            },
            {
                "name": S3,
                "createdAt": "2024-05-02T03:00:00Z",
                "updatedAt": "2024-05-02T03:00:00Z",
                "ownerName": "anonymous",
                "description": None,
                "isHidden": False,
            },
            {
                "name": NS,
                "createdAt": "2024-05-01T02:00:00Z",
                "updatedAt": "2024-05-01T02:00:00Z",
                "ownerName": "anonymous",
                "description": None,
                "isHidden": False,
            },
        ]
    }


def test_namespaces_page_with_limit_and_offset(shop: Shop) -> None:
    body = get(shop.client, "/api/v1/namespaces", limit=1, offset=1)
    assert [item["name"] for item in body["namespaces"]] == [S3]


def test_one_namespace_whose_name_holds_a_scheme_and_a_port(shop: Shop) -> None:
    body = get(shop.client, f"/api/v1/namespaces/{q(PG)}")
    assert body["name"] == PG
    assert body["createdAt"] == "2024-05-01T02:00:00Z"
    assert body["ownerName"] == "anonymous"


# --- jobs ---------------------------------------------------------------------------------


def test_jobs_of_a_namespace_with_total_count(shop: Shop) -> None:
    body = get(shop.client, f"/api/v1/namespaces/{NS}/jobs")
    assert set(body) == {"jobs", "totalCount"}
    assert body["totalCount"] == 2
    # Ordered by name, as Marquez does.
    assert [job["id"] for job in body["jobs"]] == [
        {"namespace": NS, "name": JOB},
        {"namespace": NS, "name": EXPORT_JOB},
    ]
    latest = {job["name"]: job["latestRun"]["id"] for job in body["jobs"]}
    assert latest == {JOB: RUN_2, EXPORT_JOB: RUN_3}


def test_jobs_page_with_limit_and_offset(shop: Shop) -> None:
    first = get(shop.client, f"/api/v1/namespaces/{NS}/jobs", limit=1)
    second = get(shop.client, f"/api/v1/namespaces/{NS}/jobs", limit=1, offset=1)
    past_the_end = get(shop.client, f"/api/v1/namespaces/{NS}/jobs", limit=5, offset=2)
    assert [job["name"] for job in first["jobs"]] == [JOB]
    assert [job["name"] for job in second["jobs"]] == [EXPORT_JOB]
    assert (first["totalCount"], second["totalCount"]) == (2, 2)
    assert past_the_end == {"jobs": [], "totalCount": 2}


def test_a_namespace_without_jobs_lists_none(shop: Shop) -> None:
    assert get(shop.client, f"/api/v1/namespaces/{q(PG)}/jobs") == {"jobs": [], "totalCount": 0}


def test_job_with_inputs_outputs_latest_run_and_facets(shop: Shop) -> None:
    job = get(shop.client, f"/api/v1/namespaces/{NS}/jobs/{JOB}")
    assert job["id"] == {"namespace": NS, "name": JOB}
    assert job["name"] == JOB
    assert job["namespace"] == NS
    assert job["type"] == "BATCH"
    assert job["createdAt"] == "2024-05-01T02:00:00Z"
    assert job["updatedAt"] == "2024-05-02T02:02:00Z"
    assert job["inputs"] == [{"namespace": PG, "name": ORDERS}]
    assert job["outputs"] == [{"namespace": PG, "name": DAILY}]
    assert job["facets"] == {"sql": SQL}
    latest = job["latestRun"]
    assert latest["id"] == RUN_2
    assert latest["state"] == "COMPLETED"
    assert latest["startedAt"] == "2024-05-02T02:00:00Z"
    assert latest["endedAt"] == "2024-05-02T02:02:00Z"
    assert latest["durationMs"] == 120_000
    assert job["latestRuns"] == [latest]


def test_job_whose_name_holds_a_dot_and_a_slash(shop: Shop) -> None:
    job = get(shop.client, f"/api/v1/namespaces/{NS}/jobs/{q(EXPORT_JOB)}")
    assert job["id"] == {"namespace": NS, "name": EXPORT_JOB}
    assert job["inputs"] == [{"namespace": PG, "name": DAILY}]
    assert job["outputs"] == [{"namespace": S3, "name": EXPORT}]
    assert job["facets"] == {}
    assert job["latestRun"]["id"] == RUN_3
    assert job["latestRun"]["state"] == "FAILED"
    assert job["latestRun"]["durationMs"] == 5_000


def test_runs_of_a_job_newest_first(shop: Shop) -> None:
    body = get(shop.client, f"/api/v1/namespaces/{NS}/jobs/{JOB}/runs")
    assert [run["id"] for run in body["runs"]] == [RUN_2, RUN_1]
    assert [run["state"] for run in body["runs"]] == ["COMPLETED", "COMPLETED"]
    assert [run["durationMs"] for run in body["runs"]] == [120_000, 90_250]
    assert body["totalCount"] == 2
    page = get(shop.client, f"/api/v1/namespaces/{NS}/jobs/{JOB}/runs", limit=1, offset=1)
    assert [run["id"] for run in page["runs"]] == [RUN_1]


def test_runs_of_a_job_whose_name_holds_a_slash(shop: Shop) -> None:
    body = get(shop.client, f"/api/v1/namespaces/{NS}/jobs/{q(EXPORT_JOB)}/runs")
    assert [run["id"] for run in body["runs"]] == [RUN_3]


# --- runs ---------------------------------------------------------------------------------


def test_a_completed_run_by_id(shop: Shop) -> None:
    run = get(shop.client, f"/api/v1/jobs/runs/{RUN_1}")
    assert run["id"] == RUN_1
    assert run["state"] == "COMPLETED"
    assert run["createdAt"] == "2024-05-01T02:00:00Z"
    assert run["updatedAt"] == "2024-05-01T02:01:30.250000Z"
    assert run["startedAt"] == "2024-05-01T02:00:00Z"
    assert run["endedAt"] == "2024-05-01T02:01:30.250000Z"
    assert run["durationMs"] == 90_250
    assert run["nominalStartTime"] == "2024-05-01T00:00:00Z"
    assert run["nominalEndTime"] == "2024-05-02T00:00:00Z"
    assert run["facets"] == {"nominalTime": nominal(1)}
    assert run["inputDatasetVersions"] == [
        {
            "datasetVersionId": {"namespace": PG, "name": ORDERS, "version": None},
            "facets": {},
            "rowCount": None,
            "bytes": None,
        }
    ]
    assert run["outputDatasetVersions"] == [
        {
            "datasetVersionId": {"namespace": PG, "name": DAILY, "version": None},
            "facets": {"outputStatistics": statistics(100)},
            "rowCount": 100,
            "bytes": None,
        }
    ]


def test_a_failed_run_by_id(shop: Shop) -> None:
    run = get(shop.client, f"/api/v1/jobs/runs/{RUN_3}")
    assert run["state"] == "FAILED"
    assert run["startedAt"] == "2024-05-02T03:00:00Z"
    assert run["endedAt"] == "2024-05-02T03:00:05Z"
    assert run["durationMs"] == 5_000
    assert run["nominalStartTime"] is None
    assert run["facets"] == {"errorMessage": ERROR}


def test_a_run_id_in_upper_case_is_the_same_run(shop: Shop) -> None:
    assert get(shop.client, f"/api/v1/jobs/runs/{RUN_2.upper()}")["id"] == RUN_2


def test_a_run_id_that_is_not_a_uuid_is_400(shop: Shop) -> None:
    message = error(shop.client, "/api/v1/jobs/runs/not-a-uuid", 400)
    assert message == "run id 'not-a-uuid' is not a UUID"


def test_an_unknown_run_is_404(shop: Shop) -> None:
    assert error(shop.client, f"/api/v1/jobs/runs/{UNKNOWN_RUN}", 404) == (
        f"run {UNKNOWN_RUN} not found"
    )


# --- datasets -----------------------------------------------------------------------------


def test_datasets_of_a_namespace_with_total_count(shop: Shop) -> None:
    body = get(shop.client, f"/api/v1/namespaces/{q(PG)}/datasets")
    assert set(body) == {"datasets", "totalCount"}
    assert body["totalCount"] == 2
    assert [item["id"] for item in body["datasets"]] == [
        {"namespace": PG, "name": DAILY},
        {"namespace": PG, "name": ORDERS},
    ]
    page = get(shop.client, f"/api/v1/namespaces/{q(PG)}/datasets", limit=1, offset=1)
    assert [item["name"] for item in page["datasets"]] == [ORDERS]
    assert page["totalCount"] == 2


def test_dataset_fields_come_from_the_latest_schema(shop: Shop) -> None:
    item = get(shop.client, f"/api/v1/namespaces/{q(PG)}/datasets/{q(DAILY)}")
    assert item["id"] == {"namespace": PG, "name": DAILY}
    assert item["name"] == DAILY
    assert item["physicalName"] == DAILY
    assert item["namespace"] == PG
    assert item["sourceName"] == PG
    assert item["fields"] == [
        {"name": "day", "type": "DATE", "tags": [], "description": None},
        {"name": "orders", "type": "BIGINT", "tags": [], "description": None},
        {"name": "revenue", "type": "DECIMAL(12,2)", "tags": [], "description": None},
    ]
    assert item["createdAt"] == "2024-05-01T02:00:00Z"
    assert item["lastModifiedAt"] == "2024-05-02T02:02:00Z"
    assert isinstance(item["currentVersion"], str)


def test_dataset_facets_include_statistics_and_assertions(shop: Shop) -> None:
    """The latest write's outputStatistics and the assertions are shown (Marquez drops them).

    The export job read the dataset after run 2 wrote it: a later read does not hide what
    the latest write reported.
    """
    item = get(shop.client, f"/api/v1/namespaces/{q(PG)}/datasets/{q(DAILY)}")
    assert item["facets"]["schema"] == schema(DAILY_FIELDS_V2)
    assert item["facets"]["dataQualityAssertions"] == ASSERTIONS
    assert item["facets"]["outputStatistics"] == statistics(120)
    assert set(item["facets"]) == {"schema", "dataQualityAssertions", "outputStatistics"}


def test_an_input_only_dataset(shop: Shop) -> None:
    item = get(shop.client, f"/api/v1/namespaces/{q(PG)}/datasets/{q(ORDERS)}")
    assert item["fields"] == [
        {"name": name, "type": kind, "tags": [], "description": None}
        for name, kind in ORDERS_FIELDS
    ]
    assert item["facets"] == {"schema": schema(ORDERS_FIELDS)}
    assert item["lastModifiedAt"] is None


def test_a_dataset_whose_name_holds_slashes_and_a_scheme(shop: Shop) -> None:
    item = get(shop.client, f"/api/v1/namespaces/{q(S3)}/datasets/{q(EXPORT)}")
    assert item["id"] == {"namespace": S3, "name": EXPORT}
    assert item["fields"] == [
        {"name": name, "type": kind, "tags": [], "description": None}
        for name, kind in EXPORT_FIELDS
    ]
    # The one run that wrote it failed: the file was not modified.
    assert item["lastModifiedAt"] is None
    listed = get(shop.client, f"/api/v1/namespaces/{q(S3)}/datasets")
    assert [found["name"] for found in listed["datasets"]] == [EXPORT]
    assert listed["totalCount"] == 1


# --- not found ----------------------------------------------------------------------------


def test_an_unknown_namespace_is_404(shop: Shop) -> None:
    assert error(shop.client, "/api/v1/namespaces/nowhere", 404) == (
        "namespace 'nowhere' not found"
    )


@pytest.mark.parametrize("collection", ["jobs", "datasets"])
def test_listing_in_an_unknown_namespace_is_404(shop: Shop, collection: str) -> None:
    """Marquez answers 404 (NamespaceNotFound) rather than an empty page."""
    message = error(shop.client, f"/api/v1/namespaces/nowhere/{collection}", 404)
    assert "nowhere" in message
    assert "not found" in message


def test_an_unknown_job_is_404_naming_it(shop: Shop) -> None:
    expected = "job 'no.such/job' not found in namespace 'shop'"
    assert error(shop.client, f"/api/v1/namespaces/{NS}/jobs/{q('no.such/job')}", 404) == (expected)
    assert (
        error(shop.client, f"/api/v1/namespaces/{NS}/jobs/{q('no.such/job')}/runs", 404) == expected
    )


def test_a_job_is_not_found_in_another_namespace(shop: Shop) -> None:
    assert error(shop.client, f"/api/v1/namespaces/{q(PG)}/jobs/{JOB}", 404) == (
        f"job '{JOB}' not found in namespace '{PG}'"
    )


def test_an_unknown_dataset_is_404_naming_it(shop: Shop) -> None:
    path = f"/api/v1/namespaces/{q(PG)}/datasets/{q('public.missing')}"
    assert error(shop.client, path, 404) == (
        f"dataset 'public.missing' not found in namespace '{PG}'"
    )


def test_a_dataset_is_not_found_in_another_namespace(shop: Shop) -> None:
    path = f"/api/v1/namespaces/{q(S3)}/datasets/{q(DAILY)}"
    assert error(shop.client, path, 404) == f"dataset '{DAILY}' not found in namespace '{S3}'"


# --- lineage graph ------------------------------------------------------------------------

JOB_NODE = f"job:{NS}:{JOB}"
EXPORT_JOB_NODE = f"job:{NS}:{EXPORT_JOB}"
ORDERS_NODE = f"dataset:{PG}:{ORDERS}"
DAILY_NODE = f"dataset:{PG}:{DAILY}"
EXPORT_NODE = f"dataset:{S3}:{EXPORT}"


def edge(origin: str, destination: str) -> dict[str, str]:
    return {"origin": origin, "destination": destination}


def lineage(client: TestClient, node_id: str, depth: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"nodeId": node_id}
    if depth is not None:
        params["depth"] = depth
    body = get(client, "/api/v1/lineage", **params)
    assert set(body) == {"graph"}
    nodes: dict[str, Any] = {}
    for node in body["graph"]:
        assert node["id"] not in nodes, f"{node['id']} is in the graph twice"
        nodes[node["id"]] = node
    return nodes


def assert_edges_consistent(nodes: dict[str, Any]) -> None:
    """Every edge is listed at both ends: out of its origin and into its destination."""
    for node_id, node in nodes.items():
        for item in node["outEdges"]:
            assert item["origin"] == node_id
            assert item in nodes[item["destination"]]["inEdges"]
        for item in node["inEdges"]:
            assert item["destination"] == node_id
            assert item in nodes[item["origin"]]["outEdges"]


def test_lineage_of_a_job_reaches_the_whole_chain(shop: Shop) -> None:
    nodes = lineage(shop.client, JOB_NODE)
    assert {node_id: node["type"] for node_id, node in nodes.items()} == {
        JOB_NODE: "JOB",
        EXPORT_JOB_NODE: "JOB",
        ORDERS_NODE: "DATASET",
        DAILY_NODE: "DATASET",
        EXPORT_NODE: "DATASET",
    }
    assert nodes[ORDERS_NODE]["inEdges"] == []
    assert nodes[ORDERS_NODE]["outEdges"] == [edge(ORDERS_NODE, JOB_NODE)]
    assert nodes[JOB_NODE]["inEdges"] == [edge(ORDERS_NODE, JOB_NODE)]
    assert nodes[JOB_NODE]["outEdges"] == [edge(JOB_NODE, DAILY_NODE)]
    assert nodes[DAILY_NODE]["inEdges"] == [edge(JOB_NODE, DAILY_NODE)]
    assert nodes[DAILY_NODE]["outEdges"] == [edge(DAILY_NODE, EXPORT_JOB_NODE)]
    assert nodes[EXPORT_JOB_NODE]["inEdges"] == [edge(DAILY_NODE, EXPORT_JOB_NODE)]
    assert nodes[EXPORT_JOB_NODE]["outEdges"] == [edge(EXPORT_JOB_NODE, EXPORT_NODE)]
    assert nodes[EXPORT_NODE]["inEdges"] == [edge(EXPORT_JOB_NODE, EXPORT_NODE)]
    assert nodes[EXPORT_NODE]["outEdges"] == []
    assert_edges_consistent(nodes)


def test_lineage_node_data(shop: Shop) -> None:
    nodes = lineage(shop.client, JOB_NODE)
    job = nodes[JOB_NODE]["data"]
    assert job["id"] == {"namespace": NS, "name": JOB}
    assert job["inputs"] == [{"namespace": PG, "name": ORDERS}]
    assert job["outputs"] == [{"namespace": PG, "name": DAILY}]
    assert job["facets"] == {"sql": SQL}
    exported = nodes[EXPORT_NODE]["data"]
    assert exported["id"] == {"namespace": S3, "name": EXPORT}
    assert exported["name"] == EXPORT
    assert exported["namespace"] == S3


def test_lineage_at_depth_zero_is_the_job_and_its_datasets(shop: Shop) -> None:
    nodes = lineage(shop.client, JOB_NODE, depth=0)
    assert set(nodes) == {JOB_NODE, ORDERS_NODE, DAILY_NODE}
    assert nodes[JOB_NODE]["inEdges"] == [edge(ORDERS_NODE, JOB_NODE)]
    assert nodes[JOB_NODE]["outEdges"] == [edge(JOB_NODE, DAILY_NODE)]
    # The export job is beyond depth 0: no dangling edge towards it.
    assert nodes[DAILY_NODE]["outEdges"] == []
    assert_edges_consistent(nodes)


def test_lineage_from_a_dataset_whose_namespace_holds_a_port(shop: Shop) -> None:
    nodes = lineage(shop.client, DAILY_NODE, depth=0)
    assert set(nodes) == {DAILY_NODE, JOB_NODE, EXPORT_JOB_NODE, ORDERS_NODE, EXPORT_NODE}
    assert nodes[DAILY_NODE]["type"] == "DATASET"
    assert nodes[DAILY_NODE]["inEdges"] == [edge(JOB_NODE, DAILY_NODE)]
    assert nodes[DAILY_NODE]["outEdges"] == [edge(DAILY_NODE, EXPORT_JOB_NODE)]
    assert_edges_consistent(nodes)


def test_lineage_from_a_dataset_whose_name_holds_a_scheme(shop: Shop) -> None:
    nodes = lineage(shop.client, EXPORT_NODE, depth=0)
    assert set(nodes) == {EXPORT_NODE, EXPORT_JOB_NODE, DAILY_NODE}
    assert nodes[EXPORT_NODE]["inEdges"] == [edge(EXPORT_JOB_NODE, EXPORT_NODE)]
    assert_edges_consistent(nodes)


def test_lineage_of_an_unknown_node_is_404(shop: Shop) -> None:
    node = f"dataset:{PG}:public.missing"
    assert error(shop.client, "/api/v1/lineage", 404, nodeId=node) == f"node '{node}' not found"


@pytest.mark.parametrize("node_id", ["orders_daily", "run:shop:orders_daily", "job:shop"])
def test_lineage_of_a_malformed_node_id_is_400(shop: Shop, node_id: str) -> None:
    message = error(shop.client, "/api/v1/lineage", 400, nodeId=node_id)
    assert message.startswith(f"nodeId {node_id!r} is not of the form job:<namespace>:<name>")


# --- raw events ---------------------------------------------------------------------------


def test_events_are_returned_as_sent_newest_first(shop: Shop) -> None:
    body = get(shop.client, "/api/v1/events/lineage")
    assert set(body) == {"events", "totalCount"}
    assert body["totalCount"] == 6
    assert body["events"] == list(reversed(shop.events))
    # Key order too: the raw event, not a re-serialised model of it.
    assert [list(event) for event in body["events"]] == [
        list(event) for event in reversed(shop.events)
    ]


def test_events_oldest_first(shop: Shop) -> None:
    body = get(shop.client, "/api/v1/events/lineage", sortDirection="asc")
    assert body["events"] == shop.events
    assert body["totalCount"] == 6


def test_events_page_with_limit_and_offset(shop: Shop) -> None:
    body = get(shop.client, "/api/v1/events/lineage", limit=2, offset=1)
    assert body["events"] == [shop.events[4], shop.events[3]]
    assert body["totalCount"] == 6
    body = get(shop.client, "/api/v1/events/lineage", limit=2, offset=1, sortDirection="asc")
    assert body["events"] == [shop.events[1], shop.events[2]]


def test_events_after_a_time(shop: Shop) -> None:
    body = get(shop.client, "/api/v1/events/lineage", after="2024-05-02T00:00:00Z")
    assert body == {"events": shop.events[:1:-1], "totalCount": 4}


def test_events_before_a_time(shop: Shop) -> None:
    body = get(shop.client, "/api/v1/events/lineage", before="2024-05-02T00:00:00Z")
    assert body == {"events": [shop.events[1], shop.events[0]], "totalCount": 2}


def test_events_between_two_times_given_with_an_offset(shop: Shop) -> None:
    # 04:30+02:00 is 02:30Z: after run 2 ended, before the export started.
    body = get(
        shop.client,
        "/api/v1/events/lineage",
        after="2024-05-01T12:00:00+00:00",
        before="2024-05-02T04:30:00+02:00",
        sortDirection="asc",
    )
    assert body == {"events": [shop.events[2], shop.events[3]], "totalCount": 2}


def test_events_after_a_time_without_an_offset_reads_it_as_utc(shop: Shop) -> None:
    """Like an eventTime without an offset, a bound without one is UTC (not a 500)."""
    response = shop.client.get("/api/v1/events/lineage", params={"after": "2024-05-02T02:30:00"})
    assert response.status_code == 200, response.text
    assert response.json() == {"events": [shop.events[5], shop.events[4]], "totalCount": 2}


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"sortDirection": "sideways"}, "sortDirection"),
        ({"limit": -1}, "limit"),
        ({"offset": -1}, "offset"),
        ({"after": "yesterday"}, "after"),
    ],
)
def test_bad_event_query_parameters_are_400_naming_them(
    shop: Shop, params: dict[str, Any], parameter: str
) -> None:
    assert parameter in error(shop.client, "/api/v1/events/lineage", 400, **params)


def test_no_events_in_an_empty_store(client: TestClient) -> None:
    assert get(client, "/api/v1/events/lineage") == {"events": [], "totalCount": 0}
    assert get(client, "/api/v1/namespaces") == {"namespaces": []}


# --- health -------------------------------------------------------------------------------


def test_healthz_names_the_store(client: TestClient, database_url: str) -> None:
    expected = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    assert get(client, "/healthz") == {
        "status": "ok",
        "store": expected,
        "events_awaiting_derivation": 0,
    }
