"""Who is calling, and may they: Bearer tokens on `/api/v1`, the metrics token on `/metrics`.

`AuthMiddleware` authenticates before any route runs or any body is read (401), and leaves
the caller's `Token` in the request scope; routes take it as `Caller` and check what they
do with `require_*` (403). Without a token file every caller is `ANONYMOUS`, allowed all.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import Depends, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.api.errors import ApiError, error_body
from collector.auth import ANONYMOUS, AuthHolder, Token, secret_matches
from collector.openlineage import DatasetEvent, Event, FieldProblem

SCOPE_KEY = "pipewarden.caller"
_API = "/api/v1/"
_REALM = 'Bearer realm="pipewarden"'


class AuthMiddleware:
    """401 for `/api/v1` without a known token (and `/metrics` without the metrics token)."""

    def __init__(self, app: ASGIApp, holder: AuthHolder, metrics_token: str = "") -> None:
        self.app = app
        self.holder = holder
        self.metrics_token = metrics_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(_API):
            book = self.holder.book
            if book is None:
                scope[SCOPE_KEY] = ANONYMOUS
            else:
                presented = bearer_token(scope)
                caller = book.authenticate(presented) if presented is not None else None
                if caller is None:
                    await _unauthorized(send, presented is not None)
                    return
                scope[SCOPE_KEY] = caller
        elif path == "/metrics" and self.metrics_token:
            presented = bearer_token(scope)
            if presented is None or not secret_matches(presented, self.metrics_token):
                await _unauthorized(send, presented is not None)
                return
        await self.app(scope, receive, send)


def bearer_token(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer …` header, or None when there is none."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            header: str = value.decode("latin-1")
            scheme, _, token = header.strip().partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer" and token:
                return token
            return None
    return None


async def _unauthorized(send: Send, presented: bool) -> None:
    if presented:
        message = "the token is not known: it was revoked, mistyped, or is for another collector"
        challenge = f'{_REALM}, error="invalid_token"'
    else:
        message = "this endpoint needs a token: send Authorization: Bearer <token>"
        challenge = _REALM
    body = orjson.dumps(error_body(401, message))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", challenge.encode()),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def caller(request: Request) -> Token:
    """The token the middleware authenticated (fails closed if it did not run).

    Async, as is every dependency here: FastAPI runs a plain function in a worker thread.
    """
    found = request.scope.get(SCOPE_KEY)
    if not isinstance(found, Token):
        raise ApiError(401, "this endpoint needs a token: send Authorization: Bearer <token>")
    return found


Caller = Annotated[Token, Depends(caller)]


def require_role(token: Token, role: str, action: str) -> None:
    """403 unless the token has at least `role`."""
    if not token.has_role(role):
        raise ApiError(403, f"{token.describe()} may not {action}: that needs role {role}")


def require_namespace(
    token: Token, role: str, namespace: str, action: str, field: str = "namespace"
) -> None:
    """403 unless the token has at least `role` and covers `namespace`."""
    require_role(token, role, action)
    if not token.covers(namespace):
        raise ApiError(
            403,
            f"{token.describe()} may not {action} in namespace {namespace!r}",
            [FieldProblem(field=field, problem=f"{namespace!r} is not among the token's")],
        )


def require_all_namespaces(token: Token, action: str) -> None:
    """403 unless the token covers every namespace (`*`): the answer spans them."""
    if not token.all_namespaces:
        raise ApiError(
            403, f"{token.describe()} may not {action}: that needs a token for all namespaces (*)"
        )


def require_namespace_filter(token: Token, namespace: str | None, action: str) -> None:
    """For reads filtered by `?namespace=`: a token limited to some namespaces must pass one."""
    if namespace is None:
        if not token.all_namespaces:
            raise ApiError(
                403,
                f"{token.describe()} may not {action} across all namespaces: "
                "pass ?namespace= with one of its namespaces",
            )
        return
    require_namespace(token, "read", namespace, action)


def written_namespace(event: Event) -> tuple[str, str]:
    """The namespace an event writes to, and its field: the job's, or a DatasetEvent's dataset's."""
    if isinstance(event, DatasetEvent):
        return "dataset.namespace", event.dataset.namespace
    return "job.namespace", event.job.namespace


def refusal(token: Token, event: Event) -> ApiError | None:
    """Why this token may not write this event (a 403), or None when it may."""
    field, namespace = written_namespace(event)
    if token.covers(namespace):
        return None
    return ApiError(
        403,
        f"{token.describe()} may not write events in namespace {namespace!r}",
        [FieldProblem(field=field, problem=f"{namespace!r} is not among the token's")],
    )
