"""One shape for every error the API answers: the status, a sentence, and per-field problems."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from collector.api.responses import JSONResponse
from collector.openlineage import FieldProblem
from collector.store.errors import RETRY_AFTER_S, StoreUnavailable, is_unavailable, reason

log = logging.getLogger(__name__)
# What `store_error_handler` answers: the store away, busy or failing.
STORE_ERRORS = (StoreUnavailable, DBAPIError, PoolTimeout)


class ApiError(Exception):
    """An answer other than success, for the client to read and act on."""

    def __init__(self, status: int, message: str, problems: Sequence[FieldProblem] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = list(problems)


def error_body(
    status: int, message: str, problems: Sequence[FieldProblem] = ()
) -> dict[str, object]:
    return {
        "code": status,
        "message": message,
        "errors": [problem.model_dump() for problem in problems],
    }


async def api_error_handler(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return JSONResponse(error_body(error.status, error.message, error.problems), error.status)


async def http_error_handler(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    return JSONResponse(error_body(error.status_code, str(error.detail)), error.status_code)


async def request_validation_handler(_request: Request, error: Exception) -> JSONResponse:
    """Bad query or path parameters: 400 naming the parameter."""
    assert isinstance(error, RequestValidationError)
    problems = [
        FieldProblem(field=".".join(str(part) for part in item["loc"]), problem=item["msg"])
        for item in error.errors()
    ]
    message = "; ".join(f"{p.field}: {p.problem}" for p in problems)
    return JSONResponse(error_body(400, message, problems), 400)


async def store_error_handler(request: Request, error: Exception) -> JSONResponse:
    """The store away or busy: 503 with Retry-After, so the client sends the request again
    (nothing was acknowledged). Any other store fault is a 500 in the same shape."""
    if is_unavailable(error):
        log.warning("%s %s: store unavailable: %s", request.method, request.url.path, reason(error))
        message = (
            f"the store is unavailable ({reason(error)}); "
            f"send the request again in {RETRY_AFTER_S} s"
        )
        return JSONResponse(
            error_body(503, message), 503, headers={"Retry-After": str(RETRY_AFTER_S)}
        )
    log.error("%s %s failed in the store", request.method, request.url.path, exc_info=error)
    return JSONResponse(error_body(500, f"the store failed: {reason(error)}"), 500)
