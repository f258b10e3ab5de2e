"""`GET /api/v1/maturity`: each job's level on the road to an enforced gate, and its next step."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from collector.api.access import Caller, require_namespace_filter
from collector.api.deps import Services, services
from collector.api.responses import JSONResponse
from collector.maturity import assess

router = APIRouter(prefix="/api/v1", tags=["gates"])


@router.get("/maturity")
def maturity(
    app: Annotated[Services, Depends(services)], caller: Caller, namespace: str | None = None
) -> JSONResponse:
    require_namespace_filter(caller, namespace, "read maturity")
    with app.engine.connect() as connection:
        jobs = assess(connection, app.policy.current, namespace)
    return JSONResponse({"jobs": [job.as_json() for job in jobs]})
