"""What the detectors read and what they answer: plain frozen data, built by the collector.

The detectors never see the store, the clock or the environment: the collector turns stored
runs into Points (one metric value per run, on event time) and passes "now" as an argument,
so replaying a stored history gives the findings it would have given live.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, Protocol

Kind = Literal["runtime", "volume", "freshness", "overrun", "schema_drift", "failure"]
Severity = Literal["info", "warning", "critical"]

# Operator feedback and earlier flags, as the collector stores them on a point.
ANOMALY: Final = "anomaly"
FALSE_POSITIVE: Final = "false_positive"
CONFIRMED: Final = "confirmed"


@dataclass(frozen=True)
class Point:
    """One value of a metric (duration seconds, rows, bytes) for one run.

    `at` is the event time the value concerns: the run's start for a duration, its end for
    a volume; tz-aware. `verdict` is None, "anomaly" (flagged earlier), "false_positive" or
    "confirmed" (operator feedback): flagged and confirmed points stay out of the baseline,
    false positives go back in.
    """

    run_id: str
    at: datetime
    value: float
    verdict: str | None = None


@dataclass(frozen=True)
class Sensitivity:
    """How eager a job's detectors are, from its policy; higher k means fewer alerts."""

    k: float = 3.5
    min_history: int = 8  # fewer usable points than this: learning, never alerting
    relative_floor: float = 0.2  # changes under this fraction of the expected value are noise
    shift_runs: int = 3  # this many consistent runs at a new level make it the new normal


@dataclass(frozen=True)
class Expectation:
    """The expected range of a metric at one moment, as a dashboard draws it.

    While `learning`, the range only describes what was seen (min to max) and nothing is
    judged against it. `season` names the seasonal slot the range is for ("Monday", "02:00",
    "weekend", "Monday 02:00"); None when the job shows no seasonality (or not yet).
    """

    low: float
    high: float
    centre: float
    learning: bool
    season: str | None
    basis: int  # how many points the range rests on


@dataclass(frozen=True)
class Finding:
    """One thing worth a person's attention, stated in one sentence with its expected range."""

    kind: str  # runtime | volume | freshness | overrun | schema_drift | failure
    run_id: str | None  # the anomalous run; None for a missed run
    at: datetime  # the event time it concerns; for a missed run, when it was expected
    severity: str  # info | warning | critical
    observed: float | None
    expected_low: float | None
    expected_high: float | None
    score: float
    message: str
    subject: str | None = None  # the column for schema drift, "rows"/"bytes" for volume


class PointDetector(Protocol):
    """A detector that judges one run's value against the job's earlier values."""

    __name__: str

    def __call__(
        self, history: Sequence[Point], point: Point, sensitivity: Sensitivity
    ) -> Finding | None: ...


class Expecter(Protocol):
    """What a metric is expected to be at a moment, from the points before it."""

    __name__: str

    def __call__(
        self, history: Sequence[Point], at: datetime, sensitivity: Sensitivity
    ) -> Expectation: ...
