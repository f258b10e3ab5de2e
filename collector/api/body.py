"""Reading request bodies safely: size capped while reading, gzip inflated under the same cap."""

from __future__ import annotations

import zlib

from fastapi import Request

from collector.api.errors import ApiError

_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, decoded per Content-Encoding; 413 as soon as it passes `limit`."""
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
    async for chunk in request.stream():
        if decoder is not None:
            chunk = _inflate(decoder, chunk, room=limit - size, limit=limit)
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
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
