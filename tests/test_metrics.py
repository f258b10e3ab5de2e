"""`GET /metrics`: the store's state and the process's own counters, on a fresh app per test."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from collector.api.app import create_app
from collector.settings import Settings
from tests.events import dataset, facet, run_event
from tests.prometheus import tool
from tests.settled import SettledClient

PG = "postgres://db.example:5432"
NOW = datetime.now(UTC).replace(microsecond=0)
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]
Start = Callable[[str], TestClient]


@pytest.fixture
def start(database_url: str, tmp_path: Path) -> Iterator[Start]:
    """A fresh collector with the given policy text (finished runs are judged as they come)."""
    started: list[TestClient] = []

    def make(policy: str = "") -> TestClient:
        policy_file = tmp_path / "pipewarden.toml"
        policy_file.write_text(policy)
        settings = Settings(
            database_url=database_url, policy=str(policy_file), evaluator_interval=3600
        )
        client = SettledClient(create_app(settings))
        client.__enter__()
        started.append(client)
        return client

    yield make
    for client in started:
        client.__exit__(None, None, None)


def scrape(client: TestClient) -> Series:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    series: Series = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            series[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return series


def value(series: Series, name: str, **labels: str) -> float | None:
    return series.get((name, frozenset(labels.items())))


def wait_for(client: TestClient, check: Callable[[Series], bool], timeout: float = 15) -> Series:
    deadline = time.monotonic() + timeout
    while True:
        series = scrape(client)
        if check(series) or time.monotonic() > deadline:
            return series
        time.sleep(0.1)


def run(
    job: str,
    start: datetime,
    minutes: float,
    *,
    end: str = "COMPLETE",
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    run_id = str(uuid.uuid4())
    finish = start + timedelta(minutes=minutes)
    return [
        run_event("START", run_id=run_id, job=job, event_time=start.isoformat(), inputs=inputs),
        run_event(
            end,
            run_id=run_id,
            job=job,
            event_time=finish.isoformat(),
            inputs=inputs,
            outputs=outputs,
        ),
    ]


def post_batch(client: TestClient, events: list[dict[str, Any]]) -> None:
    response = client.post("/api/v1/lineage/batch", json=events)
    assert response.status_code == 200, response.text


def daily_history(days: int, job: str = "daily") -> list[dict[str, Any]]:
    """A steady daily job ending yesterday: 10 to 12 minutes, about 1,000 rows."""
    first = NOW - timedelta(days=days)
    events = []
    for day in range(days):
        rows = 1000 + 10 * (day % 5)
        output = [dataset("mart.daily", PG, row_count=rows)]
        events += run(job, first + timedelta(days=day), 10 + day % 3, outputs=output)
    return events


def test_runs_durations_bands_and_rows_are_read_from_the_store(start: Start) -> None:
    client = start()
    history = daily_history(21)
    post_batch(client, history)
    last_end = datetime.fromisoformat(history[-1]["eventTime"])
    job = {"namespace": "shop", "pipeline": "daily"}
    rows = job | {"dataset_namespace": PG, "dataset": "mart.daily"}
    series = wait_for(
        client,
        # Detection judges the runs in the background: wait for the latest one.
        lambda s: (
            value(s, "pipewarden_dataset_last_rows_written", **rows) == 1000
            and value(s, "pipewarden_dataset_rows_written_expected_high", **rows) is not None
        ),
    )
    assert value(series, "pipewarden_runs_total", **job, state="completed") == 21
    assert value(series, "pipewarden_job_last_duration_seconds", **job) == (10 + 20 % 3) * 60
    assert value(series, "pipewarden_job_last_success_timestamp_seconds", **job) == (
        last_end.timestamp()
    )
    low = value(series, "pipewarden_job_duration_expected_low_seconds", **job)
    high = value(series, "pipewarden_job_duration_expected_high_seconds", **job)
    assert low is not None
    assert high is not None
    assert low <= 10 * 60
    assert high >= 12 * 60
    assert value(series, "pipewarden_dataset_last_rows_written", **rows) == 1000 + 10 * (20 % 5)
    rows_low = value(series, "pipewarden_dataset_rows_written_expected_low", **rows)
    rows_high = value(series, "pipewarden_dataset_rows_written_expected_high", **rows)
    assert rows_low is not None
    assert rows_high is not None
    assert rows_low <= 1000
    assert rows_high >= 1040
    assert value(series, "pipewarden_jobs") == 1
    assert value(series, "pipewarden_lineage_coverage_ratio", level="dataset") == 1
    assert value(series, "pipewarden_lineage_coverage_ratio", level="column") == 0
    # The KPIs over the last 7 days: 7 runs, all completed.
    assert value(series, "pipewarden_kpi_task_success_ratio", window="7d") == 1
    assert value(series, "pipewarden_kpi_lineage_coverage_ratio", window="7d") == 1
    assert value(series, "pipewarden_kpi_sla_adherence_ratio", window="7d") is None


def test_ingestion_counts_outcomes_errors_and_latency(start: Start) -> None:
    client = start()
    events = run("counted", NOW - timedelta(hours=1), 5)
    assert client.post("/api/v1/lineage", json=events[0]).status_code == 201
    assert client.post("/api/v1/lineage", json=events[0]).status_code == 201  # duplicate
    invalid = dict(events[1], eventTime="yesterday")
    assert client.post("/api/v1/lineage", json=invalid).status_code == 422
    assert client.post("/api/v1/lineage", content=b"{not json").status_code == 400
    post_batch(client, [events[1], {"eventTime": 1}])
    series = scrape(client)
    assert value(series, "pipewarden_events_ingested_total", outcome="stored") == 2
    assert value(series, "pipewarden_events_ingested_total", outcome="duplicate") == 1
    assert value(series, "pipewarden_events_ingested_total", outcome="invalid") == 2
    assert value(series, "pipewarden_events_ingested_total", outcome="failed") == 0
    assert value(series, "pipewarden_ingest_errors_total", status="422") == 1
    assert value(series, "pipewarden_ingest_errors_total", status="400") == 1
    count = "pipewarden_ingest_request_duration_seconds_count"
    assert value(series, count, endpoint="single") == 4
    assert value(series, count, endpoint="batch") == 1
    bucket = "pipewarden_ingest_request_duration_seconds_bucket"
    assert value(series, bucket, endpoint="single", le="+Inf") == 4
    # Only a scrape's reads: /metrics itself is not timed as ingestion.
    assert value(scrape(client), count, endpoint="single") == 4
    counted = {"namespace": "shop", "pipeline": "counted"}
    assert value(series, "pipewarden_runs_active", **counted, state="running") is None


def test_open_findings_and_the_failure_kpis(start: Start) -> None:
    client = start()
    first = NOW - timedelta(days=6)
    ends = ["COMPLETE"] * 3 + ["FAIL", "FAIL", "COMPLETE", "FAIL", "FAIL"]
    events = []
    for number, end in enumerate(ends):  # every 18 hours; a failure takes 2 min, a success 5
        events += run(
            "flaky", first + timedelta(hours=18 * number), 5 if end == "COMPLETE" else 2, end=end
        )
    post_batch(client, events)
    failure = {"namespace": "shop", "pipeline": "flaky", "kind": "failure"}
    series = wait_for(
        client,
        lambda s: any(
            name == "pipewarden_findings_open" and failure.items() <= dict(labels).items()
            for name, labels in s
        ),
    )
    open_failures = [
        v
        for (name, labels), v in series.items()
        if name == "pipewarden_findings_open" and failure.items() <= dict(labels).items()
    ]
    assert sum(open_failures) == 1  # the first streak ended with a success; the second is open
    flaky = {"namespace": "shop", "pipeline": "flaky"}
    assert value(series, "pipewarden_runs_total", **flaky, state="failed") == 4
    last_success = first + timedelta(hours=18 * 5, minutes=5)
    last_failure = first + timedelta(hours=18 * 7, minutes=2)
    success_at = value(series, "pipewarden_job_last_success_timestamp_seconds", **flaky)
    failure_at = value(series, "pipewarden_job_last_failure_timestamp_seconds", **flaky)
    assert (success_at, failure_at) == (last_success.timestamp(), last_failure.timestamp())
    assert value(series, "pipewarden_kpi_task_success_ratio", window="7d") == pytest.approx(4 / 8)
    job_rate = value(series, "pipewarden_kpi_job_task_success_ratio", window="7d", **flaky)
    assert job_rate == pytest.approx(4 / 8)
    recover = value(series, "pipewarden_kpi_mean_time_to_recover_seconds", window="7d")
    assert recover == pytest.approx(36 * 3600 + 3 * 60)  # first FAIL end to the next COMPLETE end
    detect = value(series, "pipewarden_kpi_mean_time_to_detect_seconds", window="7d")
    assert detect is not None
    assert detect > 0


def test_gate_decisions_by_decision_and_mode(start: Start) -> None:
    client = start(
        '[defaults]\nmode = "monitor"\n\n[[job]]\nname = "*"\nowner = "data-eng"\n\n'
        '[[job]]\nname = "strict_*"\nmode = "enforce"\n'
    )
    checks = facet(
        "DataQualityAssertionsDatasetFacet",
        assertions=[{"assertion": "not_null", "column": "email", "success": False}],
    )
    post_batch(
        client,
        run(
            "load_users",
            NOW - timedelta(hours=3),
            5,
            outputs=[dataset("crm.users", PG, dataQualityAssertions=checks)],
        ),
    )
    reads = [dataset("crm.users", PG)]
    post_batch(client, run("export_users", NOW - timedelta(hours=2), 5, inputs=reads))
    post_batch(client, run("strict_export", NOW - timedelta(hours=2), 5, inputs=reads))
    for job in ("export_users", "export_users", "strict_export", "new_job"):
        assert client.get(f"/api/v1/gates/shop/{job}").status_code == 200
    series = scrape(client)

    def decided(job: str, decision: str, mode: str) -> float | None:
        labels = {"namespace": "shop", "pipeline": job, "decision": decision, "mode": mode}
        return value(series, "pipewarden_gate_decisions_total", **labels)

    assert decided("export_users", "would_block", "monitor") == 2
    assert decided("strict_export", "block", "enforce") == 1
    assert decided("new_job", "allow", "monitor") == 1
    assert value(series, "pipewarden_kpi_blocked_runs", window="7d", decision="block") == 1
    assert value(series, "pipewarden_kpi_blocked_runs", window="7d", decision="would_block") == 2
    reasons = {
        (labels["pipeline"], labels["rule"], labels["severity"]): count
        for (name, frozen), count in series.items()
        if name == "pipewarden_gate_reasons"
        for labels in [dict(frozen)]
    }
    assert reasons[("export_users", "failed_quality", "block")] == 2
    assert reasons[("strict_export", "failed_quality", "block")] == 1
    assert ("new_job", "failed_quality", "block") not in reasons


def test_schema_changes_count_versions_after_the_first(start: Start) -> None:
    client = start()
    for day, fields in enumerate(
        [[("id", "int")], [("id", "int")], [("id", "int"), ("email", "text")], [("id", "text")]]
    ):
        post_batch(
            client,
            run(
                "users",
                NOW - timedelta(days=4 - day),
                5,
                outputs=[dataset("crm.users", PG, fields=fields)],
            ),
        )
    series = scrape(client)
    assert value(series, "pipewarden_schema_changes_total", namespace=PG, dataset="crm.users") == 2


def test_each_app_has_its_own_registry(start: Start) -> None:
    first, second = start(), start()
    post_batch(first, run("one", NOW - timedelta(hours=1), 5))
    assert value(scrape(first), "pipewarden_events_ingested_total", outcome="stored") == 2
    assert value(scrape(second), "pipewarden_events_ingested_total", outcome="stored") == 0
    names = {m.name for m in prometheus_client.REGISTRY.collect()}
    assert not [name for name in names if name.startswith("pipewarden")]
    assert not [key for key in scrape(first) if key[0].endswith("_created")]


def test_promtool_finds_nothing_to_lint(start: Start) -> None:
    client = start('[[job]]\nname = "*"\nsla = "1h"\n')
    post_batch(client, daily_history(15, job="linted"))
    post_batch(client, run("linted", NOW - timedelta(hours=2), 90, end="FAIL"))
    client.post("/api/v1/lineage", content=b"[")
    client.get("/api/v1/gates/shop/linted")
    exposition = client.get("/metrics").text
    assert "pipewarden_kpi_sla_adherence_ratio{" in exposition
    checked = subprocess.run(
        [tool("promtool"), "check", "metrics"],
        input=exposition.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert checked.stdout.decode().strip() == ""
    assert checked.stderr.decode().strip() == ""


def test_sql_parse_failures_are_counted(start: Start) -> None:
    client = start()
    before = value(scrape(client), "pipewarden_sql_parse_failures_total")
    assert before is not None  # counted since the process started, by every app in it
    broken = {"sql": facet("SQLJobFacet", query="INSERT INTO t\nSELECT (a FROM s;")}
    run_id = str(uuid.uuid4())
    at = NOW - timedelta(hours=1)
    post_batch(
        client,
        [
            run_event(kind, run_id=run_id, job="broken_sql", event_time=t.isoformat(),
                      outputs=[dataset("t", PG)], job_facets=broken)
            for kind, t in (("START", at), ("COMPLETE", at + timedelta(minutes=1)))
        ],
    )  # fmt: skip
    series = wait_for(
        client, lambda s: (value(s, "pipewarden_sql_parse_failures_total") or 0) > before
    )
    assert (value(series, "pipewarden_sql_parse_failures_total") or 0) >= before + 1
