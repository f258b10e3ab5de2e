"""Overrun: a run still going past the high end of its expected duration, found before it ends.

The evaluator calls this for each RUNNING run with the current time; the range is the
runtime detector's for the run's start, so an overrun and a later runtime finding agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from detectors import baseline, runtime, text
from detectors.model import Finding, Point, Sensitivity

KIND = "overrun"


def check(
    started_at: datetime,
    now: datetime,
    history: Sequence[Point],
    sensitivity: Sensitivity,
    run_id: str,
) -> Finding | None:
    """A finding when the run has been going longer than its expected high bound."""
    expected, fit = baseline.assess(history, started_at, sensitivity)
    elapsed = (now - started_at).total_seconds()
    if fit is None or elapsed <= expected.high:
        return None
    score = baseline.score(fit, elapsed, sensitivity)
    return Finding(
        kind=KIND,
        run_id=run_id,
        at=started_at,
        severity=runtime.severity(elapsed, expected, score, sensitivity),
        observed=elapsed,
        expected_low=expected.low,
        expected_high=expected.high,
        score=score,
        message=(
            f"still running after {text.duration(elapsed)}, expected to finish in "
            f"{text.duration_range(expected.low, expected.high)}{runtime.for_season(expected)}"
        ),
        subject="duration",
    )
