"""Prometheus recording and alerting rules for pipewarden, as data.

Alerts follow state the collector exposes, so each fires while its condition holds and
resolves by itself: a job is failing while its latest failure is later than its latest
success; a finding is open until a later run shows it is over (see README, Findings).
Only "a run was blocked" is an event, alerted for the window after it happened.
`tests/dashboards/rules.test.yaml` holds the `promtool test rules` cases.
"""

from __future__ import annotations

from typing import Any

import yaml

# The same scrape job name the README's scrape config uses.
SCRAPE_JOB = "pipewarden"
PIPELINE = "namespace, pipeline"


def _one(series: str) -> str:
    """Store-derived series once, however many replicas expose them (they agree)."""
    return f"max without (instance) ({series})"


FAILED_AT = f"max by ({PIPELINE}) (pipewarden_job_last_failure_timestamp_seconds)"
SUCCEEDED_AT = f"max by ({PIPELINE}) (pipewarden_job_last_success_timestamp_seconds)"
MISSED = _one('pipewarden_findings_open{kind="freshness"}')
CRITICAL = _one('pipewarden_findings_open{severity="critical"}')
BLOCKED = _one('increase(pipewarden_gate_decisions_total{decision="block",mode="enforce"}[15m])')

RECORDING: tuple[tuple[str, str], ...] = (
    (
        # Each job whose latest finished run failed (never succeeded, or failed since); the
        # value is the time of that failure.
        "pipewarden:job_failing",
        f"({FAILED_AT} > {SUCCEEDED_AT}) or ({FAILED_AT} unless {SUCCEEDED_AT})",
    ),
    (
        "pipewarden:job_since_last_success_seconds",
        f"time() - {SUCCEEDED_AT}",
    ),
    (
        "pipewarden:events_ingested:rate5m",
        "sum by (outcome) (rate(pipewarden_events_ingested_total[5m]))",
    ),
    (
        "pipewarden:ingest_request_duration_seconds:p99_5m",
        "histogram_quantile(0.99, sum by (le, endpoint)"
        " (rate(pipewarden_ingest_request_duration_seconds_bucket[5m])))",
    ),
    (
        "pipewarden:gate_decisions:increase1h",
        f"sum by ({PIPELINE}, decision, mode)"
        f" ({_one('increase(pipewarden_gate_decisions_total[1h])')})",
    ),
)


def _alert(
    name: str, expr: str, duration: str, severity: str, summary: str, description: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }


ALERTS: tuple[dict[str, Any], ...] = (
    _alert(
        "PipewardenJobFailing",
        "pipewarden:job_failing",
        "0m",
        "critical",
        "{{ $labels.namespace }}/{{ $labels.pipeline }} is failing",
        "The latest finished run of {{ $labels.namespace }}/{{ $labels.pipeline }} failed"
        " and it has not succeeded since.",
    ),
    _alert(
        "PipewardenMissedRun",
        f"sum by ({PIPELINE}) ({MISSED}) > 0",
        "0m",
        "warning",
        "{{ $labels.namespace }}/{{ $labels.pipeline }} missed a run",
        "{{ $labels.namespace }}/{{ $labels.pipeline }} has {{ $value }} expected run(s)"
        " that did not happen (schedule and grace from the policy, else its learned cadence).",
    ),
    _alert(
        "PipewardenHighSeverityFinding",
        f"sum by ({PIPELINE}, kind) ({CRITICAL}) > 0",
        "0m",
        "critical",
        "{{ $labels.namespace }}/{{ $labels.pipeline }}: open critical {{ $labels.kind }} finding",
        "{{ $labels.namespace }}/{{ $labels.pipeline }} has {{ $value }} open critical"
        " {{ $labels.kind }} finding(s): GET /api/v1/findings?status=open&kind={{ $labels.kind }}",
    ),
    _alert(
        "PipewardenRunBlocked",
        f"sum by ({PIPELINE}) ({BLOCKED}) > 0",
        "0m",
        "warning",
        "a run of {{ $labels.namespace }}/{{ $labels.pipeline }} was blocked by its gate",
        "The enforced gate of {{ $labels.namespace }}/{{ $labels.pipeline }} stopped a run in"
        " the last 15 minutes: GET /api/v1/gates/{{ $labels.namespace }}/{{ $labels.pipeline }}",
    ),
    _alert(
        "PipewardenCollectorDown",
        f'up{{job="{SCRAPE_JOB}"}} == 0',
        "5m",
        "critical",
        "pipewarden collector {{ $labels.instance }} is down",
        "Prometheus has not scraped {{ $labels.instance }} for 5 minutes; shims spool their"
        " events meanwhile and deliver them later.",
    ),
    _alert(
        "PipewardenNotIngesting",
        'sum(rate(pipewarden_events_ingested_total{outcome="stored"}[30m])) == 0'
        " and max(pipewarden_jobs) > 0",
        "30m",
        "warning",
        "pipewarden has stored no event for an hour",
        "No collector has stored an event in the last hour although jobs are known: check that"
        " the pipelines still reach it (OPENLINEAGE_URL / PIPEWARDEN_URL).",
    ),
    _alert(
        "PipewardenIngestFailing",
        'sum(rate(pipewarden_events_ingested_total{outcome="failed"}[5m])) > 0',
        "5m",
        "critical",
        "pipewarden cannot store events",
        "Events are being refused with a store error for 5 minutes: check the database.",
    ),
)


def rule_groups() -> dict[str, Any]:
    """The rules file's content: one recording group, one alerting group."""
    return {
        "groups": [
            {
                "name": "pipewarden.rules",
                "rules": [{"record": name, "expr": expr} for name, expr in RECORDING],
            },
            {"name": "pipewarden.alerts", "rules": list(ALERTS)},
        ]
    }


def rules_yaml() -> str:
    """The rules file, as `pipewarden dashboards build` writes it."""
    header = "# Generated by `pipewarden dashboards build` from dashboards/rules.py; do not edit.\n"
    return header + yaml.safe_dump(rule_groups(), sort_keys=False, width=100)
