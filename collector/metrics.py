"""Prometheus metrics: the store's state read at scrape time, and this process's own work.

Everything stored (runs, expectations, findings, gate decisions, schema versions, lineage,
the KPIs) is read by `StoreCollector` when Prometheus scrapes, so every replica exposes the
same truth. Only what this process did itself (events ingested, errors, request latency,
SQL parse failures) is counted in memory. Each app has its own `CollectorRegistry`.
Labels are names (namespace, pipeline, dataset, state, kind…), never run ids, times or SQL.
An OpenLineage job is the label `pipeline`: Prometheus keeps `job` for the scrape job.
"""

from __future__ import annotations

import collections
import importlib
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, and_, func, select

from collector import kpis
from collector.store import reads
from collector.store.prune import removed_totals_of
from collector.store.tables import (
    datasets,
    expectations,
    findings,
    gate_decisions,
    schema_versions,
)
from gates.policy import Policy

log = logging.getLogger(__name__)
disable_created_metrics()  # type: ignore[no-untyped-call]

KPI_WINDOW = "7d"
# Ingestion answers in milliseconds; a big batch can take seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

OUTCOMES = ("stored", "duplicate", "invalid", "forbidden", "failed")
# The answers ingestion gives to bad or unstorable requests, exported at 0 from the start.
ERROR_STATUSES = (400, 401, 403, 413, 415, 422, 500, 503)

StoreState = Callable[[], tuple[Engine, Policy] | None]


class StoreCollector(Collector):
    """Gauges and counters computed from the store at each scrape."""

    def __init__(self, state: StoreState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        current = self.state()
        if current is None:  # not started yet
            return
        engine, policy = current
        try:
            values = kpis.compute(engine, policy, KPI_WINDOW)
            yield from self._store(engine, values)
            yield from _kpi_metrics(values)
        except Exception:
            log.exception("metrics: reading the store failed")
        failures = _parse_failures()
        if failures is not None:
            counter = CounterMetricFamily(
                "pipewarden_sql_parse_failures",
                "Runs whose SQL did not parse, in this collector (and its background process) "
                "since it started.",
            )
            counter.add_metric([], failures)
            yield counter

    def _store(self, engine: Engine, values: kpis.Kpis) -> Iterator[Metric]:
        """Each read bounded by the jobs, datasets and what is open or waiting, never by
        the runs, events or decisions stored."""
        with engine.connect() as c:
            job_names = {row.id: (row.namespace, row.name) for row in reads.all_jobs(c)}
            finished = CounterMetricFamily(
                "pipewarden_runs",
                "Finished runs recorded (retention does not lower it), by job and final state "
                "(completed, failed, aborted).",
                labels=["namespace", "pipeline", "state"],
            )
            finished_counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
            for job_id, state, count in reads.finished_run_counts(c):
                if job_id in job_names:
                    finished_counts[(*job_names[job_id], state.lower())] += count
            for run_labels, count in sorted(finished_counts.items()):
                finished.add_metric(list(run_labels), count)
            active = GaugeMetricFamily(
                "pipewarden_runs_active",
                "Runs started and not finished, by job and state (new, running).",
                labels=["namespace", "pipeline", "state"],
            )
            for job_id, state, count in reads.active_run_counts(c):
                if job_id in job_names:
                    active.add_metric([*job_names[job_id], state.lower()], count)
            yield finished
            yield active

            yield from self._per_job(c, job_names)
            yield from self._rows(c, job_names)

            open_findings = GaugeMetricFamily(
                "pipewarden_findings_open",
                "Open findings, by job, kind and severity.",
                labels=["namespace", "pipeline", "kind", "severity"],
            )
            for row in c.execute(
                select(findings.c.namespace, findings.c.job, findings.c.kind, findings.c.severity)
                .add_columns(func.count())
                .where(findings.c.status == "open")
                .group_by(findings.c.namespace, findings.c.job, findings.c.kind)
                .group_by(findings.c.severity)
            ):
                open_findings.add_metric([row[0], row[1], row[2], row[3]], row[4])
            yield open_findings

            decisions = CounterMetricFamily(
                "pipewarden_gate_decisions",
                "Gate decisions, by job, decision (allow, warn, block, would_block) and mode.",
                labels=["namespace", "pipeline", "decision", "mode"],
            )
            grouped: dict[tuple[str, str, str, str], int] = {}
            stored = c.execute(
                select(
                    gate_decisions.c.namespace,
                    gate_decisions.c.job,
                    gate_decisions.c.decision,
                    gate_decisions.c.mode,
                    func.count(),
                ).group_by(
                    gate_decisions.c.namespace,
                    gate_decisions.c.job,
                    gate_decisions.c.decision,
                    gate_decisions.c.mode,
                )
            )
            pruned_decisions = removed_totals_of(c, "gate_decision")
            for namespace, job, decision, mode, count in chain(stored, pruned_decisions):
                shown = "would_block" if decision == "block" and mode != "enforce" else decision
                key = (namespace, job, shown, mode)
                grouped[key] = grouped.get(key, 0) + count
            for labels, count in sorted(grouped.items()):
                decisions.add_metric(list(labels), count)
            yield decisions
            yield self._reasons(c)

            changes = CounterMetricFamily(
                "pipewarden_schema_changes",
                "Schema versions of a dataset after its first one (retention does not lower it).",
                labels=["namespace", "dataset"],
            )
            pruned = {(ns, name): n for ns, name, _, _, n in removed_totals_of(c, "schema_version")}
            for namespace, name, count in c.execute(
                select(datasets.c.namespace, datasets.c.name, func.count())
                .join(schema_versions, schema_versions.c.dataset_id == datasets.c.id)
                .group_by(datasets.c.id, datasets.c.namespace, datasets.c.name)
            ):
                changes.add_metric([namespace, name], count - 1 + pruned.get((namespace, name), 0))
            yield changes

            waiting = GaugeMetricFamily(
                "pipewarden_runs_awaiting_judgement",
                "Finished runs the detectors have not judged yet (the evaluator's backlog).",
            )
            waiting.add_metric([], reads.count_undetected_runs(c))
            yield waiting
            underived = GaugeMetricFamily(
                "pipewarden_events_awaiting_derivation",
                "Events acknowledged but not derived yet (the writer's backlog).",
            )
            underived.add_metric([], reads.count_pending_events(c))
            yield underived
            jobs_gauge = GaugeMetricFamily("pipewarden_jobs", "Jobs known to the collector.")
            jobs_gauge.add_metric([], len(job_names))
            yield jobs_gauge
            coverage = GaugeMetricFamily(
                "pipewarden_lineage_coverage_ratio",
                "Share of jobs with lineage: level dataset (inputs/outputs) or column.",
                labels=["level"],
            )
            if values.lineage_coverage is not None:
                coverage.add_metric(["dataset"], values.lineage_coverage)
            if values.column_lineage_coverage is not None:
                coverage.add_metric(["column"], values.column_lineage_coverage)
            yield coverage

    def _reasons(self, c: Any) -> Metric:
        reasons = GaugeMetricFamily(
            "pipewarden_gate_reasons",
            f"Reasons gates gave in the last {KPI_WINDOW}, by job, rule and severity.",
            labels=["namespace", "pipeline", "rule", "severity"],
        )
        since = datetime.now(UTC) - kpis.window_of(KPI_WINDOW)
        counted: collections.Counter[tuple[str, str, str, str]] = collections.Counter()
        for namespace, job, given in c.execute(
            select(
                gate_decisions.c.namespace, gate_decisions.c.job, gate_decisions.c.reasons
            ).where(gate_decisions.c.decided_at >= since)
        ):
            counted.update((namespace, job, r["rule"], r["severity"]) for r in given)
        for labels, count in sorted(counted.items()):
            reasons.add_metric(list(labels), count)
        return reasons

    def _per_job(self, c: Any, job_names: dict[int, tuple[str, str]]) -> Iterator[Metric]:
        labels = ["namespace", "pipeline"]
        last = GaugeMetricFamily(
            "pipewarden_job_last_duration_seconds",
            "Duration of the job's latest finished run.",
            labels=labels,
        )
        low = GaugeMetricFamily(
            "pipewarden_job_duration_expected_low_seconds",
            "Low end of the job's expected duration (learned band).",
            labels=labels,
        )
        high = GaugeMetricFamily(
            "pipewarden_job_duration_expected_high_seconds",
            "High end of the job's expected duration (learned band).",
            labels=labels,
        )
        success = GaugeMetricFamily(
            "pipewarden_job_last_success_timestamp_seconds",
            "End time (event time) of the job's latest completed run.",
            labels=labels,
        )
        failure = GaugeMetricFamily(
            "pipewarden_job_last_failure_timestamp_seconds",
            "End time (event time) of the job's latest failed run.",
            labels=labels,
        )
        for row in reads.latest_by_job(c):
            names = job_names.get(row.id)
            if names is None:
                continue
            if row.duration_ms is not None:
                last.add_metric(list(names), row.duration_ms / 1000)
            for at, family in ((row.succeeded_at, success), (row.failed_at, failure)):
                if at is not None:
                    family.add_metric(list(names), at.timestamp())
        for row in c.execute(
            select(expectations.c.job_id, expectations.c.low, expectations.c.high).where(
                expectations.c.metric == "duration",
                expectations.c.dataset_id == 0,
                expectations.c.learning.is_(False),  # no band while it is still learning
            )
        ):
            if row.job_id in job_names:
                low.add_metric(list(job_names[row.job_id]), row.low)
                high.add_metric(list(job_names[row.job_id]), row.high)
        yield from (last, low, high, success, failure)

    def _rows(self, c: Any, job_names: dict[int, tuple[str, str]]) -> Iterator[Metric]:
        labels = ["namespace", "pipeline", "dataset_namespace", "dataset"]
        metrics = {
            "observed": GaugeMetricFamily(
                "pipewarden_dataset_last_rows_written",
                "Rows the job's latest judged run wrote to the dataset.",
                labels=labels,
            ),
            "low": GaugeMetricFamily(
                "pipewarden_dataset_rows_written_expected_low",
                "Low end of the rows the job is expected to write to the dataset.",
                labels=labels,
            ),
            "high": GaugeMetricFamily(
                "pipewarden_dataset_rows_written_expected_high",
                "High end of the rows the job is expected to write to the dataset.",
                labels=labels,
            ),
        }
        for row in c.execute(
            select(
                expectations.c.job_id,
                datasets.c.namespace,
                datasets.c.name,
                expectations.c.observed,
                expectations.c.low,
                expectations.c.high,
                expectations.c.learning,
            ).join(
                datasets,
                and_(datasets.c.id == expectations.c.dataset_id, expectations.c.metric == "rows"),
            )
        ):
            if row.job_id not in job_names:
                continue
            values = [*job_names[row.job_id], row.namespace, row.name]
            if row.observed is not None:
                metrics["observed"].add_metric(values, row.observed)
            if row.learning:
                continue
            metrics["low"].add_metric(values, row.low)
            metrics["high"].add_metric(values, row.high)
        yield from metrics.values()


def _kpi_metrics(values: kpis.Kpis) -> Iterator[Metric]:
    window = [values.window]

    def gauge(name: str, help_text: str, value: float | None) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, help_text, labels=["window"])
        if value is not None:
            family.add_metric(window, value)
        return family

    yield gauge(
        "pipewarden_kpi_task_success_ratio",
        "Completed / finished runs in the window.",
        values.task_success_rate,
    )
    per_job = GaugeMetricFamily(
        "pipewarden_kpi_job_task_success_ratio",
        "Completed / finished runs of each job in the window.",
        labels=["window", "namespace", "pipeline"],
    )
    for (namespace, name), rate in sorted(values.job_success_rates.items()):
        per_job.add_metric([values.window, namespace, name], rate)
    yield per_job
    yield gauge(
        "pipewarden_kpi_mean_time_to_detect_seconds",
        "Mean time from a run's end to its first finding, in the window.",
        values.mean_time_to_detect,
    )
    yield gauge(
        "pipewarden_kpi_time_to_detect_schema_drift_seconds",
        "Mean time from a run's end to the schema drift finding about it, in the window.",
        values.time_to_detect_schema_drift,
    )
    yield gauge(
        "pipewarden_kpi_mean_time_to_recover_seconds",
        "Mean time from the first failure of a streak to the next success, in the window.",
        values.mean_time_to_recover,
    )
    yield gauge(
        "pipewarden_kpi_sla_adherence_ratio",
        "Runs completed within their SLA / expected runs (missed runs count), in the window.",
        values.sla_adherence,
    )
    yield gauge(
        "pipewarden_kpi_lineage_coverage_ratio",
        "Share of jobs whose events carry inputs or outputs.",
        values.lineage_coverage,
    )
    blocked = GaugeMetricFamily(
        "pipewarden_kpi_blocked_runs",
        "Runs blocked (enforce) and would have been blocked (monitor) in the window.",
        labels=["window", "decision"],
    )
    blocked.add_metric([values.window, "block"], values.blocked_runs)
    blocked.add_metric([values.window, "would_block"], values.would_block_runs)
    yield blocked


def _parse_failures() -> int | None:
    """SQL parse failures counted by the lineage parser, when this build has one."""
    try:
        module = importlib.import_module("collector.lineage.parsed")
    except ImportError:
        return None
    count = getattr(module, "parse_failures", None)
    return int(count()) if callable(count) else None


class Metrics:
    """One app's registry: the store collector and the process's own counters."""

    def __init__(self, state: StoreState) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(state))
        self.events = Counter(
            "pipewarden_events_ingested",
            "Events received by this process, by outcome (stored, duplicate, invalid, forbidden, "
            "failed).",
            ["outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "pipewarden_ingest_errors",
            "Ingestion requests answered with an error, by HTTP status code.",
            ["status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pipewarden_ingest_request_duration_seconds",
            "Time to answer an ingestion request, by endpoint (single, batch).",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.spool_deliveries = Counter(
            "pipewarden_spool_deliveries",
            "Events a shim delivered late, from the spool it keeps while the collector is"
            " unreachable, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            self.events.labels(outcome)
            self.spool_deliveries.labels(outcome)
        for status in ERROR_STATUSES:
            self.errors.labels(str(status))

    def count_event(self, outcome: str, spooled: bool) -> None:
        """One event received, and whether it came late from a shim's spool."""
        self.events.labels(outcome).inc()
        if spooled:
            self.spool_deliveries.labels(outcome).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


_lock = threading.Lock()


def metrics_of(app: Any) -> Metrics:
    """The app's metrics, made on first use; the store is read from its running services."""
    found: Metrics | None = getattr(app.state, "metrics", None)
    if found is not None:
        return found
    with _lock:
        found = getattr(app.state, "metrics", None)
        if found is None:

            def state() -> tuple[Engine, Policy] | None:
                services = getattr(app.state, "services", None)
                if services is None:
                    return None
                return services.engine, services.policy.current

            found = Metrics(state)
            app.state.metrics = found
        return found
