"""Builders of valid OpenLineage 2-0-2 events for tests; change what a test is about."""

from __future__ import annotations

import uuid
from typing import Any

PRODUCER = "https://github.com/pipewarden/tests"
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
RUN_EVENT = f"{SPEC}#/$defs/RunEvent"
DATASET_EVENT = f"{SPEC}#/$defs/DatasetEvent"
JOB_EVENT = f"{SPEC}#/$defs/JobEvent"


def facet(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "_producer": PRODUCER,
        "_schemaURL": f"https://openlineage.io/spec/facets/1-0-0/{name}.json",
        **fields,
    }


def dataset(
    name: str,
    namespace: str = "postgres://db.example:5432",
    *,
    fields: list[tuple[str, str]] | None = None,
    row_count: int | None = None,
    **facets: Any,
) -> dict[str, Any]:
    """An input or output dataset; `fields` adds a schema, `row_count` outputStatistics."""
    item: dict[str, Any] = {"namespace": namespace, "name": name, "facets": dict(facets)}
    if fields is not None:
        item["facets"]["schema"] = facet(
            "SchemaDatasetFacet", fields=[{"name": n, "type": t} for n, t in fields]
        )
    if row_count is not None:
        item["outputFacets"] = {
            "outputStatistics": facet("OutputStatisticsOutputDatasetFacet", rowCount=row_count)
        }
    return item


def run_event(
    event_type: str | None = "START",
    *,
    run_id: str | None = None,
    event_time: str = "2024-05-01T02:00:00Z",
    namespace: str = "shop",
    job: str = "orders_daily",
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
    run_facets: dict[str, Any] | None = None,
    job_facets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventTime": event_time,
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT,
        "run": {"runId": run_id or str(uuid.uuid4()), "facets": run_facets or {}},
        "job": {"namespace": namespace, "name": job, "facets": job_facets or {}},
        "inputs": inputs or [],
        "outputs": outputs or [],
    }
    if event_type is not None:
        event["eventType"] = event_type
    return event
