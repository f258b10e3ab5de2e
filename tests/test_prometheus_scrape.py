"""A real Prometheus scrapes a real `pipewarden serve` and answers queries on its metrics."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.events import dataset, run_event
from tests.prometheus import DEADLINE, poll, query, running_prometheus
from tests.shim_helpers import Collector, running_collector


def post(collector: Collector, events: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        collector.url + "/api/v1/lineage/batch",
        data=json.dumps(events).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Collector, str]]:
    with running_collector(tmp_path_factory.mktemp("collector")) as collector:
        now = datetime.now(UTC).replace(microsecond=0)
        events = []
        for hours, end in ((5, "COMPLETE"), (4, "FAIL"), (3, "COMPLETE")):
            run_id = str(uuid.uuid4())
            start = now - timedelta(hours=hours)
            out = [dataset("mart.scraped", row_count=100)]
            events += [
                run_event("START", run_id=run_id, job="scraped", event_time=start.isoformat()),
                run_event(
                    end,
                    run_id=run_id,
                    job="scraped",
                    event_time=(start + timedelta(minutes=7)).isoformat(),
                    outputs=out,
                ),
            ]
        post(collector, events)
        target = collector.url.removeprefix("http://")
        with running_prometheus(tmp_path_factory.mktemp("prometheus"), target) as prometheus:
            yield collector, prometheus


def test_prometheus_scrapes_the_runs_from_the_store(stack: tuple[Collector, str]) -> None:
    _, prometheus = stack
    deadline = time.monotonic() + DEADLINE
    result = poll(prometheus, 'pipewarden_runs_total{pipeline="scraped"}', deadline)
    assert result, "no pipewarden_runs_total series within the deadline"
    by_state = {series["metric"]["state"]: float(series["value"][1]) for series in result}
    assert by_state == {"completed": 2.0, "failed": 1.0}
    # The scrape target is healthy and the other families arrive in the same scrape.
    (up,) = query(prometheus, 'up{job="pipewarden"}')
    assert up["value"][1] == "1"
    duration = query(prometheus, 'pipewarden_job_last_duration_seconds{pipeline="scraped"}')
    assert [float(s["value"][1]) for s in duration] == [420.0]
    success = query(prometheus, 'pipewarden_kpi_task_success_ratio{window="7d"}')
    assert float(success[0]["value"][1]) == pytest.approx(2 / 3)
    ingested = query(prometheus, 'pipewarden_events_ingested_total{outcome="stored"}')
    assert float(ingested[0]["value"][1]) == 6.0


def test_a_rate_over_the_ingestion_counter_sees_new_events(stack: tuple[Collector, str]) -> None:
    collector, prometheus = stack
    deadline = time.monotonic() + DEADLINE
    assert poll(prometheus, "pipewarden_events_ingested_total", deadline)
    run_id = str(uuid.uuid4())
    post(collector, [run_event("START", run_id=run_id, job="later")])
    expression = 'increase(pipewarden_events_ingested_total{outcome="stored"}[1m]) > 0'
    assert poll(prometheus, expression, deadline), "the increase never showed"
