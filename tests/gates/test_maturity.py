"""`GET /api/v1/maturity`: levels 2 to 4 as a job earns them, and the next step."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.events import dataset, facet
from tests.gates.conftest import GatedClient
from tests.gates.test_gate_scenarios import NOW, PG, _copy, _gate, _policy, _run


def _level(client: TestClient, job: str) -> dict[str, Any]:
    jobs = client.get("/api/v1/maturity", params={"namespace": "shop"}).json()["jobs"]
    (found,) = [j for j in jobs if j["job"] == job]
    return dict(found)


def test_a_job_climbs_the_levels_and_is_told_when_ready_to_enforce(gated: GatedClient) -> None:
    client = gated(_policy("monitor"))
    _run(
        client,
        "daily",
        inputs=[dataset("raw.orders", PG)],
        outputs=[dataset("mart.d", PG)],
        at=NOW - timedelta(hours=3),
    )
    observed = _level(client, "daily")
    assert (observed["level"], observed["label"]) == (2, "observed")
    assert "column lineage" in observed["nextStep"]

    checks = facet(
        "DataQualityAssertionsDatasetFacet",
        assertions=[{"assertion": "not_null", "column": "id", "success": True}],
    )
    lineage = facet("ColumnLineageDatasetFacet", fields=_copy("id", "raw.orders", "id"))
    _run(
        client,
        "daily",
        inputs=[dataset("raw.orders", PG)],
        outputs=[dataset("mart.d", PG, dataQualityAssertions=checks)],
        at=NOW - timedelta(hours=2),
        column_lineage=lineage,
    )
    checked = _level(client, "daily")
    assert checked["level"] == 3
    assert "ask the gate before each run" in checked["nextStep"]

    for _ in range(3):
        _gate(client, "daily")
    ready = _level(client, "daily")
    assert ready["level"] == 4
    assert ready["nextStep"].startswith("would have blocked 0 of the last 3 runs: ready to enforce")
    assert (ready["recentDecisions"], ready["wouldBlock"]) == (3, 0)
