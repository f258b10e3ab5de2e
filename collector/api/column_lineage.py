"""`GET /api/v1/column-lineage`: Marquez's column lineage graph, with every transformation.

Nodes are `DATASET_FIELD`s; each lists the fields it is made from (`inputFields`) with the
OpenLineage columnLineage 1-2-0 `transformations` (DIRECT/INDIRECT, subtype, masking),
which Marquez drops, besides Marquez's own single `transformationType`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection, Row

from collector.api.access import Caller, require_all_namespaces
from collector.api.deps import Services, services
from collector.api.errors import ApiError
from collector.api.nodes import split_lookup
from collector.api.responses import JSONResponse
from collector.lineage import columns
from collector.lineage.sql_model import DIRECT, DIRECT_RANK
from collector.store import reads

router = APIRouter(prefix="/api/v1", tags=["marquez"])

_NODE_FORMS = (
    "datasetField:<namespace>:<dataset>:<field>, dataset:<namespace>:<dataset> "
    "or job:<namespace>:<job>"
)


@router.get("/column-lineage")
def get_column_lineage(
    app: Annotated[Services, Depends(services)],
    caller: Caller,
    node_id: Annotated[str, Query(alias="nodeId", min_length=1)],
    depth: Annotated[int, Query(ge=0, le=100)] = 20,
    with_downstream: Annotated[bool, Query(alias="withDownstream")] = False,
) -> JSONResponse:
    """The column lineage around a field, a dataset's fields or a job's outputs."""
    require_all_namespaces(caller, "read the column lineage graph")
    with app.engine.connect() as connection:
        start = _start(connection, node_id)
        found = columns.walk(connection, start, depth=depth, downstream=with_downstream)
        return JSONResponse({"graph": graph_json(found)})


# --- node ids -------------------------------------------------------------------------


def _start(connection: Connection, node_id: str) -> set[columns.Field]:
    """The fields a node id stands for; a namespace (or a name) may itself hold colons."""
    kind, _, rest = node_id.partition(":")
    colons = [i for i, char in enumerate(rest) if char == ":"]
    needed = 2 if kind == "datasetField" else 1
    if kind not in ("datasetField", "dataset", "job") or len(colons) < needed:
        raise ApiError(400, f"nodeId {node_id!r} is not of the form {_NODE_FORMS}")
    if kind == "job":
        job = split_lookup(connection, rest, reads.get_job)
        if job is not None:
            return columns.job_fields(connection, job.id)
    elif kind == "dataset":
        dataset = split_lookup(connection, rest, reads.get_dataset)
        if dataset is not None:
            return {(dataset.id, name) for name in columns.dataset_fields(connection, dataset.id)}
    else:
        for n, i in enumerate(colons):
            for j in colons[n + 1 :]:
                dataset = reads.get_dataset(connection, rest[:i], rest[i + 1 : j])
                name = rest[j + 1 :]
                if dataset is not None and name in columns.dataset_fields(connection, dataset.id):
                    return {(dataset.id, name)}
    raise ApiError(404, f"node {node_id!r} not found")


# --- shapes ---------------------------------------------------------------------------


def graph_json(found: columns.ColumnGraph) -> list[dict[str, Any]]:
    """Marquez's `graph` list: one DATASET_FIELD node per field, with in and out edges."""
    ids = {node: _node_id(found.datasets[node[0]], node[1]) for node in found.fields}
    in_edges: dict[columns.Field, list[dict[str, str]]] = {}
    out_edges: dict[columns.Field, list[dict[str, str]]] = {}
    for origin, destination in sorted(found.edges(), key=lambda e: (ids[e[0]], ids[e[1]])):
        edge = {"origin": ids[origin], "destination": ids[destination]}
        out_edges.setdefault(origin, []).append(edge)
        in_edges.setdefault(destination, []).append(edge)
    nodes = [
        {
            "id": ids[node],
            "type": "DATASET_FIELD",
            "data": _field_data(found, node),
            "inEdges": in_edges.get(node, []),
            "outEdges": out_edges.get(node, []),
        }
        for node in found.fields
    ]
    return sorted(nodes, key=lambda node: node["id"])


def _node_id(dataset: Row[Any], name: str) -> str:
    return f"datasetField:{dataset.namespace}:{dataset.name}:{name}"


def _field_data(found: columns.ColumnGraph, node: columns.Field) -> dict[str, Any]:
    dataset = found.datasets[node[0]]
    inputs = _input_fields(found, node)
    direct = [t for item in inputs for t in item["transformations"] if t["type"] == DIRECT]
    return {
        "namespace": dataset.namespace,
        "dataset": dataset.name,
        "field": node[1],
        "fieldType": found.types.get(node),
        "transformationDescription": _description(direct),
        "transformationType": _strongest(direct),
        "inputFields": inputs,
    }


def _input_fields(found: columns.ColumnGraph, node: columns.Field) -> list[dict[str, Any]]:
    """The node's inputs, one per input field, each with all its transformations."""
    grouped: dict[columns.Field, list[dict[str, Any]]] = {}
    for edge in found.inputs.get(node, []):
        transformation = {
            "type": edge.type,
            "subtype": edge.subtype,
            "description": edge.description,
            "masking": edge.masking,
        }
        listed = grouped.setdefault((edge.in_dataset_id, edge.in_field), [])
        if transformation not in listed:
            listed.append(transformation)
    inputs = []
    for (dataset_id, name), transformations in grouped.items():
        dataset = found.datasets[dataset_id]
        transformations.sort(key=lambda t: (t["type"], t["subtype"], t["description"] or ""))
        direct = [t for t in transformations if t["type"] == DIRECT]
        inputs.append(
            {
                "namespace": dataset.namespace,
                "dataset": dataset.name,
                "field": name,
                "transformationDescription": _description(transformations),
                "transformationType": _strongest(direct) or transformations[0]["type"],
                "transformations": transformations,
            }
        )
    return sorted(inputs, key=lambda i: (i["namespace"], i["dataset"], i["field"]))


def _strongest(direct: list[dict[str, Any]]) -> str | None:
    """Marquez's one transformationType: the strongest DIRECT step (AGGREGATION > … IDENTITY)."""
    if not direct:
        return None
    best = max(direct, key=lambda t: DIRECT_RANK.get(t["subtype"], -1))
    return str(best["subtype"] or best["type"])


def _description(transformations: list[dict[str, Any]]) -> str | None:
    descriptions = dict.fromkeys(t["description"] for t in transformations if t["description"])
    return "; ".join(descriptions) or None
