"""Runtime: a run's duration against the job's expected range for that moment.

The point is the run's duration in seconds at its start time. Too slow and too fast both
count: a job that finishes in a tenth of its usual time often did nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from detectors import baseline, text
from detectors.model import Expectation, Finding, Point, Sensitivity

KIND = "runtime"


def expect(history: Sequence[Point], at: datetime, sensitivity: Sensitivity) -> Expectation:
    """The expected duration range for a run starting at `at`."""
    return baseline.expectation(history, at, sensitivity)


def check(history: Sequence[Point], point: Point, sensitivity: Sensitivity) -> Finding | None:
    """A finding when the run's duration lies outside its expected range; None while learning."""
    return judge(history, point, sensitivity)[1]


def judge(
    history: Sequence[Point], point: Point, sensitivity: Sensitivity
) -> tuple[Expectation, Finding | None]:
    """The expected range for the run and the finding against it, from one fit."""
    expected, fit = baseline.assess(history, point.at, sensitivity)
    if fit is None or expected.low <= point.value <= expected.high:
        return expected, None
    score = baseline.score(fit, point.value, sensitivity)
    return expected, Finding(
        kind=KIND,
        run_id=point.run_id,
        at=point.at,
        severity=severity(point.value, expected, score, sensitivity),
        observed=point.value,
        expected_low=expected.low,
        expected_high=expected.high,
        score=score,
        message=message(point.value, expected),
        subject="duration",
    )


def severity(value: float, expected: Expectation, score: float, sensitivity: Sensitivity) -> str:
    """critical when far outside (twice the band's sigmas and a factor of 2), else warning."""
    ratio = (value + 1) / (expected.centre + 1)
    far = score >= 2 * sensitivity.k and (ratio >= 2 or ratio <= 0.5)
    return "critical" if far else "warning"


def message(value: float, expected: Expectation) -> str:
    """ "ran 47 min, expected 12-18 min for a Monday run" """
    return (
        f"ran {text.duration(value)}, expected "
        f"{text.duration_range(expected.low, expected.high)}{for_season(expected)}"
    )


def for_season(expected: Expectation) -> str:
    return f" for a {expected.season} run" if expected.season else ""
