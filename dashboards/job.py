"""Job detail: one job's duration and rows against their learned bands, findings, gates.

The `job` variable selects the `pipeline` label (Prometheus keeps `job` for the scrape job).
The bands are absent while a job is still learning its normal range.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.panels import (
    FULL,
    NS,
    RUNS,
    Query,
    dashboard,
    label_variable,
    namespace_variable,
    row,
    series_panel,
    shade_band,
    stat_panel,
    table_panel,
)

UID = "pipewarden-job"
JOB = f'{NS}, pipeline=~"$job"'


def build() -> Dashboard:
    return (
        dashboard(UID, "pipewarden / Job detail", "One job: its runs against what is expected.")
        .with_variable(namespace_variable(include_all=False))
        .with_variable(
            label_variable(
                "job",
                "Job",
                f"label_values({RUNS}{{{NS}}}, pipeline)",
                include_all=False,
            )
        )
        .with_row(row(1, "Now"))
        .with_panel(
            stat_panel(
                2,
                "Latest run duration",
                "s",
                Query(f"max(pipewarden_job_last_duration_seconds{{{JOB}}})"),
            )
        )
        .with_panel(
            stat_panel(
                3,
                "Last success",
                "dateTimeFromNow",
                Query(f"max(pipewarden_job_last_success_timestamp_seconds{{{JOB}}}) * 1000"),
                info="End (event time) of the latest completed run.",
            )
        )
        .with_panel(
            stat_panel(
                4,
                "Task success (7d)",
                "percentunit",
                Query(f"max(pipewarden_kpi_job_task_success_ratio{{{JOB}}})"),
            )
        )
        .with_panel(
            stat_panel(
                5,
                "Runs in progress",
                "short",
                Query(f"sum(max by (state) (pipewarden_runs_active{{{JOB}}})) or vector(0)"),
            )
        )
        .with_row(row(6, "Duration and rows against their expected bands"))
        .with_panel(
            shade_band(
                series_panel(
                    7,
                    "Duration and expected band",
                    "s",
                    Query(f"max(pipewarden_job_last_duration_seconds{{{JOB}}})", "latest run"),
                    Query(
                        f"max(pipewarden_job_duration_expected_low_seconds{{{JOB}}})",
                        "expected low",
                    ),
                    Query(
                        f"max(pipewarden_job_duration_expected_high_seconds{{{JOB}}})",
                        "expected high",
                    ),
                ),
                "expected low",
                "expected high",
            )
        )
        .with_panel(
            series_panel(
                8,
                "Rows written and expected band",
                "short",
                Query(
                    f"max by (dataset) (pipewarden_dataset_last_rows_written{{{JOB}}})",
                    "{{dataset}}",
                ),
                Query(
                    f"max by (dataset) (pipewarden_dataset_rows_written_expected_low{{{JOB}}})",
                    "{{dataset}} expected low",
                ),
                Query(
                    f"max by (dataset) (pipewarden_dataset_rows_written_expected_high{{{JOB}}})",
                    "{{dataset}} expected high",
                ),
            )
        )
        .with_row(row(9, "Runs, findings and gates"))
        .with_panel(
            series_panel(
                10,
                "Finished runs by state",
                "short",
                Query(
                    f"max by (state) (increase(pipewarden_runs_total{{{JOB}}}[$__rate_interval]))",
                    "{{state}}",
                ),
            )
        )
        .with_panel(
            table_panel(
                11,
                "Open findings",
                "short",
                Query(f"max by (kind, severity) (pipewarden_findings_open{{{JOB}}})"),
            )
        )
        .with_panel(
            series_panel(
                12,
                "Gate history",
                "short",
                Query(
                    "max by (decision, mode) "
                    f"(increase(pipewarden_gate_decisions_total{{{JOB}}}[$__rate_interval]))",
                    "{{decision}} ({{mode}})",
                ),
                width=FULL,
                info="Gate decisions per interval; would_block is a block in monitor mode.",
            )
        )
    )
