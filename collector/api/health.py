"""`GET /healthz`: the store answers and the schema is current."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import text

from collector.api.deps import Services, services
from collector.api.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(app: Annotated[Services, Depends(services)]) -> JSONResponse:
    try:
        with app.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        return JSONResponse({"status": "unhealthy", "store": str(error)}, 503)
    return JSONResponse({"status": "ok", "store": app.engine.dialect.name})
