"""Freshness: runs that should have started in a window of event time and did not.

With a declared schedule (cron + grace, from the policy) a slot is missed when no run
started within grace of it. Without one, the job's cadence is learned from the gaps between
its earlier runs: the median gap is the period, the spread of the gaps (interquartile range,
times k, never under the relative floor of the period) the tolerance, and slots at times of
the week (of the day, for a young sub-daily job) when the job has never started are skipped:
a weekday-only job is not late on Saturday.

The same call serves the live evaluator (`until` = now) and a run arriving after a gap
(`since` = the previous run's start, `until` = the new run's start): the cadence is learned
from runs up to `since` only and a slot is judged only once its tolerance has passed before
`until`, so a backfilled history gives the same findings as a live one.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
from croniter import croniter

from detectors import text
from detectors.model import Finding, Sensitivity

KIND = "freshness"
MAX_SLOTS: Final = 1000  # a window longer than this many slots is judged on its latest ones
GAP_HISTORY: Final = 200  # the cadence is learned from this many latest gaps
PHASE_HISTORY: Final = 2000  # and the times it runs at from this many latest starts
DAY: Final = 86400.0
WEEK: Final = 7 * DAY
CRITICAL_STREAK: Final = 3  # the third missed slot in a row and later ones are critical


@dataclass(frozen=True)
class Schedule:
    """A declared schedule: a five-field cron expression in a time zone, and a grace."""

    cron: str
    grace: timedelta
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise ValueError(f"not a cron expression: {self.cron!r}")
        if self.grace < timedelta(0):
            raise ValueError("grace must not be negative")


@dataclass(frozen=True)
class Cadence:
    """A cadence learned from a job's runs: how often, how loosely, and at what times.

    `phases` are the moments within a cycle (a week, or a day for young sub-daily jobs)
    at which the job has started; a slot is expected only near one of them, so a job that
    runs on weekdays, or only in office hours, is not late at the weekend or at night.
    """

    period: timedelta
    tolerance: timedelta
    cycle: float | None = None  # seconds; None when the history is too short to tell
    phases: tuple[float, ...] = ()  # sorted seconds into the cycle, Monday 00:00 UTC first

    def allows(self, at: datetime) -> bool:
        if self.cycle is None or not self.phases:
            return True
        phase = _phase(at.timestamp(), self.cycle)
        where = bisect.bisect_left(self.phases, phase)
        near = [self.phases[where % len(self.phases)], self.phases[where - 1]]
        reach = self.tolerance.total_seconds()
        return any(min(abs(phase - p), self.cycle - abs(phase - p)) <= reach for p in near)


def _phase(timestamp: float, cycle: float) -> float:
    return (timestamp + 3 * DAY) % cycle  # 1970-01-01 was a Thursday


def missed(
    run_starts: Sequence[datetime],
    since: datetime,
    until: datetime,
    schedule: Schedule | None,
    sensitivity: Sensitivity,
) -> list[Finding]:
    """Findings for the expected runs in (since, until] that did not start.

    `run_starts` holds the job's run starts: those up to `since` teach a cadence when there
    is no schedule, those around the window satisfy its slots (each run serves one slot).
    """
    if until <= since:
        return []
    starts = sorted(run_starts)
    if schedule is not None:
        slots = scheduled_slots(schedule, since, until)
        tolerance = schedule.grace
        rule = f'on schedule "{schedule.cron}" ({schedule.timezone}), grace {text.span(tolerance)}'
    else:
        cadence = learn_cadence([s for s in starts if s <= since], sensitivity)
        if cadence is None:
            return []
        slots = learned_slots(cadence, since, until)
        tolerance = cadence.tolerance
        rule = f"the job has run about every {text.span(cadence.period)}"
    unserved = unmatched(slots, starts, tolerance)
    return _findings(slots, unserved, tolerance, rule)


def scheduled_slots(schedule: Schedule, since: datetime, until: datetime) -> list[datetime]:
    """The schedule's slots in (since, until] whose grace has passed by `until`."""
    zone = ZoneInfo(schedule.timezone)
    iterator = croniter(schedule.cron, since.astimezone(zone))
    slots: list[datetime] = []
    while True:
        slot = iterator.get_next(datetime)
        if slot + schedule.grace > until:
            break
        if slot > since:
            slots.append(slot.astimezone(since.tzinfo))
        if len(slots) > MAX_SLOTS:
            slots.pop(0)
    return slots


def learn_cadence(starts: Sequence[datetime], sensitivity: Sensitivity) -> Cadence | None:
    """The job's cadence from its run starts; None while there are too few to tell.

    Learning lasts for min_history gaps and, until the times the job runs at are known,
    two weeks (three days for a job running more than twice a day).
    """
    if len(starts) < sensitivity.min_history + 1:
        return None
    seconds = np.array([s.timestamp() for s in starts], dtype=np.float64)
    gaps = np.diff(seconds)[-GAP_HISTORY:]
    gaps = gaps[gaps > 0]
    if len(gaps) < sensitivity.min_history:
        return None
    period = float(np.median(gaps))
    q25, q75 = np.quantile(gaps, [0.25, 0.75])
    tolerance = max(sensitivity.k * float(q75 - q25) / 1.349, sensitivity.relative_floor * period)
    span = seconds[-1] - seconds[0]
    cycle = None
    if span >= 2 * WEEK:
        cycle = WEEK
    elif period < DAY / 2 and span >= 3 * DAY:
        cycle = DAY
    if cycle is None:  # the times it runs at are not known yet: still learning
        return None
    phases = tuple(sorted(_phase(t, cycle) for t in seconds[-PHASE_HISTORY:]))
    return Cadence(timedelta(seconds=period), timedelta(seconds=tolerance), cycle, phases)


def learned_slots(cadence: Cadence, since: datetime, until: datetime) -> list[datetime]:
    """Slots one period apart after `since` whose tolerance has passed by `until`."""
    slots: list[datetime] = []
    slot = since + cadence.period
    while slot + cadence.tolerance <= until:
        if cadence.allows(slot):
            slots.append(slot)
            if len(slots) > MAX_SLOTS:
                slots.pop(0)
        slot += cadence.period
    return slots


def unmatched(
    slots: Sequence[datetime], starts: Sequence[datetime], tolerance: timedelta
) -> set[datetime]:
    """Slots no run served: each run serves the earliest open slot within tolerance of it."""
    missing: set[datetime] = set()
    index = 0
    for slot in slots:
        while index < len(starts) and starts[index] < slot - tolerance:
            index += 1
        if index < len(starts) and starts[index] <= slot + tolerance:
            index += 1
        else:
            missing.add(slot)
    return missing


def _findings(
    slots: Sequence[datetime], missing: set[datetime], tolerance: timedelta, rule: str
) -> list[Finding]:
    findings = []
    streak = 0
    for slot in slots:
        if slot not in missing:
            streak = 0
            continue
        streak += 1
        findings.append(
            Finding(
                kind=KIND,
                run_id=None,
                at=slot,
                severity="critical" if streak >= CRITICAL_STREAK else "warning",
                observed=None,
                expected_low=None,
                expected_high=None,
                score=float(streak),
                message=(
                    f"no run started within {text.span(tolerance)} of {text.moment(slot)}; {rule}"
                ),
            )
        )
    return findings
