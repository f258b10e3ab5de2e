"""`POST /api/v1/lineage` (one event, as Marquez takes it) and `POST /api/v1/lineage/batch`.

Both are served by `IngestEndpoints`, an ASGI layer inside the app's own middleware (access,
metrics, request guard) and ahead of FastAPI's routing: these are the hottest routes, and
FastAPI's routing and dependency solving cost more than the rest of a single event's work
(about 130 µs a request). Their OpenAPI description is added by `openapi_paths`.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.api.access import caller, refusal, require_role
from collector.api.body import decode_json, read_body
from collector.api.deps import Services
from collector.api.errors import STORE_ERRORS, ApiError, api_error_handler, store_error_handler
from collector.api.responses import JSONResponse
from collector.auth import Token
from collector.ingest import Incoming, Outcome, prepare
from collector.metrics import metrics_of
from collector.openlineage import (
    DatasetEvent,
    InvalidEvent,
    JobEvent,
    RunEvent,
    json_type,
)
from collector.shim.spool import DELIVERY_HEADER, SPOOLED
from collector.writer import StoreFailed

SINGLE_PATH = "/api/v1/lineage"
BATCH_PATH = "/api/v1/lineage/batch"


class Stored(BaseModel):
    status: Outcome


class ItemResult(BaseModel):
    index: int
    status: str
    error: str | None = None


class BatchResult(BaseModel):
    results: list[ItemResult]


FORBIDDEN = "forbidden"
_COMPONENTS = "#/components/schemas/{model}"
_EVENT_MODELS = (RunEvent, DatasetEvent, JobEvent)
_EVENT = {"anyOf": [{"$ref": _COMPONENTS.format(model=m.__name__)} for m in _EVENT_MODELS]}


class IngestEndpoints:
    """Answers `POST` on the two ingest paths; everything else goes on to FastAPI.

    Errors take the shape and statuses FastAPI's handlers give every other route.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = _ENDPOINTS.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None or (scope["method"] != "POST" and scope["path"] == SINGLE_PATH):
            await self.app(scope, receive, send)  # GET /api/v1/lineage is the lineage graph
            return
        request = Request(scope, receive)
        try:
            if scope["method"] != "POST":
                raise ApiError(405, "Method Not Allowed: send the batch with POST")
            response = await endpoint(request, scope["app"].state.services, await caller(request))
        except ApiError as error:
            response = await api_error_handler(request, error)
        except STORE_ERRORS as error:
            response = await store_error_handler(request, error)
        await response(scope, receive, send)


async def post_lineage(request: Request, app: Services, caller: Token) -> Response:
    """Store one OpenLineage event. A duplicate is stored once and answered 201 again."""
    require_role(caller, "write", "write events")
    body = await read_body(request, app.settings.max_body_bytes, app.settings.body_timeout)
    document = decode_json(body, app.settings.max_json_depth)
    if not isinstance(document, dict):
        raise ApiError(
            400,
            f"the body must be one OpenLineage event (a JSON object), not {json_type(document)}",
        )
    counted = metrics_of(request.app)
    spooled = request.headers.get(DELIVERY_HEADER) == SPOOLED
    try:
        incoming = prepare(document, body)
    except InvalidEvent as invalid:
        counted.count_event(Outcome.INVALID.value, spooled)
        raise ApiError(
            422, f"the event breaks the OpenLineage spec: {invalid}", invalid.problems
        ) from None
    refused = refusal(caller, incoming.event)
    if refused is not None:
        counted.count_event(FORBIDDEN, spooled)
        raise refused
    (outcome,) = await app.writer.submit([incoming])
    counted.count_event("failed" if isinstance(outcome, StoreFailed) else outcome.value, spooled)
    if isinstance(outcome, StoreFailed):
        raise ApiError(500, f"the event could not be stored: {outcome}")
    return JSONResponse({"status": outcome.value}, 201)


async def post_lineage_batch(request: Request, app: Services, caller: Token) -> Response:
    """Store many events: a JSON array, or NDJSON (one event per line).

    Each event is judged on its own: an invalid one, or one in a namespace the token does not
    cover (`forbidden`), is reported and the others stored.
    """
    require_role(caller, "write", "write events")
    body = await read_body(request, app.settings.max_body_bytes, app.settings.body_timeout)
    # Decoding and validating thousands of events is CPU work: keep it off the event loop.
    settings = app.settings
    checked = await run_in_threadpool(
        _check_batch, body, settings.max_batch_events, settings.max_json_depth, caller
    )
    valid = [item for item in checked if isinstance(item, Incoming)]
    outcomes = iter(await app.writer.submit(valid) if valid else [])
    results = [
        _item_result(index, next(outcomes) if isinstance(item, Incoming) else item)
        for index, item in enumerate(checked)
    ]
    counted = metrics_of(request.app).events
    for status, times in Counter(result["status"] for result in results).items():
        counted.labels(status).inc(times)
    return JSONResponse({"results": results})


_ENDPOINTS: dict[str, Callable[[Request, Services, Token], Awaitable[Response]]] = {
    SINGLE_PATH: post_lineage,
    BATCH_PATH: post_lineage_batch,
}


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI path items of the two ingest routes."""
    single = _operation(
        post_lineage,
        _EVENT,
        "One OpenLineage event; gzip or deflate encoding allowed.",
        "201",
        Stored,
    )
    batch = _operation(
        post_lineage_batch,
        {"type": "array", "items": _EVENT},
        "A JSON array of events, or NDJSON (one event per line); gzip or deflate allowed.",
        "200",
        BatchResult,
    )
    return {SINGLE_PATH: {"post": single}, BATCH_PATH: {"post": batch}}


def _operation(
    endpoint: Callable[..., Any],
    body: dict[str, Any],
    description: str,
    status: str,
    answer: type[BaseModel],
) -> dict[str, Any]:
    content = {"application/json": {"schema": body}}
    answered = {"application/json": {"schema": {"$ref": _COMPONENTS.format(model=answer.__name__)}}}
    return {
        "tags": ["ingest"],
        "summary": endpoint.__name__.replace("_", " ").title(),
        "description": inspect.cleandoc(endpoint.__doc__ or ""),
        "operationId": endpoint.__name__,
        "requestBody": {"required": True, "description": description, "content": content},
        "responses": {status: {"description": "Successful Response", "content": answered}},
    }


def openapi_schemas() -> dict[str, Any]:
    """The JSON schemas of the event and answer models and the models they use."""
    models: list[type[BaseModel]] = [*_EVENT_MODELS, Stored, BatchResult]
    _, schemas = models_json_schema(
        [(model, "validation") for model in models], ref_template=_COMPONENTS
    )
    definitions: dict[str, Any] = schemas["$defs"]
    return definitions


def _item_result(
    index: int, outcome: Outcome | StoreFailed | InvalidEvent | ApiError
) -> dict[str, Any]:
    """One item's entry in the batch's answer."""
    if isinstance(outcome, Outcome):
        return {"index": index, "status": outcome.value, "error": None}
    if isinstance(outcome, StoreFailed):
        return {"index": index, "status": "failed", "error": str(outcome)}
    return {"index": index, "status": _refused_status(outcome), "error": str(outcome)}


def _check_batch(
    body: bytes, limit: int, max_depth: int, caller: Token
) -> list[Incoming | InvalidEvent | ApiError]:
    """Each item of the batch validated and allowed, or the reason it is not."""
    items = split_batch(body, max_depth)
    if len(items) > limit:
        raise ApiError(413, f"the batch has {len(items)} events; the limit is {limit}")
    checked: list[Incoming | InvalidEvent | ApiError] = []
    for document, raw in items:
        try:
            if isinstance(document, ApiError):
                raise document
            incoming = prepare(document, raw)
            checked.append(refusal(caller, incoming.event) or incoming)
        except (InvalidEvent, ApiError) as error:
            checked.append(error)
    return checked


def _refused_status(item: Incoming | InvalidEvent | ApiError) -> str:
    """An item not stored: `forbidden` when the token may not write it, else `invalid`."""
    if isinstance(item, ApiError) and item.status == 403:
        return FORBIDDEN
    return Outcome.INVALID.value


def split_batch(body: bytes, max_depth: int) -> list[tuple[Any, bytes | None]]:
    """The batch's items, each with its JSON as received when the format keeps it apart.

    An NDJSON line that is not JSON comes back as an ApiError in place of its document.
    """
    stripped = body.lstrip()
    if stripped.startswith(b"["):
        items = decode_json(body, max_depth)
        assert isinstance(items, list)
        return [(item, None) for item in items]
    if stripped.startswith(b"{"):
        lines = enumerate(body.splitlines(), 1)
        return [
            (_decode_line(line, number, max_depth), line) for number, line in lines if line.strip()
        ]
    if not stripped:
        raise ApiError(400, "the body is empty: send a JSON array of events or NDJSON")
    raise ApiError(400, "a batch is a JSON array of events or NDJSON (one event per line)")


def _decode_line(line: bytes, number: int, max_depth: int) -> Any:
    try:
        return decode_json(line, max_depth, f"line {number}")
    except ApiError as error:
        return error
