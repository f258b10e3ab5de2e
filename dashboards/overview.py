"""Overview: the fleet's health and the KPIs at a glance, optionally one namespace.

Store-derived series are the same on every collector replica, so they are folded with
`max by (...)` before any sum; that keeps the figures right with one replica or several.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.panels import (
    NS,
    Query,
    bars_panel,
    dashboard,
    namespace_variable,
    row,
    series_panel,
    stat_panel,
    table_panel,
)

UID = "pipewarden-overview"


def build() -> Dashboard:
    return (
        dashboard(UID, "pipewarden / Overview", "Fleet health and the KPIs over the last 7 days.")
        .with_variable(namespace_variable(include_all=True))
        .with_row(row(1, "Fleet health"))
        .with_panel(stat_panel(2, "Jobs", "short", Query("max(pipewarden_jobs)")))
        .with_panel(
            stat_panel(
                3,
                "Task success (7d)",
                "percentunit",
                Query("max(pipewarden_kpi_task_success_ratio)"),
                info="Completed / finished runs that ended in the last 7 days.",
            )
        )
        .with_panel(
            stat_panel(
                4,
                "SLA adherence (7d)",
                "percentunit",
                Query("max(pipewarden_kpi_sla_adherence_ratio)"),
                info="Runs completed within their policy SLA / expected runs; missed runs count.",
            )
        )
        .with_panel(
            stat_panel(
                5,
                "Lineage coverage",
                "percentunit",
                Query("max(pipewarden_kpi_lineage_coverage_ratio)"),
                info="Share of jobs whose events carry inputs or outputs.",
            )
        )
        .with_panel(
            stat_panel(
                6,
                "Mean time to detect (7d)",
                "s",
                Query("max(pipewarden_kpi_mean_time_to_detect_seconds)"),
                info="From a run's end (or a missed slot) to its first finding.",
            )
        )
        .with_panel(
            stat_panel(
                7,
                "Mean time to recover (7d)",
                "s",
                Query("max(pipewarden_kpi_mean_time_to_recover_seconds)"),
                info="From the first failure of a streak to the job's next success.",
            )
        )
        .with_panel(
            stat_panel(
                8,
                "Open findings",
                "short",
                Query(
                    "sum(max by (namespace, pipeline, kind, severity) "
                    f"(pipewarden_findings_open{{{NS}}})) or vector(0)"
                ),
            )
        )
        .with_panel(
            stat_panel(
                9,
                "Runs in progress",
                "short",
                Query(
                    "sum(max by (namespace, pipeline, state) "
                    f"(pipewarden_runs_active{{{NS}}})) or vector(0)"
                ),
            )
        )
        .with_row(row(10, "Runs"))
        .with_panel(
            series_panel(
                11,
                "Finished runs by state",
                "short",
                Query(
                    "sum by (state) (max by (namespace, pipeline, state) "
                    f"(increase(pipewarden_runs_total{{{NS}}}[$__rate_interval])))",
                    "{{state}}",
                ),
            )
        )
        .with_panel(
            bars_panel(
                12,
                "Task success by job (7d)",
                "percentunit",
                Query(
                    f"max by (namespace, pipeline) (pipewarden_kpi_job_task_success_ratio{{{NS}}})",
                    "{{namespace}} / {{pipeline}}",
                ),
            )
        )
        .with_panel(
            table_panel(
                13,
                "Time since last success",
                "s",
                Query(
                    "time() - max by (namespace, pipeline) "
                    f"(pipewarden_job_last_success_timestamp_seconds{{{NS}}})"
                ),
                info="Wall time since the end (event time) of each job's latest completed run.",
            )
        )
        .with_panel(
            table_panel(
                14,
                "Latest run duration",
                "s",
                Query(
                    f"max by (namespace, pipeline) (pipewarden_job_last_duration_seconds{{{NS}}})"
                ),
            )
        )
        .with_row(row(15, "Findings and gates"))
        .with_panel(
            series_panel(
                16,
                "Open findings by kind",
                "short",
                Query(
                    "sum by (kind) (max by (namespace, pipeline, kind, severity) "
                    f"(pipewarden_findings_open{{{NS}}}))",
                    "{{kind}}",
                ),
            )
        )
        .with_panel(
            series_panel(
                17,
                "Gate decisions",
                "short",
                Query(
                    "sum by (decision) (max by (namespace, pipeline, decision, mode) "
                    f"(increase(pipewarden_gate_decisions_total{{{NS}}}[$__rate_interval])))",
                    "{{decision}}",
                ),
                info="Decisions per interval; would_block is a block in monitor mode.",
            )
        )
    )
