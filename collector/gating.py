"""Gate decisions: gather what the store knows of a job into a GateContext, let the pure rules
decide, apply the job's mode, and keep the decision (the audit log).

A job is judged on what it declares (a POSTed plan: the shim's first run) or else on what
pipewarden knows of it: its latest run's inputs and outputs and its column lineage.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row

from collector.detection import schema_fields
from collector.lineage.parsed import Declared, known_schemas, parse_cached, resolve
from collector.lineage.sql import SqlParseError
from collector.store import reads
from collector.store.tables import gate_decisions
from detectors.schema import diff as schema_diff
from gates.decide import decide, effective
from gates.model import (
    Assertion,
    Decision,
    GateContext,
    InputState,
    OutputState,
    PiiFlow,
    ProducerRun,
    SchemaChange,
)
from gates.policy import Policy


@dataclass(frozen=True)
class Plan:
    """What a job declares it will do (a POST to the gate)."""

    inputs: tuple[Declared, ...] = ()
    outputs: tuple[Declared, ...] = ()
    sql: str | None = None
    dialect: str | None = None


@dataclass(frozen=True)
class GateAnswer:
    namespace: str
    job: str
    decision: Decision
    mode: str
    effective: str
    decision_id: uuid.UUID
    decided_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "job": self.job,
            "decision": self.decision.decision,
            "mode": self.mode,
            "effective": self.effective,
            "reasons": [_reason_json(reason) for reason in self.decision.reasons],
            "decisionId": str(self.decision_id),
            "decidedAt": self.decided_at,
        }


def judge(
    engine: Engine, policy: Policy, namespace: str, job: str, plan: Plan | None = None
) -> GateAnswer:
    """Decide whether the job may run now (reading the store only); `record` keeps it."""
    now = datetime.now(UTC)
    settings = policy.for_job(namespace, job)
    with engine.connect() as connection:
        context = build_context(connection, policy, namespace, job, plan, now)
    decision = decide(context)
    return GateAnswer(
        namespace=namespace,
        job=job,
        decision=decision,
        mode=settings.mode,
        effective=effective(decision, settings.mode),
        decision_id=uuid.uuid4(),
        decided_at=now,
    )


def record(connection: Connection, answer: GateAnswer, plan: Plan | None) -> None:
    """Keep the decision in the audit log (in the writer's transaction)."""
    connection.execute(
        gate_decisions.insert().values(
            uuid=answer.decision_id,
            namespace=answer.namespace,
            job=answer.job,
            decided_at=answer.decided_at,
            decision=answer.decision.decision,
            mode=answer.mode,
            effective=answer.effective,
            reasons=[_reason_json(reason) for reason in answer.decision.reasons],
            plan=_plan_json(plan) if plan is not None else None,
        )
    )


def build_context(
    connection: Connection,
    policy: Policy,
    namespace: str,
    job: str,
    plan: Plan | None,
    now: datetime,
) -> GateContext:
    settings = policy.for_job(namespace, job)
    job_row = reads.get_job(connection, namespace, job)
    inputs, outputs = _declared_or_known(connection, job_row, plan)
    read_by_job = reads.columns_read(connection, job_row.id) if job_row is not None else None
    success = reads.last_success(connection, job_row.id) if job_row is not None else None
    since = success.created_at if success is not None else None
    known = reads.datasets_by_name(connection, {(d.namespace, d.name) for d in inputs + outputs})
    planned = _plan_lineage(connection, plan, known, inputs, outputs)
    if planned is not None:
        read_by_job = planned.read
    return GateContext(
        namespace=namespace,
        job=job,
        now=now,
        owner=settings.owner or _owner_facet(job_row),
        block_on_upstream_failure=settings.block_on_upstream_failure,
        inputs=tuple(
            _input_state(connection, policy, ref, known, read_by_job, since, job_row)
            for ref in inputs
        ),
        outputs=tuple(
            _output_state(connection, policy, ref, known, job_row, planned) for ref in outputs
        ),
    )


@dataclass(frozen=True)
class PlannedLineage:
    """What a declared plan's SQL reads and writes, column by column, by dataset id."""

    read: dict[int, set[str]]
    # (output dataset ref, output column) <- (input dataset id, input column), value-carrying
    carries: tuple[tuple[Declared, str, int, str], ...]


def _plan_lineage(
    connection: Connection,
    plan: Plan | None,
    known: dict[tuple[str, str], Row[Any]],
    inputs: list[Declared],
    outputs: list[Declared],
) -> PlannedLineage | None:
    """The plan's SQL parsed against the declared datasets; None without SQL or if unparseable."""
    if plan is None or not plan.sql:
        return None
    lineage = parse_cached(plan.sql, plan.dialect, known_schemas(connection, inputs))
    if isinstance(lineage, SqlParseError):
        return None
    read: dict[int, set[str]] = {}
    carries = []
    for edge in lineage.edges:
        source = resolve(edge.input, inputs, fallback_namespace="")
        row = known.get((source.namespace, source.name))
        if row is None:
            continue
        read.setdefault(row.id, set()).add(edge.input_field)
        target = resolve(edge.output, outputs, fallback_namespace="")
        if target in outputs and edge.type == "DIRECT" and not edge.masking and edge.output_field:
            carries.append((target, edge.output_field, int(row.id), edge.input_field))
    return PlannedLineage(read=read, carries=tuple(carries))


def _declared_or_known(
    connection: Connection, job_row: Row[Any] | None, plan: Plan | None
) -> tuple[list[Declared], list[Declared]]:
    if plan is not None and (plan.inputs or plan.outputs):
        return list(plan.inputs), list(plan.outputs)
    if job_row is None:
        return [], []
    latest = reads.latest_run(connection, job_row.id)
    if latest is None:
        return [], []
    used = reads.run_datasets(connection, latest.uuid)
    refs = {
        direction: [Declared(io.namespace, io.name) for io in used if io.direction == direction]
        for direction in ("input", "output")
    }
    return refs["input"], refs["output"]


def _input_state(
    connection: Connection,
    policy: Policy,
    ref: Declared,
    known: dict[tuple[str, str], Row[Any]],
    read_by_job: dict[int, set[str]] | None,
    since: datetime | None,
    job_row: Row[Any] | None,
) -> InputState:
    settings = policy.for_dataset(ref.namespace, ref.name)
    row = known.get((ref.namespace, ref.name))
    if row is None:
        return InputState(ref.namespace, ref.name, freshness=settings.freshness)
    columns = None if read_by_job is None else frozenset(read_by_job.get(row.id, set()))
    return InputState(
        namespace=ref.namespace,
        name=ref.name,
        columns_read=columns,
        schema_changes=_schema_changes(connection, row.id, since),
        assertions=tuple(
            Assertion(a.assertion, a.column_name, a.success, a.severity, a.event_time)
            for a in reads.latest_assertions(connection, row.id)
        ),
        producers=_producers(connection, row.id, job_row),
        last_modified=row.last_modified_at,
        freshness=settings.freshness,
        open_anomalies=tuple(
            finding.message
            for finding in reads.open_findings_on(connection, ref.namespace, ref.name)
            if finding.kind in _INPUT_ANOMALIES
        ),
    )


def _output_state(
    connection: Connection,
    policy: Policy,
    ref: Declared,
    known: dict[tuple[str, str], Row[Any]],
    job_row: Row[Any] | None,
    planned: PlannedLineage | None,
) -> OutputState:
    settings = policy.for_dataset(ref.namespace, ref.name)
    row = known.get((ref.namespace, ref.name))
    lineage = (
        row is not None
        and job_row is not None
        and reads.has_column_lineage(connection, job_row.id, row.id)
    )
    flows: tuple[PiiFlow, ...] = ()
    if settings.public:
        start: set[tuple[int, str, str]] = set()
        if row is not None:
            start |= {
                (edge.in_dataset_id, edge.in_field, edge.out_field)
                for edge in reads.edges_into(connection, row.id)
                if _carries_value(edge)
            }
        if planned is not None:
            start |= {(d, f, column) for target, column, d, f in planned.carries if target == ref}
        flows = _pii_flows(connection, policy, start)
    lineage = lineage or bool(planned and any(t == ref for t, *_ in planned.carries))
    return OutputState(
        ref.namespace, ref.name, public=settings.public, has_lineage=lineage, pii_flows=flows
    )


_INPUT_ANOMALIES = ("volume",)
_MAX_HOPS = 20


def _pii_flows(
    connection: Connection, policy: Policy, start: set[tuple[int, str, str]]
) -> tuple[PiiFlow, ...]:
    """PII-tagged columns whose values reach an output's columns with no masking on the way.

    `start` holds (source dataset id, source column, output column) for each value-carrying
    edge into the output; the walk goes upstream along DIRECT edges that do not mask
    (INDIRECT edges, joins and filters, carry no value).
    """
    flows: dict[tuple[str, str, str], PiiFlow] = {}
    frontier = start
    seen: set[tuple[int, str]] = set()
    for _ in range(_MAX_HOPS):
        if not frontier:
            break
        names = reads.datasets_by_id(connection, {d for d, _, _ in frontier})
        following: set[tuple[int, str, str]] = set()
        for source_id, field, output_column in frontier:
            if (source_id, field) in seen or source_id not in names:
                continue
            seen.add((source_id, field))
            source = names[source_id]
            if field in _pii_columns(policy, source):
                label = f"{source.namespace}/{source.name}"
                flows[(output_column, label, field)] = PiiFlow(output_column, label, field)
            following.update(
                (edge.in_dataset_id, edge.in_field, output_column)
                for edge in reads.edges_into(connection, source_id, [field])
                if _carries_value(edge)
            )
        frontier = following
    return tuple(flows.values())


def _carries_value(edge: Row[Any]) -> bool:
    return bool(edge.type == "DIRECT" and not edge.masking and edge.out_field)


def _pii_columns(policy: Policy, dataset: Row[Any]) -> set[str]:
    """Columns tagged PII by the policy or by a column-level `tags` facet."""
    tagged = set(policy.for_dataset(dataset.namespace, dataset.name).pii)
    for tag in (dataset.facets.get("tags") or {}).get("tags") or []:
        if (
            isinstance(tag, dict)
            and tag.get("field")
            and "pii" in (str(tag.get("key", "")).lower(), str(tag.get("value", "")).lower())
        ):
            tagged.add(str(tag["field"]))
    return tagged


def _schema_changes(
    connection: Connection, dataset_id: int, since: datetime | None
) -> tuple[SchemaChange, ...]:
    """The net change from the schema the job last ran well on to the current one."""
    if since is None:
        return ()
    versions = reads.schema_versions_since(connection, dataset_id, since)
    if len(versions) < 2:
        return ()
    first, last = versions[0], versions[-1]
    return tuple(
        SchemaChange(
            kind=change.kind,
            column=change.renamed_from or change.column,
            breaking=change.breaking,
            at=last.event_time,
            old_type=change.old_type,
            new_type=change.new_type,
            renamed_to=change.column if change.renamed_from else None,
        )
        for change in schema_diff(schema_fields(first.fields), schema_fields(last.fields))
    )


def _producers(
    connection: Connection, dataset_id: int, job_row: Row[Any] | None
) -> tuple[ProducerRun, ...]:
    found = []
    for producer in reads.producers(connection, dataset_id):
        if job_row is not None and producer.id == job_row.id:
            continue
        latest = reads.latest_run(connection, producer.id)
        if latest is None:
            continue
        success = reads.last_success(connection, producer.id)
        found.append(
            ProducerRun(
                namespace=producer.namespace,
                job=producer.name,
                state=latest.state,
                at=latest.ended_at or latest.created_at,
                last_success=(success.ended_at or success.created_at) if success else None,
            )
        )
    return tuple(found)


def _owner_facet(job_row: Row[Any] | None) -> str | None:
    if job_row is None:
        return None
    owners = (job_row.facets.get("ownership") or {}).get("owners") or []
    names = [o.get("name") for o in owners if isinstance(o, dict) and o.get("name")]
    return str(names[0]) if names else None


def _reason_json(reason: Any) -> dict[str, Any]:
    return {
        "rule": reason.rule,
        "severity": reason.severity,
        "dataset": reason.dataset,
        "column": reason.column,
        "message": reason.message,
    }


def _plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "inputs": [vars(ref) for ref in plan.inputs],
        "outputs": [vars(ref) for ref in plan.outputs],
        "sql": plan.sql,
        "dialect": plan.dialect,
    }
