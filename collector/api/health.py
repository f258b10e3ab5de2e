"""`GET /healthz`: the store answers and the writer runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from collector.api.deps import Services, services
from collector.api.responses import JSONResponse
from collector.store import reads
from collector.store.errors import RETRY_AFTER_S, reason

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(app: Annotated[Services, Depends(services)]) -> JSONResponse:
    """200 when events can be stored now; 503 (with the reason) while they cannot."""
    try:
        with app.engine.connect() as connection:
            backlog = reads.count_pending_events(connection)  # acknowledged, not derived yet
    except Exception as error:
        return _unhealthy(reason(error))
    if not app.writer.alive:
        return _unhealthy("the writer is not running")
    return JSONResponse(
        {"status": "ok", "store": app.engine.dialect.name, "events_awaiting_derivation": backlog}
    )


def _unhealthy(why: str) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    return JSONResponse({"status": "unhealthy", "store": why}, 503, headers=headers)
