"""`GET|POST /api/v1/gates/{ns}/{job}`: is it safe to run this job now?"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from collector.api.access import Caller, require_namespace
from collector.api.deps import Services, services
from collector.api.responses import JSONResponse
from collector.gating import Plan, judge, record
from collector.lineage.parsed import Declared

router = APIRouter(prefix="/api/v1", tags=["gates"])


class DatasetIn(BaseModel):
    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)


class PlanIn(BaseModel):
    """What the job declares it will read, write and run (the shim sends this)."""

    inputs: list[DatasetIn] = Field(default_factory=list)
    outputs: list[DatasetIn] = Field(default_factory=list)
    sql: str | None = None
    dialect: str | None = None


@router.get("/gates/{namespace}/{job}")
async def gate_known(
    namespace: str, job: str, app: Annotated[Services, Depends(services)], caller: Caller
) -> JSONResponse:
    """Judge the job from what pipewarden knows of it (its latest run)."""
    require_namespace(caller, "read", unquote(namespace), "ask the gate")
    return await _judge(app, namespace, job, None)


@router.post("/gates/{namespace}/{job}")
async def gate_plan(
    namespace: str,
    job: str,
    plan: PlanIn,
    app: Annotated[Services, Depends(services)],
    caller: Caller,
) -> JSONResponse:
    """Judge the job on what it declares: the plan's inputs, outputs and SQL."""
    require_namespace(caller, "read", unquote(namespace), "ask the gate")
    declared = Plan(
        inputs=tuple(Declared(d.namespace, d.name) for d in plan.inputs),
        outputs=tuple(Declared(d.namespace, d.name) for d in plan.outputs),
        sql=plan.sql,
        dialect=plan.dialect,
    )
    return await _judge(app, namespace, job, declared)


async def _judge(app: Services, namespace: str, job: str, plan: Plan | None) -> JSONResponse:
    answer = await run_in_threadpool(
        judge, app.engine, app.policy.current, unquote(namespace), unquote(job), plan
    )
    await app.writer.write(lambda connection: record(connection, answer, plan))
    return JSONResponse(answer.as_json())
