"""`GET /api/v1/column-lineage`: Marquez's column graph, walked up (and down) stored edges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.events import dataset, facet, run_event

PG = "postgres://db.example:5432"


def field_id(name: str, column: str) -> str:
    return f"datasetField:{PG}:{name}:{column}"


RAW_ID, RAW_AMOUNT, RAW_EMAIL = (field_id("raw.orders", c) for c in ("id", "amount", "email"))
STAGE_ID, STAGE_AMOUNT, STAGE_EMAIL = (
    field_id("stage.orders", c) for c in ("id", "amount_usd", "email_hash")
)
TOTAL = field_id("mart.revenue", "total")


def source(
    name: str, column: str, kind: str, subtype: str, description: str | None = None, **extra: Any
) -> dict[str, Any]:
    transformation = {"type": kind, "subtype": subtype, "masking": False, **extra}
    if description:
        transformation["description"] = description
    return {"namespace": PG, "name": name, "field": column, "transformations": [transformation]}


def lineage(
    fields: dict[str, list[dict[str, Any]]], whole: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return facet(
        "ColumnLineageDatasetFacet",
        fields={name: {"inputFields": inputs} for name, inputs in fields.items()},
        dataset=whole or [],
    )


@dataclass
class Chain:
    client: TestClient


@pytest.fixture
def chain(client: TestClient) -> Chain:
    """raw.orders → stage_orders → stage.orders → revenue → mart.revenue, by facets."""
    raw = dataset(
        "raw.orders", PG, fields=[("id", "int"), ("amount", "numeric"), ("email", "text")]
    )
    stage_facet = lineage(
        {
            "id": [source("raw.orders", "id", "DIRECT", "IDENTITY")],
            "amount_usd": [
                source("raw.orders", "amount", "DIRECT", "TRANSFORMATION", "amount * rate")
            ],
            "email_hash": [
                source(
                    "raw.orders", "email", "DIRECT", "TRANSFORMATION", "md5(email)", masking=True
                )
            ],
        }
    )
    stage = dataset("stage.orders", PG, columnLineage=stage_facet)
    revenue_facet = lineage(
        {"total": [source("stage.orders", "amount_usd", "DIRECT", "AGGREGATION", "sum")]},
        whole=[source("stage.orders", "id", "INDIRECT", "FILTER", "id > 0")],
    )
    revenue = dataset(
        "mart.revenue", PG, fields=[("total", "numeric")], columnLineage=revenue_facet
    )
    for job, inputs, outputs in (
        ("stage_orders", [raw], [stage]),
        ("revenue", [dataset("stage.orders", PG)], [revenue]),
        ("plain", [dataset("raw.orders", PG)], [dataset("mart.plain", PG)]),
    ):
        event = run_event("COMPLETE", job=job, inputs=inputs, outputs=outputs)
        assert client.post("/api/v1/lineage", json=event).status_code == 201
    return Chain(client)


def column_graph(chain: Chain, node_id: str, **params: Any) -> dict[str, dict[str, Any]]:
    response = chain.client.get("/api/v1/column-lineage", params={"nodeId": node_id, **params})
    assert response.status_code == 200, response.text
    return {node["id"]: node for node in response.json()["graph"]}


def test_upstream_of_a_field_reaches_its_sources_through_every_job(chain: Chain) -> None:
    graph = column_graph(chain, TOTAL)
    assert set(graph) == {TOTAL, STAGE_AMOUNT, STAGE_ID, RAW_AMOUNT, RAW_ID}
    total = graph[TOTAL]
    assert total["type"] == "DATASET_FIELD"
    assert total["data"] == {
        "namespace": PG,
        "dataset": "mart.revenue",
        "field": "total",
        "fieldType": "numeric",
        "transformationDescription": "sum",
        "transformationType": "AGGREGATION",
        "inputFields": [
            {
                "namespace": PG,
                "dataset": "stage.orders",
                "field": "amount_usd",
                "transformationDescription": "sum",
                "transformationType": "AGGREGATION",
                "transformations": [
                    {
                        "type": "DIRECT",
                        "subtype": "AGGREGATION",
                        "description": "sum",
                        "masking": False,
                    }
                ],
            },
            {
                "namespace": PG,
                "dataset": "stage.orders",
                "field": "id",
                "transformationDescription": "id > 0",
                "transformationType": "INDIRECT",
                "transformations": [
                    {
                        "type": "INDIRECT",
                        "subtype": "FILTER",
                        "description": "id > 0",
                        "masking": False,
                    }
                ],
            },
        ],
    }
    assert total["inEdges"] == [
        {"origin": STAGE_AMOUNT, "destination": TOTAL},
        {"origin": STAGE_ID, "destination": TOTAL},
    ]
    assert total["outEdges"] == []
    assert graph[RAW_AMOUNT]["outEdges"] == [{"origin": RAW_AMOUNT, "destination": STAGE_AMOUNT}]
    assert graph[RAW_AMOUNT]["data"]["inputFields"] == []
    assert graph[RAW_AMOUNT]["data"]["fieldType"] == "numeric"
    assert graph[STAGE_AMOUNT]["data"]["fieldType"] is None  # no schema known for stage.orders


def test_depth_bounds_the_walk_but_not_a_nodes_inputs(chain: Chain) -> None:
    graph = column_graph(chain, TOTAL, depth=1)
    assert set(graph) == {TOTAL, STAGE_AMOUNT, STAGE_ID}
    (raw,) = graph[STAGE_AMOUNT]["data"]["inputFields"]
    assert (raw["dataset"], raw["field"], raw["transformationType"]) == (
        "raw.orders",
        "amount",
        "TRANSFORMATION",
    )
    assert graph[STAGE_AMOUNT]["inEdges"] == []
    assert set(column_graph(chain, TOTAL, depth=0)) == {TOTAL}


def test_downstream_only_when_asked(chain: Chain) -> None:
    assert set(column_graph(chain, RAW_ID)) == {RAW_ID}
    graph = column_graph(chain, RAW_ID, withDownstream="true")
    # stage.orders.id filters mart.revenue as a whole: every field of it is downstream.
    assert set(graph) == {RAW_ID, STAGE_ID, TOTAL}
    assert graph[STAGE_ID]["outEdges"] == [{"origin": STAGE_ID, "destination": TOTAL}]
    assert set(column_graph(chain, RAW_ID, withDownstream="true", depth=1)) == {RAW_ID, STAGE_ID}


def test_up_and_downstream_of_a_middle_field(chain: Chain) -> None:
    graph = column_graph(chain, STAGE_AMOUNT, withDownstream="true")
    assert set(graph) == {RAW_AMOUNT, STAGE_AMOUNT, TOTAL}


def test_masking_is_kept_on_the_transformation(chain: Chain) -> None:
    graph = column_graph(chain, STAGE_EMAIL)
    (email,) = graph[STAGE_EMAIL]["data"]["inputFields"]
    assert email["transformations"] == [
        {
            "type": "DIRECT",
            "subtype": "TRANSFORMATION",
            "description": "md5(email)",
            "masking": True,
        }
    ]


def test_a_dataset_node_starts_from_all_its_fields(chain: Chain) -> None:
    graph = column_graph(chain, f"dataset:{PG}:stage.orders")
    assert set(graph) == {STAGE_ID, STAGE_AMOUNT, STAGE_EMAIL, RAW_ID, RAW_AMOUNT, RAW_EMAIL}


def test_a_job_node_starts_from_the_fields_it_writes(chain: Chain) -> None:
    assert set(column_graph(chain, "job:shop:revenue")) == {
        TOTAL,
        STAGE_AMOUNT,
        STAGE_ID,
        RAW_AMOUNT,
        RAW_ID,
    }
    assert set(column_graph(chain, "job:shop:stage_orders", depth=0)) == {
        STAGE_ID,
        STAGE_AMOUNT,
        STAGE_EMAIL,
    }
    assert column_graph(chain, "job:shop:plain") == {}


@pytest.mark.parametrize(
    "node_id",
    [
        f"datasetField:{PG}:raw.orders:nope",
        f"datasetField:{PG}:nope:id",
        "datasetField:nope:raw.orders:id",
        f"dataset:{PG}:nope",
        "job:shop:nope",
        "job:nope:revenue",
    ],
)
def test_an_unknown_node_is_404(chain: Chain, node_id: str) -> None:
    response = chain.client.get("/api/v1/column-lineage", params={"nodeId": node_id})
    assert response.status_code == 404
    assert node_id in response.json()["message"]


@pytest.mark.parametrize(
    "params",
    [
        {"nodeId": "raw.orders"},
        {"nodeId": "dataset:raw.orders"},
        {"nodeId": "datasetField:pg:raw.orders"},
        {"nodeId": "table:pg:raw.orders"},
        {"nodeId": ""},
        {},
        {"nodeId": TOTAL, "depth": "-1"},
        {"nodeId": TOTAL, "withDownstream": "maybe"},
    ],
)
def test_a_malformed_request_is_400(chain: Chain, params: dict[str, str]) -> None:
    response = chain.client.get("/api/v1/column-lineage", params=params)
    assert response.status_code == 400, response.text
