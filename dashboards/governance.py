"""Governance: readiness to enforce, gate decisions and their reasons, schema changes, lineage
coverage.

Gate series carry the job's namespace; schema changes carry the dataset's namespace, so the
`namespace` variable filters the job panels only.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.panels import (
    HALF,
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

UID = "pipewarden-governance"
DECISIONS = "pipewarden_gate_decisions_total"


def build() -> Dashboard:
    return (
        dashboard(
            UID,
            "pipewarden / Governance",
            "Is it safe to enforce? Gate decisions, schema changes and lineage coverage.",
        )
        .with_variable(namespace_variable(include_all=True))
        .with_row(row(1, "Readiness to enforce"))
        .with_panel(
            stat_panel(
                2,
                "Would have blocked (7d)",
                "short",
                Query('max(pipewarden_kpi_blocked_runs{decision="would_block"})'),
                info="Runs a gate in monitor mode let through that enforce mode would block.",
            )
        )
        .with_panel(
            stat_panel(
                3,
                "Blocked (7d)",
                "short",
                Query('max(pipewarden_kpi_blocked_runs{decision="block"})'),
                info="Runs blocked by a gate in enforce mode.",
            )
        )
        .with_panel(
            series_panel(
                4,
                "Gate decisions by decision and mode",
                "short",
                Query(
                    "sum by (decision, mode) (max by (namespace, pipeline, decision, mode) "
                    f"(increase({DECISIONS}{{{NS}}}[$__rate_interval])))",
                    "{{decision}} ({{mode}})",
                ),
            )
        )
        .with_panel(
            series_panel(
                5,
                "Monitor-mode decisions by job",
                "short",
                Query(
                    "max by (namespace, pipeline, decision) "
                    f'(increase({DECISIONS}{{{NS}, mode="monitor"}}[$__rate_interval]))',
                    "{{pipeline}}: {{decision}}",
                ),
                width=HALF,
                info="A job is ready to enforce when its would_block decisions are the ones "
                "you want to stop.",
            )
        )
        .with_panel(
            bars_panel(
                13,
                "Policy reasons by rule (7d)",
                "short",
                Query(
                    "sum by (rule, severity) (max by (namespace, pipeline, rule, severity) "
                    f"(pipewarden_gate_reasons{{{NS}}}))",
                    "{{rule}} ({{severity}})",
                ),
                info="Why the gates warned or blocked: reasons given in the last 7 days.",
            )
        )
        .with_panel(
            table_panel(
                14,
                "Policy reasons by job (7d)",
                "short",
                Query(
                    "max by (namespace, pipeline, rule, severity) "
                    f"(pipewarden_gate_reasons{{{NS}}})"
                ),
            )
        )
        .with_row(row(6, "Schema changes"))
        .with_panel(
            series_panel(
                7,
                "Schema changes by dataset",
                "short",
                Query(
                    "max by (namespace, dataset) "
                    "(increase(pipewarden_schema_changes_total[$__rate_interval]))",
                    "{{namespace}} / {{dataset}}",
                ),
                info="New schema versions per interval, every dataset (datasets have their "
                "own namespaces).",
            )
        )
        .with_panel(
            stat_panel(
                8,
                "Time to detect schema drift (7d)",
                "s",
                Query("max(pipewarden_kpi_time_to_detect_schema_drift_seconds)"),
            )
        )
        .with_panel(
            stat_panel(
                9,
                "Open schema drift findings",
                "short",
                Query(
                    "sum(max by (namespace, pipeline, severity) "
                    f'(pipewarden_findings_open{{{NS}, kind="schema_drift"}})) or vector(0)'
                ),
            )
        )
        .with_row(row(10, "Lineage coverage"))
        .with_panel(
            stat_panel(
                11,
                "Lineage coverage by level",
                "percentunit",
                Query("max by (level) (pipewarden_lineage_coverage_ratio)", "{{level}}"),
                width=HALF,
                info="Share of jobs with dataset lineage (inputs/outputs) and column lineage.",
            )
        )
        .with_panel(
            series_panel(
                12,
                "Lineage coverage over time",
                "percentunit",
                Query("max by (level) (pipewarden_lineage_coverage_ratio)", "{{level}}"),
            )
        )
    )
