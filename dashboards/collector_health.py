"""Collector health: what each collector process ingested, its errors and its latency.

These counters are per process, so they are summed across replicas.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.panels import Query, dashboard, row, series_panel, stat_panel

UID = "pipewarden-collector"
EVENTS = "pipewarden_events_ingested_total"
LATENCY = "pipewarden_ingest_request_duration_seconds"


def build() -> Dashboard:
    return (
        dashboard(UID, "pipewarden / Collector health", "Ingestion by the collector processes.")
        .with_row(row(1, "Ingestion"))
        .with_panel(
            stat_panel(
                2,
                "Collectors reporting",
                "short",
                Query("count(pipewarden_jobs)"),
                info="Collector processes Prometheus scraped successfully.",
            )
        )
        .with_panel(
            stat_panel(
                3,
                "Events stored per second",
                "ops",
                Query(f'sum(rate({EVENTS}{{outcome="stored"}}[$__rate_interval]))'),
            )
        )
        .with_panel(
            series_panel(
                4,
                "Events received by outcome",
                "ops",
                Query(f"sum by (outcome) (rate({EVENTS}[$__rate_interval]))", "{{outcome}}"),
            )
        )
        .with_panel(
            series_panel(
                5,
                "Events received by collector",
                "ops",
                Query(f"sum by (instance) (rate({EVENTS}[$__rate_interval]))", "{{instance}}"),
            )
        )
        .with_row(row(6, "Requests"))
        .with_panel(
            series_panel(
                7,
                "Ingestion requests by endpoint",
                "reqps",
                Query(
                    f"sum by (endpoint) (rate({LATENCY}_count[$__rate_interval]))", "{{endpoint}}"
                ),
            )
        )
        .with_panel(
            series_panel(
                8,
                "Ingestion latency",
                "s",
                *(
                    Query(
                        f"histogram_quantile({q}, sum by (le, endpoint) "
                        f"(rate({LATENCY}_bucket[$__rate_interval])))",
                        f"p{round(q * 100)} {{{{endpoint}}}}",
                    )
                    for q in (0.5, 0.95, 0.99)
                ),
            )
        )
        .with_panel(
            series_panel(
                9,
                "Ingestion errors by status",
                "reqps",
                Query(
                    "sum by (status) (rate(pipewarden_ingest_errors_total[$__rate_interval]))",
                    "{{status}}",
                ),
                info="Requests answered with an error; no data means none.",
            )
        )
        .with_panel(
            series_panel(
                10,
                "SQL parse failures",
                "ops",
                Query("sum(rate(pipewarden_sql_parse_failures_total[$__rate_interval]))"),
                info="Runs whose SQL did not parse: their column lineage is missing.",
            )
        )
    )
