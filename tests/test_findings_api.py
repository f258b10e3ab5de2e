"""Findings through the API: detectors run on stored history after each finished run."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from collector.api.app import create_app
from collector.settings import Settings
from tests.events import dataset, facet, run_event
from tests.settled import SettledClient

PG = "postgres://db.example:5432"
FIRST = datetime(2024, 3, 4, 2, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    # Finished runs are judged as they arrive; the time-driven checks are ticked by the tests.
    settings = Settings(database_url=database_url, evaluator_interval=3600)
    with SettledClient(create_app(settings)) as test_client:
        yield test_client


def _daily_run(
    day: int, minutes: float, rows: int | None = 1000, end: str = "COMPLETE", job: str = "daily"
) -> list[dict[str, Any]]:
    """START and end events of one run of a daily job at 02:00, `day` days after FIRST."""
    run_id = str(uuid.uuid4())
    start = FIRST + timedelta(days=day)
    finish = start + timedelta(minutes=minutes)
    output = (
        dataset("mart.daily", PG, row_count=rows) if rows is not None else dataset("mart.daily", PG)
    )
    return [
        run_event(
            "START",
            run_id=run_id,
            job=job,
            event_time=start.isoformat(),
            outputs=[dataset("mart.daily", PG)],
        ),
        run_event(end, run_id=run_id, job=job, event_time=finish.isoformat(), outputs=[output]),
    ]


def _history(days: int) -> list[dict[str, Any]]:
    """A steady daily job: 10 to 12 minutes, about 1,000 rows."""
    events = []
    for day in range(days):
        events += _daily_run(day, 10 + (day % 3), 1000 + 10 * (day % 5))
    return events


def _post_all(client: TestClient, events: list[dict[str, Any]]) -> None:
    response = client.post("/api/v1/lineage/batch", json=events)
    assert response.status_code == 200
    assert {r["status"] for r in response.json()["results"]} == {"stored"}


def _findings(client: TestClient, expect: int, **params: str) -> list[dict[str, Any]]:
    """Findings once the evaluator has judged everything (at least `expect` of them)."""
    deadline = time.monotonic() + 15
    while True:
        found: list[dict[str, Any]] = client.get("/api/v1/findings", params=params).json()[
            "findings"
        ]
        if len(found) >= expect or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_runtime_spike_is_found_with_a_readable_expected_range(client: TestClient) -> None:
    _post_all(client, _history(21))
    spike = _daily_run(21, 55)
    _post_all(client, spike)
    (finding,) = _findings(client, 1, kind="runtime")
    assert finding["runId"] == spike[0]["run"]["runId"]
    assert finding["observed"] == pytest.approx(55 * 60)
    assert finding["expectedLow"] < 10 * 60 <= 12 * 60 < finding["expectedHigh"] < 55 * 60
    assert finding["message"].startswith("ran 55 min, expected ")
    assert datetime.fromisoformat(finding["eventTime"]) == FIRST + timedelta(days=21)
    assert finding["status"] == "open"


def test_a_steady_job_has_no_findings(client: TestClient) -> None:
    _post_all(client, _history(21))
    time.sleep(1.0)
    assert _findings(client, 0) == []


def test_zero_rows_after_a_steady_history_is_a_volume_finding(client: TestClient) -> None:
    _post_all(client, _history(15))
    _post_all(client, _daily_run(15, 11, rows=0))
    (finding,) = _findings(client, 1, kind="volume")
    assert finding["dataset"] == {"namespace": PG, "name": "mart.daily"}
    assert finding["observed"] == 0
    assert finding["severity"] == "critical"


def test_consecutive_failures_are_a_failure_streak(client: TestClient) -> None:
    _post_all(client, _history(5) + _daily_run(5, 3, None, "FAIL") + _daily_run(6, 3, None, "FAIL"))
    (finding,) = _findings(client, 1, kind="failure")
    assert finding["message"].startswith("failed 2 runs in a row")


def test_a_missed_day_is_found_when_the_next_run_arrives(client: TestClient) -> None:
    events = _history(21)
    events += _daily_run(22, 11)  # day 21 never ran
    _post_all(client, events)
    (finding,) = _findings(client, 1, kind="freshness")
    assert finding["runId"] is None
    assert finding["status"] == "resolved"  # the job has run since: nothing is missing now
    expected_at = datetime.fromisoformat(finding["eventTime"])
    assert abs(expected_at - (FIRST + timedelta(days=21))) < timedelta(hours=2)


def test_a_later_normal_run_resolves_a_runtime_spike_and_a_volume_drop(
    client: TestClient,
) -> None:
    _post_all(client, _history(21) + _daily_run(21, 55, rows=0))
    spike, drop = _findings(client, 1, kind="runtime") + _findings(client, 1, kind="volume")
    assert (spike["status"], drop["status"]) == ("open", "open")
    _post_all(client, _daily_run(22, 11))
    resolved = _findings(client, 2, status="resolved")
    assert {f["id"] for f in resolved} == {spike["id"], drop["id"]}


def test_a_second_spike_keeps_the_first_open_and_a_success_ends_a_failure_streak(
    client: TestClient,
) -> None:
    _post_all(client, _history(21) + _daily_run(21, 55))
    _post_all(client, _daily_run(22, 60))
    assert {f["status"] for f in _findings(client, 2, kind="runtime")} == {"open"}
    _post_all(client, _daily_run(23, 3, None, "FAIL") + _daily_run(24, 3, None, "FAIL"))
    (streak,) = _findings(client, 1, kind="failure")
    assert streak["status"] == "open"
    _post_all(client, _daily_run(25, 11))
    (ended,) = _findings(client, 1, kind="failure", status="resolved")
    assert ended["id"] == streak["id"]


def _checked_run(day: int, passed: bool) -> list[dict[str, Any]]:
    """A run whose output carries a not_null check on `customer_id`, passing or not."""
    checks = facet(
        "DataQualityAssertionsDatasetFacet",
        assertions=[{"assertion": "not_null", "success": passed, "column": "customer_id"}],
    )
    events = _daily_run(day, 11)
    events[1]["outputs"][0]["facets"]["dataQualityAssertions"] = checks
    return events


def test_a_failed_quality_check_is_resolved_when_the_check_passes_again(
    client: TestClient,
) -> None:
    _post_all(client, _history(5) + _checked_run(5, passed=False))
    (failed,) = _findings(client, 1, kind="quality")
    assert (failed["status"], failed["subject"]) == ("open", "customer_id")
    _post_all(client, _checked_run(6, passed=True))
    (resolved,) = _findings(client, 1, kind="quality", status="resolved")
    assert resolved["id"] == failed["id"]


def test_a_replayed_history_gives_the_same_findings_once(client: TestClient) -> None:
    history = _history(21) + _daily_run(21, 55)
    for start in range(0, len(history), 6):  # arrives a run or so at a time, like live
        _post_all(client, history[start : start + 6])
    first = _findings(client, 1)
    replay = client.post("/api/v1/lineage/batch", json=history).json()["results"]
    assert {r["status"] for r in replay} == {"duplicate"}
    time.sleep(0.5)
    assert [f["id"] for f in _findings(client, 1)] == [f["id"] for f in first]


def test_feedback_marks_a_false_positive(client: TestClient) -> None:
    _post_all(client, _history(21) + _daily_run(21, 55))
    (finding,) = _findings(client, 1, kind="runtime")
    response = client.post(
        f"/api/v1/findings/{finding['id']}/feedback", json={"verdict": "false_positive"}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "false_positive"
    assert _findings(client, 0, status="open") == []
    assert (
        client.post("/api/v1/findings/999999/feedback", json={"verdict": "confirmed"}).status_code
        == 404
    )
    bad = client.post(f"/api/v1/findings/{finding['id']}/feedback", json={"verdict": "maybe"})
    assert bad.status_code == 400


def test_a_job_that_stops_running_is_found_live(client: TestClient) -> None:
    _post_all(client, _history(21))
    last_start = FIRST + timedelta(days=20)
    _findings(client, 0)
    evaluator = client.app.state.services.evaluator  # type: ignore[attr-defined]
    evaluator.tick(last_start + timedelta(days=1, hours=1))  # due, but still within tolerance
    assert _findings(client, 0, kind="freshness") == []
    evaluator.tick(last_start + timedelta(days=1, hours=8))
    (finding,) = _findings(client, 1, kind="freshness")
    assert abs(
        datetime.fromisoformat(finding["eventTime"]) - (last_start + timedelta(days=1))
    ) < timedelta(hours=2)
    # the same slot found again later, or retrospectively when the run comes, is not added twice
    evaluator.tick(last_start + timedelta(days=1, hours=9))
    assert len(_findings(client, 1, kind="freshness")) == 1


def test_a_run_going_past_its_expected_duration_is_an_overrun(client: TestClient) -> None:
    _post_all(client, _history(21))
    start = FIRST + timedelta(days=21)
    running = run_event("START", job="daily", event_time=start.isoformat())
    _post_all(client, [running])
    evaluator = client.app.state.services.evaluator  # type: ignore[attr-defined]
    evaluator.tick(start + timedelta(minutes=11))
    assert _findings(client, 0, kind="overrun") == []
    evaluator.tick(start + timedelta(minutes=45))
    (finding,) = _findings(client, 1, kind="overrun")
    assert finding["runId"] == running["run"]["runId"]
    assert finding["message"].startswith("still running after 45 min, expected to finish in")


def test_a_failed_quality_check_is_a_finding_on_its_dataset(client: TestClient) -> None:
    run_id = str(uuid.uuid4())
    checks = {
        "_producer": "https://github.com/pipewarden/tests",
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DataQualityAssertionsDatasetFacet.json",
        "assertions": [
            {"assertion": "not_null", "column": "day", "success": True},
            {"assertion": "greater_than_or_equal_to(0)", "column": "revenue", "success": False},
        ],
    }
    checked = dataset("mart.daily", PG, dataQualityAssertions=checks)
    start = FIRST.isoformat()
    end = (FIRST + timedelta(minutes=3)).isoformat()
    _post_all(
        client,
        [
            run_event(
                "START", run_id=run_id, event_time=start, outputs=[dataset("mart.daily", PG)]
            ),
            run_event("COMPLETE", run_id=run_id, event_time=end, outputs=[checked]),
        ],
    )
    (finding,) = _findings(client, 1, kind="quality")
    assert finding["dataset"] == {"namespace": PG, "name": "mart.daily"}
    assert (finding["job"], finding["runId"], finding["subject"]) == (
        "orders_daily",
        run_id,
        "revenue",
    )
    assert (
        finding["message"] == "quality check greater_than_or_equal_to(0) failed on column revenue"
    )
