"""`GET /metrics` (Prometheus text exposition) and the timing of ingestion requests."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector.api.lineage_ingest import BATCH_PATH, SINGLE_PATH
from collector.metrics import metrics_of

router = APIRouter(tags=["metrics"])

# The text format generate_latest writes (newer clients announce 1.0.0, which older servers
# such as Prometheus 2.x do not know).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
INGEST_PATHS = {SINGLE_PATH: "single", BATCH_PATH: "batch"}


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    # The store collector queries the database: keep it off the event loop.
    body = await run_in_threadpool(metrics_of(request.app).exposition)
    return Response(body, media_type=CONTENT_TYPE)


class IngestMetricsMiddleware:
    """Times `POST /api/v1/lineage[/batch]` and counts the answers that are errors."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = INGEST_PATHS.get(scope.get("path", "")) if scope["type"] == "http" else None
        if endpoint is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            collected = metrics_of(scope["app"])
            collected.latency.labels(endpoint).observe(time.perf_counter() - started)
            if status >= 400:
                collected.errors.labels(str(status)).inc()
