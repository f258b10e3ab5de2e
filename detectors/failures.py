"""Failure streaks: a job whose latest finished runs all failed, two or more in a row.

One failure is the run's own news (its FAIL event); a streak says the job is stuck. Runs
still going (START, RUNNING) neither extend nor break a streak; a run that completed, or
was aborted, ends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from detectors import text
from detectors.model import Finding

KIND = "failure"
MIN_STREAK: Final = 2
CRITICAL_STREAK: Final = 3
FAILED: Final = frozenset({"FAIL", "FAILED"})
UNFINISHED: Final = frozenset({"START", "STARTED", "RUNNING", "NEW", "OTHER"})


def check(states: Sequence[tuple[str, datetime, str]]) -> Finding | None:
    """A finding for a streak of failed runs at the end of (run_id, at, state), oldest first."""
    streak: list[tuple[str, datetime]] = []
    for run_id, at, state in reversed(states):
        name = state.upper()
        if name in UNFINISHED:
            continue
        if name not in FAILED:
            break
        streak.append((run_id, at))
    if len(streak) < MIN_STREAK:
        return None
    last_id, last_at = streak[0]
    first_at = streak[-1][1]
    return Finding(
        kind=KIND,
        run_id=last_id,
        at=last_at,
        severity="critical" if len(streak) >= CRITICAL_STREAK else "warning",
        observed=float(len(streak)),
        expected_low=0.0,
        expected_high=float(MIN_STREAK - 1),
        score=float(len(streak)),
        message=f"failed {len(streak)} runs in a row, since {text.moment(first_at)}",
    )
