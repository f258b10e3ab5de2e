"""OpenLineage 2-0-2 run events as plain dicts: the shim imports nothing heavy to make them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from collector import __version__

SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
PRODUCER = f"https://github.com/pipewarden/pipewarden/tree/{__version__}/collector/shim"
_FACETS = "https://openlineage.io/spec/facets"
_OWN_FACETS = "https://github.com/pipewarden/pipewarden/blob/main/docs/facets"

SCHEMA_URLS = {
    "sql": f"{_FACETS}/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet",
    "jobType": f"{_FACETS}/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    "parent": f"{_FACETS}/1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet",
    "errorMessage": f"{_FACETS}/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    "outputStatistics": (
        f"{_FACETS}/1-0-2/OutputStatisticsOutputDatasetFacet.json"
        "#/$defs/OutputStatisticsOutputDatasetFacet"
    ),
    "dataQualityAssertions": (
        f"{_FACETS}/1-0-1/DataQualityAssertionsDatasetFacet.json"
        "#/$defs/DataQualityAssertionsDatasetFacet"
    ),
    "pipewarden_shim": f"{_OWN_FACETS}/ShimRunFacet.json",
    "pipewarden_resources": f"{_OWN_FACETS}/ResourcesRunFacet.json",
    "pipewarden_gate": f"{_OWN_FACETS}/GateRunFacet.json",
}


def facet(key: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": SCHEMA_URLS[key], **fields}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def run_event(
    event_type: str,
    *,
    run_id: str,
    namespace: str,
    job: str,
    run_facets: dict[str, Any],
    job_facets: dict[str, Any],
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "eventTime": now(),
        "producer": PRODUCER,
        "schemaURL": SPEC,
        "run": {"runId": run_id, "facets": run_facets},
        "job": {"namespace": namespace, "name": job, "facets": job_facets},
        "inputs": inputs,
        "outputs": outputs,
    }
