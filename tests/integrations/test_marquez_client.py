"""The marquez-python client (Marquez's own) reading a real `pipewarden serve`.

Two runs are sent with the openlineage-python client, as any integration sends them: a load
writing `crm.customers`, and a build reading it and writing `mart.contacts`, whose
`full_name` is made of `first_name` and `last_name`. Then MarquezClient lists and reads
them back exactly as it reads Marquez.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from marquez_client import MarquezClient
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import column_lineage_dataset, schema_dataset
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.uuid import generate_new_uuid

from tests.shim_helpers import running_collector

pytestmark = pytest.mark.e2e

JOBS = "crm"
PG = "postgres://db.example:5432"
PRODUCER = "https://github.com/pipewarden/tests/marquez-client"
CUSTOMER_FIELDS = [("id", "INTEGER"), ("first_name", "TEXT"), ("last_name", "TEXT")]


def schema(fields: list[tuple[str, str]]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in fields]
    )


def from_customers(field: str) -> column_lineage_dataset.InputField:
    return column_lineage_dataset.InputField(
        namespace=PG,
        name="crm.customers",
        field=field,
        transformations=[
            column_lineage_dataset.Transformation(
                type="DIRECT", subtype="TRANSFORMATION", description="first || ' ' || last"
            )
        ],
    )


def runs() -> list[RunEvent]:
    """START and COMPLETE of the load, then of the build; ids and times of each."""
    customers = schema(CUSTOMER_FIELDS)
    lineage = column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            "id": column_lineage_dataset.Fields(inputFields=[from_customers("id")]),
            "full_name": column_lineage_dataset.Fields(
                inputFields=[from_customers("first_name"), from_customers("last_name")]
            ),
        }
    )
    load_out = OutputDataset(namespace=PG, name="crm.customers", facets={"schema": customers})
    build_in = InputDataset(namespace=PG, name="crm.customers", facets={"schema": customers})
    build_out = OutputDataset(
        namespace=PG,
        name="mart.contacts",
        facets={
            "schema": schema([("id", "INTEGER"), ("full_name", "TEXT")]),
            "columnLineage": lineage,
        },
    )
    events = []
    for job, inputs, outputs, start, end in (
        ("load_customers", [], [load_out], "2024-05-01T02:00:00Z", "2024-05-01T02:01:00Z"),
        ("build_contacts", [build_in], [build_out], "2024-05-01T02:02:00Z", "2024-05-01T02:02:30Z"),
    ):
        run = Run(runId=str(generate_new_uuid()))
        for state, at in ((RunState.START, start), (RunState.COMPLETE, end)):
            events.append(
                RunEvent(
                    eventType=state,
                    eventTime=at,
                    producer=PRODUCER,
                    run=run,
                    job=Job(namespace=JOBS, name=job),
                    inputs=inputs,
                    outputs=outputs,
                )
            )
    return events


@pytest.fixture(scope="module")
def marquez(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MarquezClient]:
    with running_collector(tmp_path_factory.mktemp("marquez")) as collector:
        sender = OpenLineageClient(transport=HttpTransport(HttpConfig(url=collector.url)))
        for event in runs():
            sender.emit(event)
        sender.close()
        yield MarquezClient(url=collector.url)


def test_namespaces_of_jobs_and_datasets_are_listed(marquez: MarquezClient) -> None:
    names = {n["name"] for n in marquez.list_namespaces()["namespaces"]}
    assert names == {JOBS, PG}
    assert marquez.get_namespace(JOBS)["name"] == JOBS


def test_jobs_and_their_runs_are_listed_and_read(marquez: MarquezClient) -> None:
    listed = marquez.list_jobs(JOBS)
    assert listed["totalCount"] == 2
    assert {job["name"] for job in listed["jobs"]} == {"load_customers", "build_contacts"}
    job = marquez.get_job(JOBS, "build_contacts")
    assert job["inputs"] == [{"namespace": PG, "name": "crm.customers"}]
    assert job["outputs"] == [{"namespace": PG, "name": "mart.contacts"}]
    [run] = marquez.list_job_runs(JOBS, "build_contacts")["runs"]
    assert (run["state"], run["durationMs"]) == ("COMPLETED", 30_000)
    assert marquez.get_job_run(run["id"])["id"] == run["id"] == job["latestRun"]["id"]


def test_datasets_are_listed_and_read_with_their_fields(marquez: MarquezClient) -> None:
    listed = marquez.list_datasets(PG)
    assert {d["name"] for d in listed["datasets"]} == {"crm.customers", "mart.contacts"}
    customers = marquez.get_dataset(PG, "crm.customers")
    assert [(f["name"], f["type"]) for f in customers["fields"]] == CUSTOMER_FIELDS


def inputs_of(graph: dict[str, Any], dataset: str, field: str) -> set[tuple[str, str]]:
    node = next(
        n for n in graph["graph"] if (n["data"]["dataset"], n["data"]["field"]) == (dataset, field)
    )
    return {(i["dataset"], i["field"]) for i in node["data"]["inputFields"]}


def test_column_lineage_is_read_by_field_dataset_and_job(marquez: MarquezClient) -> None:
    expected = {("crm.customers", "first_name"), ("crm.customers", "last_name")}
    by_field = marquez.get_column_lineage_by_dataset_field(PG, "mart.contacts", "full_name")
    assert inputs_of(by_field, "mart.contacts", "full_name") == expected
    by_dataset = marquez.get_column_lineage_by_dataset(PG, "mart.contacts")
    assert inputs_of(by_dataset, "mart.contacts", "full_name") == expected
    by_job = marquez.get_column_lineage_by_job(JOBS, "build_contacts")
    assert inputs_of(by_job, "mart.contacts", "full_name") == expected
    # downstream from a source column, as Marquez's UI asks for it
    downstream = marquez.get_column_lineage_by_dataset_field(
        PG, "crm.customers", "first_name", with_downstream=True
    )
    ids = {node["id"] for node in downstream["graph"]}
    assert f"datasetField:{PG}:mart.contacts:full_name" in ids
