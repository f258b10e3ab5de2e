"""`GET /healthz`: the store answers and the writer runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import text

from collector.api.deps import Services, services
from collector.api.responses import JSONResponse
from collector.store.errors import RETRY_AFTER_S, reason

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(app: Annotated[Services, Depends(services)]) -> JSONResponse:
    """200 when events can be stored now; 503 (with the reason) while they cannot."""
    try:
        with app.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        return _unhealthy(reason(error))
    if not app.writer.alive:
        return _unhealthy("the writer is not running")
    backlog = app.writer.pending  # acknowledged, not derived yet
    return JSONResponse(
        {"status": "ok", "store": app.engine.dialect.name, "events_awaiting_derivation": backlog}
    )


def _unhealthy(why: str) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    return JSONResponse({"status": "unhealthy", "store": why}, 503, headers=headers)
