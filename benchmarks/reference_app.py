"""The reference for ingestion: a bare FastAPI endpoint on uvicorn that only parses the JSON
body and answers 201, run exactly as `pipewarden serve` runs (one uvicorn process).

    python benchmarks/reference_app.py PORT
"""

from __future__ import annotations

import sys

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()


@app.post("/api/v1/lineage")
async def lineage(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(b'{"status":"stored"}', 201, media_type="application/json")


@app.post("/api/v1/lineage/batch")
async def batch(request: Request) -> Response:
    events = orjson.loads(await request.body())
    results = [{"index": i, "status": "stored", "error": None} for i in range(len(events))]
    return Response(orjson.dumps({"results": results}), 200, media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
