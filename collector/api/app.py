"""The collector's ASGI application: `create_app(settings)` wires store, writer and routes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.api import (
    column_lineage,
    findings,
    gates,
    health,
    kpis,
    lineage_ingest,
    marquez,
    maturity,
    metrics,
)
from collector.api.access import AuthMiddleware
from collector.api.deps import Services, settled
from collector.api.errors import (
    STORE_ERRORS,
    ApiError,
    api_error_handler,
    http_error_handler,
    request_validation_handler,
    store_error_handler,
)
from collector.api.guard import RequestGuard
from collector.api.responses import JSONResponse
from collector.auth import AuthHolder
from collector.background import BackgroundProcess, start_detection
from collector.policy import PolicyHolder
from collector.settings import Settings
from collector.store.engine import make_engine
from collector.store.migrate import upgrade
from collector.writer import Writer

log = logging.getLogger(__name__)
# Reads, gates and batch validation run in worker threads, which share one GIL: more of them
# at once only take turns more often (8 concurrent gate calls: p99 70 ms with anyio's 40
# threads, 37 ms with 2). Two keep one thread free while a slow request holds the other.
WORKER_THREADS = 2
GC_THRESHOLDS = (50_000, 20, 10)  # allocations before a young pass, young passes per older one


def create_app(settings: Settings, background_process: bool = False) -> FastAPI:
    """The collector for these settings; the store is migrated and the writer started at startup.

    With `background_process`, derivation and detection run in a second process
    (`collector.background`); else in threads of this one.
    """

    policy = PolicyHolder(settings)  # an invalid policy stops the start here
    auth = AuthHolder(settings)  # so does an invalid token file

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        engine = make_engine(settings.database_url)
        writer_engine = make_engine(settings.database_url, writer=True)
        upgrade(writer_engine)
        background = BackgroundProcess(settings) if background_process else None
        if background is not None:
            background.start()
        writer = Writer(writer_engine, backlog=settings.derivation_backlog, deriver=background)
        writer.start()
        evaluator = None if background else start_detection(settings, engine, writer, policy)
        app.state.services = Services(
            settings=settings, engine=engine, writer=writer, policy=policy, evaluator=evaluator
        )
        _reload_on_sighup(policy, auth, background)
        log.info("store ready: %s", engine.url.render_as_string(hide_password=True))
        # What start-up made (modules, tables, compiled statements) lives as long as the
        # process: kept out of the garbage collector's full passes, which would otherwise
        # walk it all, stopping every request for tens of milliseconds.
        thresholds = gc.get_threshold()
        gc.collect()
        gc.freeze()
        # A batch of 1,000 events makes about 50,000 objects that live until it is stored:
        # with the default thresholds (700, 10, 10) the collector walked them again and
        # again, a third of a batch's CPU. Nearly all of them are freed by reference
        # counting; the collector is only for the rare cycle, so it runs far less often.
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            if evaluator is not None:
                evaluator.stop()
            writer.stop()
            if background is not None:
                background.stop()
            writer_engine.dispose()
            engine.dispose()

    app = _Collector(
        title="pipewarden",
        summary="Governance and observability sidecar for existing data pipelines",
        version="0.1.0",
        lifespan=lifespan,
        default_response_class=JSONResponse,
    )
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(HTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, request_validation_handler)
    for store_error in STORE_ERRORS:
        app.add_exception_handler(store_error, store_error_handler)
    app.include_router(health.router)
    # Routes reading what is derived from events wait for the events acknowledged before them.
    for router in (
        metrics.router,
        marquez.router,
        column_lineage.router,
        gates.router,
        findings.router,
        maturity.router,
        kpis.router,
    ):
        app.include_router(router, dependencies=[Depends(settled)])
    app.add_middleware(lineage_ingest.IngestEndpoints)  # innermost: behind access and guard
    app.add_middleware(RequestGuard, settings=settings, streamed=metrics.INGEST_PATHS)
    app.add_middleware(EncodedPathMiddleware)
    # Inside the ingest metrics, so refused requests are timed and counted as errors too.
    app.add_middleware(AuthMiddleware, holder=auth, metrics_token=settings.metrics_token)
    app.add_middleware(metrics.IngestMetricsMiddleware)
    app.state.auth = auth
    return app


class _Collector(FastAPI):
    """FastAPI whose OpenAPI document also describes the ingest routes, which it does not
    route itself (see `lineage_ingest`), and the events they read."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is not None:
            return self.openapi_schema
        document = super().openapi()
        for path, operations in lineage_ingest.openapi_paths().items():
            document["paths"].setdefault(path, {}).update(operations)
        document["components"]["schemas"].update(lineage_ingest.openapi_schemas())
        return document


def _reload_on_sighup(
    policy: PolicyHolder, auth: AuthHolder, background: BackgroundProcess | None
) -> None:
    """`kill -HUP` re-reads the policy and token files (only in the main thread's loop)."""

    def reload() -> None:
        policy.reload()
        auth.reload()
        if background is not None:
            background.reload()

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)


class EncodedPathMiddleware:
    """Route `/api/v1` on the path as sent, so an encoded `/` inside a name stays in its segment.

    Routes then decode each name parameter themselves.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/v1/"):
            raw: Any = scope.get("raw_path")
            if raw:
                scope = dict(scope, path=raw.decode("latin-1").split("?", 1)[0])
        await self.app(scope, receive, send)
