"""`GET /api/v1/kpis?window=7d`: the KPIs over the window ending now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from collector import kpis
from collector.api.access import Caller, require_all_namespaces
from collector.api.deps import Services, services
from collector.api.errors import ApiError
from collector.api.responses import JSONResponse

router = APIRouter(prefix="/api/v1", tags=["kpis"])


@router.get("/kpis")
async def get_kpis(
    app: Annotated[Services, Depends(services)],
    caller: Caller,
    window: str = kpis.DEFAULT_WINDOW,
) -> JSONResponse:
    require_all_namespaces(caller, "read the KPIs")
    try:
        kpis.window_of(window)
    except ValueError as error:
        raise ApiError(400, f"window: {error}") from None
    values = await run_in_threadpool(kpis.compute, app.engine, app.policy.current, window)
    return JSONResponse(values.to_json())
