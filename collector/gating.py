"""Gate decisions: gather what the store knows of a job into a GateContext, let the pure rules
decide, apply the job's mode, and keep the decision (the audit log).

A job is judged on what it declares (a POSTed plan: the shim's first run) or else on what
pipewarden knows of it: its latest run's inputs and outputs and its column lineage.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeGuard

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


def judge_and_record(
    connection: Connection, policy: Policy, namespace: str, job: str, plan: Plan | None = None
) -> GateAnswer:
    """Decide whether the job may run now and keep the decision in the audit log, in the
    writer's transaction: the decision is taken on the store as it is when it is recorded."""
    answer = judge(connection, policy, namespace, job, plan)
    record(connection, answer, plan)
    return answer


def parse_plan_ahead(engine: Engine, policy: Policy, namespace: str, job: str, plan: Plan) -> None:
    """Judge once on a connection of its own, so the plan's SQL is parsed (and cached) here
    rather than on the writer's thread, which every ingested event waits for."""
    with engine.connect() as connection:
        judge(connection, policy, namespace, job, plan)


def judge(
    connection: Connection, policy: Policy, namespace: str, job: str, plan: Plan | None = None
) -> GateAnswer:
    """Decide whether the job may run now (reading the store only); `record` keeps it."""
    now = datetime.now(UTC)
    settings = policy.for_job(namespace, job)
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


_RECORD = gate_decisions.insert()  # built once: each decision only binds its values


def record(connection: Connection, answer: GateAnswer, plan: Plan | None) -> None:
    """Keep the decision in the audit log (in the writer's transaction)."""
    connection.execute(
        _RECORD,
        {
            "uuid": answer.decision_id,
            "namespace": answer.namespace,
            "job": answer.job,
            "decided_at": answer.decided_at,
            "decision": answer.decision.decision,
            "mode": answer.mode,
            "effective": answer.effective,
            "reasons": [_reason_json(reason) for reason in answer.decision.reasons],
            "plan": _plan_json(plan) if plan is not None else None,
        },
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
    job_row = reads.gate_job(connection, namespace, job)
    since = job_row.last_success_at if job_row is not None else None
    inputs, outputs, known = _declared_or_known(connection, job_row, plan, since)
    edges = reads.job_edges(connection, job_row.id) if job_row is not None else []
    read_by_job = reads.read_columns(edges)
    planned = _plan_lineage(connection, plan, known, inputs, outputs)
    if planned is not None:
        read_by_job = planned.read
    stored_inputs = [
        known[key] for key in dict.fromkeys(_key(ref) for ref in inputs) if key in known
    ]
    producers = _producers_of_inputs(connection, plan, job_row, stored_inputs)
    versions = reads.schema_versions_by_id(
        connection, {id_ for row in stored_inputs for id_ in _schema_pair(row) or ()}
    )
    with_lineage = {edge.out_dataset_id for edge in edges}
    return GateContext(
        namespace=namespace,
        job=job,
        now=now,
        owner=settings.owner or _owner_facet(job_row),
        block_on_upstream_failure=settings.block_on_upstream_failure,
        inputs=tuple(
            _input_state(connection, policy, ref, known, read_by_job, versions, producers, job_row)
            for ref in inputs
        ),
        outputs=tuple(
            _output_state(connection, policy, ref, known, with_lineage, planned) for ref in outputs
        ),
    )


def _key(ref: Declared) -> tuple[str, str]:
    return ref.namespace, ref.name


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
    connection: Connection, job_row: Row[Any] | None, plan: Plan | None, since: datetime | None
) -> tuple[list[Declared], list[Declared], dict[tuple[str, str], Row[Any]]]:
    """The inputs and outputs the plan declares, or else those of the job's latest run; and
    the stored ones among them by (namespace, name), with their state (`reads.gate_*`)."""
    if _declares(plan):
        names = {_key(ref) for ref in plan.inputs + plan.outputs}
        rows = reads.gate_named_datasets(connection, names, since)
        return list(plan.inputs), list(plan.outputs), {(r.namespace, r.name): r for r in rows}
    if job_row is None or job_row.latest_run_uuid is None:
        return [], [], {}
    used = reads.gate_run_datasets(connection, job_row.latest_run_uuid, since)
    refs = {
        direction: [Declared(io.namespace, io.name) for io in used if io.direction == direction]
        for direction in ("input", "output")
    }
    return refs["input"], refs["output"], {(io.namespace, io.name): io for io in used}


def _producers_of_inputs(
    connection: Connection,
    plan: Plan | None,
    job_row: Row[Any] | None,
    stored_inputs: list[Row[Any]],
) -> dict[int, list[Row[Any]]]:
    """`reads.producers` of the stored inputs: the latest run's, or those declared."""
    if not stored_inputs:
        return {}
    if job_row is not None and not _declares(plan):
        return reads.producers_of_run_inputs(connection, job_row.latest_run_uuid)
    return reads.producers(connection, [row.id for row in stored_inputs])


def _declares(plan: Plan | None) -> TypeGuard[Plan]:
    """Whether the plan names the job's inputs or outputs (else the latest run's are used)."""
    return plan is not None and bool(plan.inputs or plan.outputs)


def _input_state(
    connection: Connection,
    policy: Policy,
    ref: Declared,
    known: dict[tuple[str, str], Row[Any]],
    read_by_job: dict[int, set[str]] | None,
    versions: dict[int, Row[Any]],
    producers: dict[int, list[Row[Any]]],
    job_row: Row[Any] | None,
) -> InputState:
    settings = policy.for_dataset(ref.namespace, ref.name)
    row = known.get(_key(ref))
    if row is None:
        return InputState(ref.namespace, ref.name, freshness=settings.freshness)
    columns = None if read_by_job is None else frozenset(read_by_job.get(row.id, set()))
    checked = (
        reads.check_results(connection, row.id, row.check_run_uuid, row.check_parent_run_uuid)
        if row.check_run_uuid is not None
        else ()
    )
    anomalies = (
        reads.open_anomalies_on(connection, ref.namespace, ref.name) if row.open_anomaly else ()
    )
    return InputState(
        namespace=ref.namespace,
        name=ref.name,
        columns_read=columns,
        schema_changes=_schema_changes(row, versions),
        assertions=tuple(
            Assertion(a.assertion, a.column_name, a.success, a.severity, a.event_time)
            for a in checked
        ),
        producers=_producers(producers.get(row.id, ()), job_row),
        last_modified=row.last_modified_at,
        freshness=settings.freshness,
        open_anomalies=tuple(anomalies),
    )


def _output_state(
    connection: Connection,
    policy: Policy,
    ref: Declared,
    known: dict[tuple[str, str], Row[Any]],
    with_lineage: set[int],
    planned: PlannedLineage | None,
) -> OutputState:
    settings = policy.for_dataset(ref.namespace, ref.name)
    row = known.get(_key(ref))
    lineage = row is not None and row.id in with_lineage
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


def _schema_pair(row: Row[Any]) -> tuple[int, int] | None:
    """The ids of the schema version the job last ran well on (`since`: in force then, or
    else the first after) and of the current one, when they differ."""
    first = row.schema_at_since if row.schema_at_since is not None else row.schema_first_after
    if first is None or row.schema_newest is None or first == row.schema_newest:
        return None
    return first, row.schema_newest


def _schema_changes(row: Row[Any], versions: dict[int, Row[Any]]) -> tuple[SchemaChange, ...]:
    """The net change from the schema the job last ran well on to the current one."""
    pair = _schema_pair(row)
    if pair is None:
        return ()
    first, last = versions[pair[0]], versions[pair[1]]
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


def _producers(producers: Sequence[Row[Any]], job_row: Row[Any] | None) -> tuple[ProducerRun, ...]:
    return tuple(
        ProducerRun(
            namespace=producer.namespace,
            job=producer.name,
            state=producer.state,
            at=producer.at,
            last_success=producer.last_success,
        )
        for producer in producers
        if (job_row is None or producer.id != job_row.id) and producer.state is not None
    )


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
