"""Refusing, before any route runs, what no route should have to handle.

A NUL character in the URL: no stored name can hold one, and PostgreSQL refuses it even in
a lookup. And for the bodies FastAPI parses itself (every route but the two ingest routes,
which read theirs with the same limits while streaming): more bytes than the body limit, a
body that stalls, and JSON nested deeper than the depth limit, refused before any parser
sees them.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector.api.body import check_depth, read_body
from collector.api.errors import ApiError, error_body
from collector.api.responses import JSONResponse
from collector.settings import Settings

_WITHOUT_BODY = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class RequestGuard:
    """The URL checked for NUL; other routes' bodies read under the body and depth limits."""

    def __init__(self, app: ASGIApp, settings: Settings, streamed: Collection[str]) -> None:
        self.app = app
        self.settings = settings
        self.streamed = streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _refuse_nul_in_url(scope)
            if scope["method"] in _WITHOUT_BODY or scope["path"] in self.streamed:
                await self.app(scope, receive, send)
                return
            limits = self.settings
            body = await read_body(
                Request(scope, receive), limits.max_body_bytes, limits.body_timeout
            )
            if body.strip():
                check_depth(body, limits.max_json_depth)
        except ApiError as error:
            answer = error_body(error.status, error.message, error.problems)
            response = JSONResponse(answer, error.status)
            await response(scope, receive, send)
            return
        await self.app(scope, _replaying(body, receive), send)


def _refuse_nul_in_url(scope: Scope) -> None:
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    if b"%00" in raw_path or "\x00" in scope["path"] or b"%00" in scope["query_string"]:
        raise ApiError(400, "the URL holds a NUL character (%00), which no name can contain")


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` that hands the body already read to the app, then carries on as before."""
    delivered = False

    async def replayed() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
