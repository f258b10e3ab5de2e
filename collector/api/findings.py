"""`GET /api/v1/findings` and `POST /api/v1/findings/{id}/feedback`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import Row

from collector.api.access import (
    Caller,
    require_namespace,
    require_namespace_filter,
    require_role,
)
from collector.api.deps import Services, services
from collector.api.errors import ApiError
from collector.api.responses import JSONResponse
from collector.detection import record_feedback
from collector.openlineage import parse_datetime
from collector.store import reads

router = APIRouter(prefix="/api/v1", tags=["findings"])

Kind = Literal[
    "runtime", "volume", "freshness", "overrun", "schema_drift", "failure", "quality", "policy"
]
Status = Literal["open", "resolved", "false_positive"]


class Feedback(BaseModel):
    verdict: Literal["false_positive", "confirmed"]


@router.get("/findings")
def list_findings(
    app: Annotated[Services, Depends(services)],
    caller: Caller,
    namespace: str | None = None,
    job: str | None = None,
    dataset: str | None = None,
    kind: Kind | None = None,
    status: Status | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=0, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    """Findings, newest event time first."""
    require_namespace_filter(caller, namespace, "read findings")
    filters = {
        "namespace": namespace,
        "job": job,
        "dataset": dataset,
        "kind": kind,
        "status": status,
        "since": parse_datetime(since) if since else None,
    }
    with app.engine.connect() as connection:
        rows, total = reads.list_findings(connection, filters, limit, offset)
    return JSONResponse({"findings": [finding_json(row) for row in rows], "totalCount": total})


@router.post("/findings/{finding_id}/feedback")
async def feedback(
    finding_id: int, body: Feedback, app: Annotated[Services, Depends(services)], caller: Caller
) -> JSONResponse:
    """An operator's verdict; a false positive's value goes back into the job's baseline."""
    require_role(caller, "admin", "give finding feedback")
    with app.engine.connect() as connection:
        row = reads.get_finding(connection, finding_id)
    if row is None:
        raise ApiError(404, f"finding {finding_id} not found")
    require_namespace(caller, "admin", row.namespace, "give finding feedback")
    await app.writer.write(lambda connection: record_feedback(connection, row, body.verdict))
    with app.engine.connect() as connection:
        updated = reads.get_finding(connection, finding_id)
    assert updated is not None
    return JSONResponse(finding_json(updated))


def finding_json(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "namespace": row.namespace,
        "job": row.job,
        "dataset": (
            {"namespace": row.dataset_namespace, "name": row.dataset} if row.dataset else None
        ),
        "runId": str(row.run_uuid) if row.run_uuid else None,
        "subject": row.subject,
        "eventTime": row.event_time,
        "detectedAt": row.detected_at,
        "severity": row.severity,
        "observed": row.observed,
        "expectedLow": row.expected_low,
        "expectedHigh": row.expected_high,
        "score": row.score,
        "status": row.status,
        "message": row.message,
    }
