"""Running the pure detectors on stored history, and keeping what they find.

Each finished run is judged once, against the runs before it in event time, so replaying a
backfilled history gives the findings a live feed would have. Findings carry a key (kind,
job, dataset, run or expected slot, subject): finding the same thing twice — live, then
on a replay, or on two collectors — stores it once. Reads go to the store directly; every
write goes through the writer.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import Connection, Engine, Row, update

from collector.lineage import parsed
from collector.store import reads, writes
from collector.store.errors import is_unavailable
from collector.store.tables import findings, run_io, runs
from detectors import failures, freshness, overrun, runtime, schema, volume
from detectors.model import ANOMALY, Expectation, Finding, Point, Sensitivity
from gates.policy import Policy

log = logging.getLogger(__name__)
T = TypeVar("T")
LIVE_HORIZON = timedelta(days=7)
Write = Callable[[Callable[[Connection], T]], T]


@dataclass(frozen=True)
class Located:
    """A finding and where it belongs."""

    finding: Finding
    namespace: str
    job: str
    dataset: tuple[str, str] | None = None


class Detection:
    """The collector's side of detection: history in, findings and expected ranges out."""

    def __init__(self, engine: Engine, write: Write[Any], policy: Callable[[], Policy]) -> None:
        self._engine = engine
        self._write = write
        self._policy = policy

    def judge_pending(self, limit: int = 200) -> int:
        """Judge finished runs not judged yet; how many were judged."""
        with self._engine.connect() as connection:
            pending = reads.undetected_runs(connection, limit)
        for run in pending:
            try:
                self._judge_run(run)
            except Exception as error:  # one run's trouble must not stop the others
                if is_unavailable(error):
                    raise  # the store's trouble, not the run's: judge it when it is back
                log.exception("detection failed for run %s", run.uuid)
                self._write(_claimer(run.uuid))
        return len(pending)

    def _judge_run(self, run: Row[Any]) -> None:
        """Judge one run from the store as committed; what it finds is written as it goes."""
        parsed.store_sql_lineage(self._engine, self._write, run)  # its own step; never raises
        settings = self._policy().for_job(run.namespace, run.job_name)
        sensitivity = _sensitivity(settings.sensitivity)
        found: list[Located] = []
        bands: list[dict[str, Any]] = []
        with self._engine.connect() as connection:
            earlier = reads.runs_before(connection, run.job_id, run.created_at)
            written = reads.run_datasets(connection, run.uuid)
            checks = reads.run_assertions(connection, run.uuid)
            found += self._runtime(run, earlier, sensitivity, bands)
            found += self._volumes(connection, run, written, sensitivity, bands)
            found += self._failures(run, earlier)
            found += self._schema(connection, run)
            found += _quality(run, checks)
            found += self._missed_before(
                run, earlier, settings.schedule, settings.grace, sensitivity
            )
        over = _cleared(run, written, checks, found)

        def store(connection: Connection) -> None:
            if not writes.claim_detection(connection, run.uuid, _now()):
                return  # another collector judged it
            for band in bands:
                writes.set_expectation(connection, band)
            for located in found:
                _store(connection, located)
            for item in over:
                writes.resolve_findings(
                    connection,
                    run.namespace,
                    run.job_name,
                    item.kind,
                    item.before,
                    item.dataset,
                    item.run_uuid,
                )

        self._write(store)

    def check_overruns(self, now: datetime) -> int:
        """Findings for runs still going past their expected high bound."""
        found = []
        with self._engine.connect() as connection:
            for run in reads.running_runs(connection):
                settings = self._policy().for_job(run.namespace, run.job_name)
                earlier = reads.runs_before(connection, run.job_id, run.created_at)
                finding = overrun.check(
                    run.started_at,
                    now,
                    _durations(earlier),
                    _sensitivity(settings.sensitivity),
                    str(run.uuid),
                )
                if finding is not None:
                    found.append(Located(finding, run.namespace, run.job_name))
        self._store_all(found)
        return len(found)

    def check_freshness(self, now: datetime) -> int:
        """Findings for expected runs that have not started by now (live)."""
        found = []
        policy = self._policy()
        with self._engine.connect() as connection:
            for job in reads.all_jobs(connection):
                settings = policy.for_job(job.namespace, job.name)
                starts = sorted(reads.starts_before(connection, job.id, now + timedelta(days=1)))
                if not starts:
                    continue
                schedule = _schedule(settings.schedule, settings.grace)
                # A job silent for longer than the horizon was reported while it fell silent.
                since = max(starts[-1], now - LIVE_HORIZON)
                for finding in freshness.missed(
                    starts, since, now, schedule, _sensitivity(settings.sensitivity)
                ):
                    found.append(Located(finding, job.namespace, job.name))
        self._store_all(found)
        return len(found)

    def _store_all(self, found: Sequence[Located]) -> None:
        def store(connection: Connection) -> None:
            for item in found:
                _store(connection, item)

        if found:
            self._write(store)

    # --- per run ----------------------------------------------------------------------

    def _runtime(
        self,
        run: Row[Any],
        earlier: Sequence[Row[Any]],
        sensitivity: Sensitivity,
        bands: list[dict[str, Any]],
    ) -> list[Located]:
        if run.state != "COMPLETED" or run.duration_ms is None:
            return []
        history = _durations(earlier)
        point = Point(str(run.uuid), _start(run), run.duration_ms / 1000, run.verdict)
        expected, finding = runtime.judge(history, point, sensitivity)
        bands.append(_band(run.job_id, 0, "duration", point, expected))
        return [Located(finding, run.namespace, run.job_name)] if finding else []

    def _volumes(
        self,
        connection: Connection,
        run: Row[Any],
        written: Sequence[Row[Any]],
        sensitivity: Sensitivity,
        bands: list[dict[str, Any]],
    ) -> list[Located]:
        if run.state != "COMPLETED":
            return []
        located = []
        for io in written:
            if io.direction != "output" or io.row_count is None:
                continue
            earlier = reads.written_before(connection, run.job_id, io.dataset_id, run.created_at)
            history = [
                Point(str(e.uuid), e.ended_at, float(e.row_count), e.verdict)
                for e in reversed(earlier)
                if e.row_count is not None and e.ended_at is not None
            ]
            point = Point(str(run.uuid), run.ended_at, float(io.row_count), io.verdict)
            expected, finding = volume.judge(history, point, sensitivity)
            bands.append(_band(run.job_id, io.dataset_id, "rows", point, expected))
            if finding is not None:
                located.append(
                    Located(finding, run.namespace, run.job_name, (io.namespace, io.name))
                )
        return located

    def _failures(self, run: Row[Any], earlier: Sequence[Row[Any]]) -> list[Located]:
        if run.state != "FAILED":
            return []
        states = [(str(r.uuid), r.created_at, r.state) for r in reversed(earlier[:20])]
        states.append((str(run.uuid), run.created_at, run.state))
        finding = failures.check(states)
        return [Located(finding, run.namespace, run.job_name)] if finding else []

    def _schema(self, connection: Connection, run: Row[Any]) -> list[Located]:
        located = []
        for previous, version in reads.schema_versions_of_run(connection, run.uuid):
            changes = schema.diff(schema_fields(previous.fields), schema_fields(version.fields))
            dataset = reads.datasets_by_id(connection, [version.dataset_id])[version.dataset_id]
            for finding in schema.findings(changes, version.event_time, str(run.uuid)):
                located.append(
                    Located(finding, run.namespace, run.job_name, (dataset.namespace, dataset.name))
                )
        return located

    def _missed_before(
        self,
        run: Row[Any],
        earlier: Sequence[Row[Any]],
        cron: str | None,
        grace: timedelta,
        sensitivity: Sensitivity,
    ) -> list[Located]:
        """Retrospective freshness: runs that should have happened before this one."""
        starts = _starts(earlier)
        if not starts:
            return []
        this_start = _start(run)
        slots = freshness.missed(
            [*starts, this_start], starts[-1], this_start, _schedule(cron, grace), sensitivity
        )
        return [Located(f, run.namespace, run.job_name) for f in slots]


def _quality(run: Row[Any], checks: Sequence[Row[Any]]) -> list[Located]:
    return [
        Located(
            Finding(
                kind="quality",
                run_id=str(run.uuid),
                at=check.event_time,
                severity="warning"
                if (check.severity or "").lower().startswith("warn")
                else "critical",
                observed=None,
                expected_low=None,
                expected_high=None,
                score=1.0,
                message=f"quality check {check.assertion} failed"
                + (f" on column {check.column_name}" if check.column_name else ""),
                subject=check.column_name or check.assertion,
            ),
            run.namespace,
            run.job_name,
            (check.dataset_namespace, check.dataset_name),
        )
        for check in checks
        if not check.success
    ]


@dataclass(frozen=True)
class Cleared:
    """The job's open findings of a kind (about a dataset) from before a time are over."""

    kind: str
    before: datetime
    dataset: tuple[str, str] | None = None
    run_uuid: UUID | None = None


def _cleared(
    run: Row[Any],
    written: Sequence[Row[Any]],
    checks: Sequence[Row[Any]],
    found: Sequence[Located],
) -> list[Cleared]:
    """What a judged run shows is over: a finding stays open only while its condition holds.

    Any run ends the missed slots before it, and its own overrun by finishing; a completed
    run ends a failure streak, and earlier anomalies of a kind it was judged on and did not
    raise again.
    """
    end: datetime = run.ended_at or run.state_time
    cleared = [Cleared("freshness", _start(run)), Cleared("overrun", end, run_uuid=run.uuid)]
    if run.state != "COMPLETED":
        return cleared
    raised = {(item.finding.kind, item.dataset) for item in found}
    cleared.append(Cleared("failure", end))
    if run.duration_ms is not None and ("runtime", None) not in raised:
        cleared.append(Cleared("runtime", end))
    for io in written:
        if io.direction != "output":
            continue
        dataset = (io.namespace, io.name)
        kinds = ["schema_drift"] + (["volume"] if io.row_count is not None else [])
        cleared += [Cleared(k, end, dataset) for k in kinds if (k, dataset) not in raised]
    checked = {(check.dataset_namespace, check.dataset_name) for check in checks}
    cleared += [Cleared("quality", end, d) for d in checked if ("quality", d) not in raised]
    return cleared


def record_feedback(connection: Connection, finding: Row[Any], verdict: str) -> None:
    """An operator's verdict: a false positive returns its value to the baseline."""
    status = "false_positive" if verdict == "false_positive" else "open"
    connection.execute(update(findings).where(findings.c.id == finding.id).values(status=status))
    if finding.run_uuid is None:
        return
    mark = "false_positive" if verdict == "false_positive" else "confirmed"
    if finding.kind in ("runtime", "overrun"):
        connection.execute(update(runs).where(runs.c.uuid == finding.run_uuid).values(verdict=mark))
    elif finding.kind == "volume" and finding.dataset is not None:
        dataset = reads.get_dataset(connection, finding.dataset_namespace, finding.dataset)
        if dataset is not None:
            connection.execute(
                update(run_io)
                .where(
                    run_io.c.run_uuid == finding.run_uuid,
                    run_io.c.dataset_id == dataset.id,
                    run_io.c.direction == "output",
                )
                .values(verdict=mark)
            )


def _claimer(run_uuid: Any) -> Callable[[Connection], bool]:
    return lambda connection: writes.claim_detection(connection, run_uuid, _now())


# The key's unique index takes entries up to about 2.7 kB on PostgreSQL: a longer key (long
# names side by side) is kept as its hash, still one per finding.
_MAX_KEY_BYTES = 512


def _finding_key(parts: Sequence[str]) -> str:
    key = "|".join(parts)
    if len(key.encode("utf-8", "surrogatepass")) <= _MAX_KEY_BYTES:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _store(connection: Connection, located: Located) -> None:
    finding = located.finding
    dataset_namespace, dataset = located.dataset or (None, None)
    anchor = finding.run_id or finding.at.isoformat()
    key = _finding_key(
        [
            finding.kind,
            located.namespace,
            located.job,
            f"{dataset_namespace}/{dataset}",
            anchor,
            finding.subject or "",
        ]
    )
    added = writes.add_finding(
        connection,
        {
            "key": key,
            "kind": finding.kind,
            "namespace": located.namespace,
            "job": located.job,
            "dataset_namespace": dataset_namespace,
            "dataset": dataset,
            "run_uuid": UUID(finding.run_id) if finding.run_id else None,
            "subject": finding.subject,
            "event_time": finding.at,
            "detected_at": _now(),
            "severity": finding.severity,
            "observed": finding.observed,
            "expected_low": finding.expected_low,
            "expected_high": finding.expected_high,
            "score": finding.score,
            "status": "open",
            "message": finding.message,
        },
    )
    if added and finding.run_id:
        _flag(connection, located, UUID(finding.run_id))


def _flag(connection: Connection, located: Located, run_uuid: UUID) -> None:
    """Keep an anomalous value out of later baselines (unless an operator says otherwise)."""
    kind = located.finding.kind
    if kind == "runtime":
        connection.execute(
            update(runs)
            .where(runs.c.uuid == run_uuid, runs.c.verdict.is_(None))
            .values(verdict=ANOMALY)
        )
    elif kind == "volume" and located.dataset is not None:
        dataset = reads.get_dataset(connection, *located.dataset)
        if dataset is not None:
            connection.execute(
                update(run_io)
                .where(
                    run_io.c.run_uuid == run_uuid,
                    run_io.c.dataset_id == dataset.id,
                    run_io.c.direction == "output",
                    run_io.c.verdict.is_(None),
                )
                .values(verdict=ANOMALY)
            )


def _durations(rows: Sequence[Row[Any]]) -> list[Point]:
    """Completed runs' durations as points, oldest first."""
    return [
        Point(str(r.uuid), _start(r), r.duration_ms / 1000, r.verdict)
        for r in reversed(rows)
        if r.state == "COMPLETED" and r.duration_ms is not None
    ]


def _starts(rows: Sequence[Row[Any]]) -> list[datetime]:
    return sorted(_start(r) for r in rows)


def _start(run: Row[Any]) -> datetime:
    start: datetime = run.started_at or run.created_at
    return start


def _band(
    job_id: int, dataset_id: int, metric: str, point: Point, expected: Expectation
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "dataset_id": dataset_id,
        "metric": metric,
        "event_time": point.at,
        "observed": point.value,
        "low": expected.low,
        "high": expected.high,
        "centre": expected.centre,
        "learning": expected.learning,
        "season": expected.season,
    }


def schema_fields(raw: Sequence[Any]) -> list[schema.Field]:
    """Stored schema-facet fields as the schema detector reads them."""
    return [
        schema.Field(
            name=str(item["name"]), type=item.get("type"), description=item.get("description")
        )
        for item in raw
        if isinstance(item, dict) and item.get("name")
    ]


def _schedule(cron: str | None, grace: timedelta) -> freshness.Schedule | None:
    return freshness.Schedule(cron=cron, grace=grace) if cron else None


def _sensitivity(k: float | None) -> Sensitivity:
    return Sensitivity(k=k) if k is not None else Sensitivity()


def _now() -> datetime:
    return datetime.now(UTC)
