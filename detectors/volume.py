"""Volume: rows (or bytes) a run wrote to one output dataset, against the expected range.

The point is the run's count for the dataset at the run's end. Drops and spikes both
count. Zero after a history without zeros is always a finding, even while learning: an
empty load is the commonest silent failure. A dataset that is often written empty is
judged by its range like any other value.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from detectors import baseline, text
from detectors.model import ANOMALY, Expectation, Finding, Point, Sensitivity
from detectors.runtime import for_season, severity

KIND = "volume"
RECENT_FOR_ZERO: Final = 20  # zero is a drop when none of this many latest points was zero
EMPTY_SCORE: Final = 100.0  # the score of an empty load while the range is still learning


def expect(history: Sequence[Point], at: datetime, sensitivity: Sensitivity) -> Expectation:
    """The expected count range for a run ending at `at`."""
    return baseline.expectation(history, at, sensitivity)


def check(
    history: Sequence[Point], point: Point, sensitivity: Sensitivity, metric: str = "rows"
) -> Finding | None:
    """A finding for a drop, a spike or an unexpected zero; None while learning otherwise."""
    return judge(history, point, sensitivity, metric)[1]


def judge(
    history: Sequence[Point], point: Point, sensitivity: Sensitivity, metric: str = "rows"
) -> tuple[Expectation, Finding | None]:
    """The expected range for the run and the finding against it, from one fit."""
    expected, fit = baseline.assess(history, point.at, sensitivity)
    if point.value <= 0 and _never_empty(history, point):
        score = baseline.score(fit, 0.0, sensitivity) if fit else EMPTY_SCORE
        return expected, _finding(point, expected, score, "critical", metric)
    if fit is None or expected.low <= point.value <= expected.high:
        return expected, None
    score = baseline.score(fit, point.value, sensitivity)
    level = severity(point.value, expected, score, sensitivity)
    return expected, _finding(point, expected, score, level, metric)


def _never_empty(history: Sequence[Point], point: Point) -> bool:
    recent = [p for p in baseline.usable(history, point.at) if p.verdict != ANOMALY]
    recent = recent[-RECENT_FOR_ZERO:]
    return bool(recent) and all(p.value > 0 for p in recent)


def _finding(point: Point, expected: Expectation, score: float, level: str, metric: str) -> Finding:
    return Finding(
        kind=KIND,
        run_id=point.run_id,
        at=point.at,
        severity=level,
        observed=point.value,
        expected_low=expected.low,
        expected_high=expected.high,
        score=score,
        message=message(point.value, expected, metric),
        subject=metric,
    )


def message(value: float, expected: Expectation, metric: str) -> str:
    """ "wrote 0 rows, expected 1.2M-1.5M rows for a Monday run" """
    seen = "after runs of" if expected.learning else "expected"
    return (
        f"wrote {amount(value, value, metric)}, {seen} "
        f"{amount(expected.low, expected.high, metric)}{for_season(expected)}"
    )


def amount(low: float, high: float, metric: str) -> str:
    if metric == "bytes":
        return text.bytes_range(low, high)
    return text.count_range(low, high, metric)
