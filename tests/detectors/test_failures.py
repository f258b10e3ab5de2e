"""Failure streaks."""

from __future__ import annotations

from datetime import datetime, timedelta

from detectors import failures
from tests.detectors.series import MONDAY


def states(*names: str) -> list[tuple[str, datetime, str]]:
    return [(f"r{i}", MONDAY + timedelta(hours=i), name) for i, name in enumerate(names)]


def test_two_failures_in_a_row_are_a_warning_three_critical() -> None:
    two = failures.check(states("COMPLETE", "FAIL", "FAIL"))
    assert two is not None
    assert (two.severity, two.observed, two.run_id) == ("warning", 2.0, "r2")
    assert two.message == "failed 2 runs in a row, since Mon 2024-01-01 03:00 UTC"
    three = failures.check(states("FAILED", "FAILED", "FAILED"))
    assert three is not None
    assert three.severity == "critical"


def test_one_failure_or_a_success_after_failures_is_no_streak() -> None:
    assert failures.check(states("COMPLETE", "FAIL")) is None
    assert failures.check(states("FAIL", "FAIL", "COMPLETE")) is None
    assert failures.check(states("FAIL", "ABORT", "FAIL")) is None
    assert failures.check([]) is None


def test_a_run_still_going_neither_breaks_nor_extends_a_streak() -> None:
    finding = failures.check(states("FAIL", "FAIL", "RUNNING"))
    assert finding is not None
    assert finding.run_id == "r1"
