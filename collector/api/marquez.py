"""Marquez-compatible reads: the same paths and JSON shapes, so Marquez clients and its UI work.

Names in paths are URL-encoded by clients (`postgres%3A%2F%2Fdb%3A5432`); routes match on
the encoded path and decode each name, so dots, slashes and `://` all work.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal
from urllib.parse import unquote

import orjson
from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection, Row

from collector.api.access import Caller, require_all_namespaces, require_namespace
from collector.api.deps import Services, services
from collector.api.errors import ApiError
from collector.api.nodes import split_lookup
from collector.api.responses import JSONResponse
from collector.auth import Token
from collector.lineage import graph
from collector.openlineage import MAX_COUNT, QueryDateTime
from collector.store import reads

router = APIRouter(prefix="/api/v1", tags=["marquez"])

Limit = Annotated[int, Query(ge=0, le=10_000)]
Offset = Annotated[int, Query(ge=0, le=MAX_COUNT)]
_VERSION_NAMESPACE = uuid.UUID("8e7bdd7c-3b2a-4a0e-9d7e-6e1f3f5b8a41")


def _name(encoded: str) -> str:
    return unquote(encoded)


@router.get("/namespaces")
def list_namespaces(
    app: Annotated[Services, Depends(services)],
    caller: Caller,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JSONResponse:
    """The namespaces, only those the token covers."""
    only = None if caller.all_namespaces else caller.namespaces
    with app.engine.connect() as connection:
        rows = reads.list_namespaces(connection, limit, offset, only)
    return JSONResponse({"namespaces": [namespace_json(row) for row in rows]})


@router.get("/namespaces/{namespace}")
def get_namespace(
    namespace: str, app: Annotated[Services, Depends(services)], caller: Caller
) -> JSONResponse:
    _may_read(caller, namespace)
    with app.engine.connect() as connection:
        return JSONResponse(namespace_json(_namespace_or_404(connection, namespace)))


@router.get("/namespaces/{namespace}/jobs")
def list_jobs(
    namespace: str,
    app: Annotated[Services, Depends(services)],
    caller: Caller,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JSONResponse:
    _may_read(caller, namespace)
    with app.engine.connect() as connection:
        _namespace_or_404(connection, namespace)
        rows, total = reads.list_jobs(connection, _name(namespace), limit, offset)
        jobs = [job_json(connection, row) for row in rows]
    return JSONResponse({"jobs": jobs, "totalCount": total})


@router.get("/namespaces/{namespace}/jobs/{job}")
def get_job(
    namespace: str, job: str, app: Annotated[Services, Depends(services)], caller: Caller
) -> JSONResponse:
    _may_read(caller, namespace)
    with app.engine.connect() as connection:
        row = _job_or_404(connection, namespace, job)
        return JSONResponse(job_json(connection, row))


@router.get("/namespaces/{namespace}/jobs/{job}/runs")
def list_runs(
    namespace: str,
    job: str,
    app: Annotated[Services, Depends(services)],
    caller: Caller,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JSONResponse:
    _may_read(caller, namespace)
    with app.engine.connect() as connection:
        row = _job_or_404(connection, namespace, job)
        rows, total = reads.list_runs(connection, row.id, limit, offset)
        runs = [run_json(connection, run) for run in rows]
    return JSONResponse({"runs": runs, "totalCount": total})


@router.get("/jobs/runs/{run_id}")
def get_run(
    run_id: str, app: Annotated[Services, Depends(services)], caller: Caller
) -> JSONResponse:
    try:
        run_uuid = uuid.UUID(_name(run_id))
    except ValueError:
        raise ApiError(400, f"run id {_name(run_id)!r} is not a UUID") from None
    with app.engine.connect() as connection:
        row = reads.get_run(connection, run_uuid)
        if row is None:
            raise ApiError(404, f"run {run_uuid} not found")
        require_namespace(caller, "read", row.namespace, "read")
        return JSONResponse(run_json(connection, row))


@router.get("/namespaces/{namespace}/datasets")
def list_datasets(
    namespace: str,
    app: Annotated[Services, Depends(services)],
    caller: Caller,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JSONResponse:
    _may_read(caller, namespace)
    with app.engine.connect() as connection:
        _namespace_or_404(connection, namespace)
        rows, total = reads.list_datasets(connection, _name(namespace), limit, offset)
        found = [dataset_json(connection, row) for row in rows]
    return JSONResponse({"datasets": found, "totalCount": total})


@router.get("/namespaces/{namespace}/datasets/{dataset}")
def get_dataset(
    namespace: str, dataset: str, app: Annotated[Services, Depends(services)], caller: Caller
) -> JSONResponse:
    _may_read(caller, namespace)
    with app.engine.connect() as connection:
        row = reads.get_dataset(connection, _name(namespace), _name(dataset))
        if row is None:
            raise ApiError(
                404, f"dataset {_name(dataset)!r} not found in namespace {_name(namespace)!r}"
            )
        return JSONResponse(dataset_json(connection, row))


@router.get("/lineage")
def get_lineage(
    app: Annotated[Services, Depends(services)],
    caller: Caller,
    node_id: Annotated[str, Query(alias="nodeId", min_length=1)],
    depth: Annotated[int, Query(ge=0, le=100)] = 20,
) -> JSONResponse:
    """The lineage graph around a `job:<ns>:<name>` or `dataset:<ns>:<name>` node."""
    require_all_namespaces(caller, "read the lineage graph")
    with app.engine.connect() as connection:
        kind, row = _node(connection, node_id)
        if kind == "job":
            found = graph.walk(connection, job_ids={row.id}, depth=depth)
        else:
            found = graph.walk(connection, dataset_ids={row.id}, depth=depth)
        return JSONResponse({"graph": _graph_nodes(connection, found)})


@router.get("/events/lineage")
def list_events(
    app: Annotated[Services, Depends(services)],
    caller: Caller,
    before: QueryDateTime | None = None,
    after: QueryDateTime | None = None,
    sort_direction: Annotated[Literal["asc", "desc"], Query(alias="sortDirection")] = "desc",
    limit: Limit = 100,
    offset: Offset = 0,
) -> JSONResponse:
    """Raw events as they were received, by event time (a time without offset is UTC)."""
    require_all_namespaces(caller, "read the raw events")
    with app.engine.connect() as connection:
        payloads, total = reads.list_events(
            connection,
            before=before,
            after=after,
            descending=sort_direction == "desc",
            limit=limit,
            offset=offset,
        )
    fragments = [orjson.Fragment(payload) for payload in payloads]
    return JSONResponse({"events": fragments, "totalCount": total})


# --- shapes ---------------------------------------------------------------------------


def namespace_json(row: Row[Any]) -> dict[str, Any]:
    return {
        "name": row.name,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
        "ownerName": row.owner_name or "anonymous",
        "description": row.description,
        "isHidden": False,
    }


def job_json(connection: Connection, row: Row[Any]) -> dict[str, Any]:
    """A job as Marquez shows it, with its datasets and its latest run."""
    links = reads.job_datasets(connection, [row.id])
    latest = reads.list_runs(connection, row.id, 1, 0)[0]
    latest_run = run_json(connection, latest[0]) if latest else None
    datasets = {
        direction: [
            {"namespace": link.namespace, "name": link.name}
            for link in links
            if link.direction == direction
        ]
        for direction in ("input", "output")
    }
    return _job_summary(row, datasets) | {
        "latestRun": latest_run,
        "latestRuns": [latest_run] if latest_run else [],
    }


def _job_summary(
    row: Row[Any] | reads.GraphJob, datasets: dict[str, list[dict[str, str]]]
) -> dict[str, Any]:
    return {
        "id": {"namespace": row.namespace, "name": row.name},
        "type": row.type,
        "name": row.name,
        "simpleName": row.name.rsplit(".", 1)[-1],
        "parentJobName": None,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
        "namespace": row.namespace,
        "inputs": datasets["input"],
        "outputs": datasets["output"],
        "location": row.location,
        "description": row.description,
        "facets": row.facets,
        "currentVersion": None,
    }


def run_json(connection: Connection, row: Row[Any]) -> dict[str, Any]:
    used = reads.run_datasets(connection, row.uuid)
    return {
        "id": str(row.uuid),
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
        "nominalStartTime": row.nominal_start_time,
        "nominalEndTime": row.nominal_end_time,
        "state": row.state,
        "startedAt": row.started_at,
        "endedAt": row.ended_at,
        "durationMs": row.duration_ms,
        "args": {},
        "jobVersion": None,
        "inputDatasetVersions": _dataset_versions(used, "input"),
        "outputDatasetVersions": _dataset_versions(used, "output"),
        "context": {},
        "facets": row.facets,
        "sqlParseError": row.sql_parse_error,
    }


def _dataset_versions(used: Any, direction: str) -> list[dict[str, Any]]:
    return [
        {
            "datasetVersionId": {"namespace": io.namespace, "name": io.name, "version": None},
            "facets": io.facets,
            "rowCount": io.row_count,
            "bytes": io.bytes,
        }
        for io in used
        if io.direction == direction
    ]


def dataset_json(connection: Connection, row: Row[Any]) -> dict[str, Any]:
    schema = reads.current_schema(connection, row.id)
    facets = row.facets | row.io_facets
    fields = schema.fields if schema is not None else []
    return {
        "id": {"namespace": row.namespace, "name": row.name},
        "type": "DB_TABLE",
        "name": row.name,
        "physicalName": row.name,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
        "namespace": row.namespace,
        "sourceName": row.source_name or row.namespace,
        "fields": [_field_json(item) for item in fields if isinstance(item, dict)],
        "tags": [],
        "lastModifiedAt": row.last_modified_at,
        "lastLifecycleState": None,
        "description": row.description,
        "currentVersion": _version(row, schema),
        "facets": facets,
        "deleted": False,
    }


def _field_json(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": item.get("name"),
        "type": item.get("type"),
        "tags": [],
        "description": item.get("description"),
    }


def _version(row: Row[Any], schema: Row[Any] | None) -> str | None:
    if schema is None:
        return None
    return str(uuid.uuid5(_VERSION_NAMESPACE, f"{row.namespace}:{row.name}:{schema.id}"))


# --- lineage graph --------------------------------------------------------------------


def _node(connection: Connection, node_id: str) -> tuple[str, Row[Any]]:
    """Resolve `job:<ns>:<name>` / `dataset:<ns>:<name>`; a namespace may itself hold colons."""
    kind, _, rest = node_id.partition(":")
    if kind not in ("job", "dataset") or ":" not in rest:
        raise ApiError(
            400,
            f"nodeId {node_id!r} is not of the form job:<namespace>:<name> "
            "or dataset:<namespace>:<name>",
        )
    row = split_lookup(connection, rest, reads.get_job if kind == "job" else reads.get_dataset)
    if row is None:
        raise ApiError(404, f"node {node_id!r} not found")
    return kind, row


def _graph_nodes(connection: Connection, found: graph.Graph) -> list[dict[str, Any]]:
    jobs = reads.graph_jobs(connection, found.job_ids)
    datasets = reads.graph_datasets(connection, found.dataset_ids)
    job_node = {job_id: f"job:{row.namespace}:{row.name}" for job_id, row in jobs.items()}
    dataset_node = {
        dataset_id: f"dataset:{row.namespace}:{row.name}" for dataset_id, row in datasets.items()
    }
    dataset_ref = {
        dataset_id: {"namespace": row.namespace, "name": row.name}
        for dataset_id, row in datasets.items()
    }
    in_edges: dict[str, list[dict[str, str]]] = {}
    out_edges: dict[str, list[dict[str, str]]] = {}
    job_datasets: dict[int, dict[str, list[dict[str, str]]]] = {
        job_id: {"input": [], "output": []} for job_id in jobs
    }
    for job_id, dataset_id, direction in sorted(found.edges):
        job, dataset = job_node.get(job_id), dataset_node.get(dataset_id)
        if job is None or dataset is None:
            continue
        origin, destination = (dataset, job) if direction == "input" else (job, dataset)
        edge = {"origin": origin, "destination": destination}
        out_edges.setdefault(origin, []).append(edge)
        in_edges.setdefault(destination, []).append(edge)
        job_datasets[job_id][direction].append(dataset_ref[dataset_id])
    nodes = [
        _graph_node(
            job_node[job_id], "JOB", _job_summary(row, job_datasets[job_id]), in_edges, out_edges
        )
        for job_id, row in jobs.items()
    ]
    nodes += [
        _graph_node(dataset_node[dataset_id], "DATASET", _dataset_summary(row), in_edges, out_edges)
        for dataset_id, row in datasets.items()
    ]
    return sorted(nodes, key=lambda node: node["id"])


def _graph_node(
    node: str,
    kind: str,
    data: dict[str, Any],
    in_edges: dict[str, list[dict[str, str]]],
    out_edges: dict[str, list[dict[str, str]]],
) -> dict[str, Any]:
    return {
        "id": node,
        "type": kind,
        "data": data,
        "inEdges": in_edges.get(node, []),
        "outEdges": out_edges.get(node, []),
    }


def _dataset_summary(row: reads.GraphDataset) -> dict[str, Any]:
    return {
        "id": {"namespace": row.namespace, "name": row.name},
        "type": "DB_TABLE",
        "name": row.name,
        "physicalName": row.name,
        "namespace": row.namespace,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
        "lastModifiedAt": row.last_modified_at,
        "description": row.description,
        "facets": row.facets,
    }


def _may_read(caller: Token, namespace: str) -> None:
    require_namespace(caller, "read", _name(namespace), "read")


def _namespace_or_404(connection: Connection, namespace: str) -> Row[Any]:
    row = reads.get_namespace(connection, _name(namespace))
    if row is None:
        raise ApiError(404, f"namespace {_name(namespace)!r} not found")
    return row


def _job_or_404(connection: Connection, namespace: str, job: str) -> Row[Any]:
    row = reads.get_job(connection, _name(namespace), _name(job))
    if row is None:
        raise ApiError(404, f"job {_name(job)!r} not found in namespace {_name(namespace)!r}")
    return row
