"""Reading request bodies safely: size capped while reading, gzip inflated under the same cap,
JSON nesting capped before parsing."""

from __future__ import annotations

import asyncio
import zlib
from array import array
from itertools import accumulate
from typing import Any

import orjson
from fastapi import Request
from starlette.requests import ClientDisconnect

from collector.api.errors import ApiError

_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


async def read_body(request: Request, limit: int, stall: float) -> bytes:
    """The request body, decoded per Content-Encoding; 413 as soon as it passes `limit`,
    408 when no bytes arrive for `stall` seconds (a body shorter than announced)."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in _DECODERS and encoding not in ("", "identity"):
        raise ApiError(
            415, f"Content-Encoding {encoding!r} is not supported: send gzip, deflate or identity"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    decoder = zlib.decompressobj(_DECODERS[encoding]) if encoding in _DECODERS else None
    chunks: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    try:
        # One deadline for the whole body, pushed back as each chunk arrives.
        async with asyncio.timeout(stall) as deadline:
            async for chunk in request.stream():
                deadline.reschedule(loop.time() + stall)
                if decoder is not None:
                    chunk = _inflate(decoder, chunk, room=limit - size, limit=limit)
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "the connection closed before the whole body arrived") from None
    except TimeoutError:
        raise ApiError(
            408, f"the body stalled: no bytes arrived for {stall:g} s before its end"
        ) from None
    if decoder is not None:
        if not decoder.eof:
            raise ApiError(400, f"the {encoding} body is truncated")
        tail = decoder.flush()
        size += len(tail)
        if size > limit:
            raise _too_large(limit)
        chunks.append(tail)
    return b"".join(chunks)


def _inflate(decoder: zlib._Decompress, chunk: bytes, room: int, limit: int) -> bytes:
    """Inflate at most `room` + 1 bytes, so a small bomb cannot grow past the limit."""
    try:
        out = decoder.decompress(chunk, room + 1)
    except zlib.error as error:
        raise ApiError(400, f"the body is not valid compressed data: {error}") from None
    if decoder.unconsumed_tail:
        raise _too_large(limit)
    return out


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is larger than the limit of {limit} bytes")


def decode_json(body: bytes, max_depth: int, what: str = "the body") -> Any:
    """The decoded JSON, or a 400 that says why it cannot be read.

    Only JSON itself is accepted: NaN and Infinity are not JSON, neither is a number too
    large for a double.
    """
    if not body.strip():
        raise ApiError(400, f"{what} is empty: send an OpenLineage event as JSON")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(400, f"{what} is not valid UTF-8 (at byte {error.start})") from None
    check_depth(body, max_depth, what)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, f"{what} is not valid JSON: {error}") from None


def check_depth(body: bytes, limit: int, what: str = "the body") -> None:
    """400 when the JSON in `body` nests arrays and objects deeper than `limit`.

    Runs before parsing, so a parser never recurses into a hostile document.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return  # too few brackets to be too deep: the usual case, decided in C
    depth = nesting_depth(body)
    if depth > limit:
        raise ApiError(
            400,
            f"{what} nests arrays and objects {depth} levels deep; the limit is {limit}",
        )


_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes


def nesting_depth(body: bytes) -> int:
    """How deep arrays and objects nest in JSON text; brackets inside strings do not count.

    A scan of the bytes, no parsing: escaped quotes and backslashes are dropped so that
    what lies between quotes is exactly the strings, then only the brackets outside them
    are kept and their running sum's peak is the depth.
    """
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside_strings = b"".join(unescaped.split(b'"')[::2])
    brackets = outside_strings.translate(None, _NOT_BRACKETS).translate(_STEPS)
    return max(accumulate(array("b", brackets), initial=0))
