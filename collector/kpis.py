"""The KPIs, computed from stored runs, findings and gate decisions over a window of time.

Definitions (see the README's "Metrics and KPIs"):
- task success rate: COMPLETED / (COMPLETED + FAILED + ABORTED) runs that finished in the window;
- mean time to detect: per run with findings (or per run-less finding, e.g. a missed slot),
  the first finding's detected_at - the run's end event time (the finding's event time when it
  has no run), averaged over what was detected in the window; false positives left out;
- time to detect schema drift: the same, over `schema_drift` findings only;
- mean time to recover: per job, the first success after a failure - the first failure of
  that streak (end event times), averaged over the recoveries in the window;
- SLA adherence: for jobs with a policy `sla`, runs COMPLETED within `sla` of their nominal
  start (else their start) / expected runs (the finished runs plus the missed slots, freshness
  findings); None when no job has an SLA or none was expected;
- lineage coverage: jobs that have read or written a dataset / all jobs; column lineage
  coverage: jobs with column edges / all jobs (over all stored history);
- blocked runs: gate decisions in the window that blocked (enforce) and would have (monitor).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from collector.store.tables import column_edges, findings, gate_decisions, job_io, jobs, runs
from gates.policy import Policy, parse_duration

FINISHED = ("COMPLETED", "FAILED", "ABORTED")
DEFAULT_WINDOW = "7d"


@dataclass(frozen=True)
class Kpis:
    window: str
    since: datetime
    until: datetime
    runs: dict[str, int] = field(default_factory=dict)
    task_success_rate: float | None = None
    # Per job (namespace, name) with finished runs in the window: completed / finished.
    job_success_rates: dict[tuple[str, str], float] = field(default_factory=dict)
    mean_time_to_detect: float | None = None
    detections: int = 0
    time_to_detect_schema_drift: float | None = None
    schema_drifts: int = 0
    mean_time_to_recover: float | None = None
    recoveries: int = 0
    sla_adherence: float | None = None
    sla_on_time: int = 0
    sla_expected: int = 0
    sla_jobs: int = 0
    jobs: int = 0
    lineage_coverage: float | None = None
    column_lineage_coverage: float | None = None
    blocked_runs: int = 0
    would_block_runs: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "from": self.since.isoformat(),
            "to": self.until.isoformat(),
            "runs": self.runs,
            "taskSuccessRate": self.task_success_rate,
            "perJob": [
                {"namespace": namespace, "job": name, "taskSuccessRate": rate}
                for (namespace, name), rate in sorted(self.job_success_rates.items())
            ],
            "meanTimeToDetectSeconds": self.mean_time_to_detect,
            "detections": self.detections,
            "timeToDetectSchemaDriftSeconds": self.time_to_detect_schema_drift,
            "schemaDrifts": self.schema_drifts,
            "meanTimeToRecoverSeconds": self.mean_time_to_recover,
            "recoveries": self.recoveries,
            "slaAdherence": self.sla_adherence,
            "sla": {
                "onTime": self.sla_on_time,
                "expected": self.sla_expected,
                "jobs": self.sla_jobs,
            },
            "jobs": self.jobs,
            "lineageCoverage": self.lineage_coverage,
            "columnLineageCoverage": self.column_lineage_coverage,
            "blockedRuns": self.blocked_runs,
            "wouldBlockRuns": self.would_block_runs,
        }


MAX_WINDOW = timedelta(weeks=520)  # ten years: the window's start stays a representable time


def window_of(text: str) -> timedelta:
    """`7d`, `24h`, `1w` …, as the policy's durations; ValueError when not one, not positive
    or longer than ten years."""
    too_long = f"{text!r}: the window must be at most 520w (ten years)"
    try:
        duration = parse_duration(text)
    except OverflowError:
        raise ValueError(too_long) from None
    if duration <= timedelta(0):
        raise ValueError(f"{text!r}: the window must be longer than zero")
    if duration > MAX_WINDOW:
        raise ValueError(too_long)
    return duration


def compute(
    engine: Engine, policy: Policy, window: str = DEFAULT_WINDOW, now: datetime | None = None
) -> Kpis:
    until = now or datetime.now(UTC)
    since = until - window_of(window)
    with engine.connect() as connection:
        job_rows = connection.execute(select(jobs.c.id, jobs.c.namespace, jobs.c.name)).all()
        # The runs whose state is from the window, found by the index on updated_at (no
        # state is newer than its run's latest event), whatever the history's length; the
        # finished ones are picked here, not by the index on state, which holds them all.
        in_window = connection.execute(
            select(
                runs.c.job_id,
                runs.c.uuid,
                runs.c.state,
                runs.c.state_time,
                runs.c.started_at,
                runs.c.ended_at,
                runs.c.nominal_start_time,
            )
            .where(runs.c.updated_at >= since)
            .where(runs.c.state_time >= since, runs.c.state_time <= until)
            .order_by(runs.c.state_time)
        ).all()
        finished = [run for run in in_window if run.state in FINISHED]
        found = connection.execute(
            select(
                findings.c.id,
                findings.c.kind,
                findings.c.namespace,
                findings.c.job,
                findings.c.run_uuid,
                findings.c.event_time,
                findings.c.detected_at,
                runs.c.ended_at,
                runs.c.state_time,
            )
            .outerjoin(runs, runs.c.uuid == findings.c.run_uuid)
            .where(findings.c.event_time >= since, findings.c.event_time <= until)
            .where(findings.c.status != "false_positive")
        ).all()
        decided = connection.execute(
            select(gate_decisions.c.decision, gate_decisions.c.mode, func.count())
            .where(gate_decisions.c.decided_at >= since, gate_decisions.c.decided_at <= until)
            .group_by(gate_decisions.c.decision, gate_decisions.c.mode)
        ).all()
        with_io = connection.execute(select(func.count(func.distinct(job_io.c.job_id)))).scalar()
        with_columns = connection.execute(
            select(func.count(func.distinct(column_edges.c.job_id)))
        ).scalar()

    counts = {state.lower(): 0 for state in FINISHED}
    for run in finished:
        counts[run.state.lower()] += 1
    total = sum(counts.values())
    per_job: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for run in finished:
        per_job[run.job_id][0] += run.state == "COMPLETED"
        per_job[run.job_id][1] += 1

    first_detection: dict[Any, tuple[datetime, datetime, str]] = {}
    for row in found:
        key = row.run_uuid if row.run_uuid is not None else ("finding", row.id)
        reference = row.event_time
        if row.run_uuid is not None:
            reference = row.ended_at or row.state_time or row.event_time
        if key not in first_detection or row.detected_at < first_detection[key][0]:
            first_detection[key] = (row.detected_at, reference, row.kind)
    lags = [max(0.0, (at - ref).total_seconds()) for at, ref, _ in first_detection.values()]
    drift_first: dict[Any, tuple[datetime, datetime]] = {}
    for row in found:
        if row.kind != "schema_drift":
            continue
        key = row.run_uuid if row.run_uuid is not None else ("finding", row.id)
        reference = row.event_time
        if row.run_uuid is not None:
            reference = row.ended_at or row.state_time or row.event_time
        if key not in drift_first or row.detected_at < drift_first[key][0]:
            drift_first[key] = (row.detected_at, reference)
    drift_lags = [max(0.0, (at - ref).total_seconds()) for at, ref in drift_first.values()]

    recoveries = _recoveries(finished)

    names = {row.id: (row.namespace, row.name) for row in job_rows}
    slas = {
        job_id: sla
        for job_id, (namespace, name) in names.items()
        if (sla := policy.for_job(namespace, name).sla) is not None
    }
    on_time = expected = 0
    for run in finished:
        sla = slas.get(run.job_id)
        if sla is None:
            continue
        expected += 1
        start = run.nominal_start_time or run.started_at
        end = run.ended_at or run.state_time
        if run.state == "COMPLETED" and start is not None and end - start <= sla:
            on_time += 1
    sla_names = {names[job_id] for job_id in slas}
    expected += sum(
        1 for row in found if row.kind == "freshness" and (row.namespace, row.job) in sla_names
    )

    blocked = would_block = 0
    for decision, mode, count in decided:
        if decision == "block":
            if mode == "enforce":
                blocked += count
            else:
                would_block += count

    job_count = len(job_rows)
    return Kpis(
        window=window,
        since=since,
        until=until,
        runs=counts,
        task_success_rate=counts["completed"] / total if total else None,
        job_success_rates={
            names[job_id]: done / count
            for job_id, (done, count) in per_job.items()
            if job_id in names
        },
        mean_time_to_detect=_mean(lags),
        detections=len(lags),
        time_to_detect_schema_drift=_mean(drift_lags),
        schema_drifts=len(drift_lags),
        mean_time_to_recover=_mean(recoveries),
        recoveries=len(recoveries),
        sla_adherence=on_time / expected if slas and expected else None,
        sla_on_time=on_time,
        sla_expected=expected,
        sla_jobs=len(slas),
        jobs=job_count,
        lineage_coverage=(with_io or 0) / job_count if job_count else None,
        column_lineage_coverage=(with_columns or 0) / job_count if job_count else None,
        blocked_runs=blocked,
        would_block_runs=would_block,
    )


def _recoveries(finished: Any) -> list[float]:
    """Seconds from the first failure of each streak to the success that ended it, per job."""
    streak_start: dict[int, datetime] = {}
    recovered: list[float] = []
    by_job: dict[int, list[Any]] = defaultdict(list)
    for run in finished:
        by_job[run.job_id].append(run)
    for job_id, job_runs in by_job.items():
        for run in sorted(job_runs, key=lambda r: r.ended_at or r.state_time):
            end = run.ended_at or run.state_time
            if run.state == "COMPLETED":
                if job_id in streak_start:
                    recovered.append((end - streak_start.pop(job_id)).total_seconds())
            else:
                streak_start.setdefault(job_id, end)
    return recovered


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
