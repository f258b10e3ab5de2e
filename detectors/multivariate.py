"""Multivariate: a run whose duration, rows and time of week do not go together (opt-in).

A secondary flag behind runtime and volume: each value may lie within its own range while
the combination is new (a run that wrote the usual big load in a tenth of the usual time,
or a job whose durations are bimodal, which makes its runtime range wide). A
LocalOutlierFactor (novelty mode) fitted on the job's recent runs scores the run; it speaks
only when the per-metric detectors did not, when the factor is clearly high (over 1 + k),
and when the duration also lies outside the range expected from the earlier runs most like
this one in rows and time of week, which is the range its finding states.

Not among the default detectors: on the labelled benchmark, whose durations and rows are
independent, it adds about 1 flag in 100 runs and finds nothing the others miss.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
from sklearn.neighbors import LocalOutlierFactor

from detectors import baseline, text
from detectors.model import ANOMALY, CONFIRMED, Finding, Point, Sensitivity

KIND = "runtime"
SUBJECT = "duration+rows"
MIN_RUNS: Final = 30  # fewer earlier runs than this: no combination is judged
MAX_RUNS: Final = 120  # recent runs only: growth and level shifts make old pairs stale
NEIGHBOURS: Final = 20
LIKE_THIS: Final = 15  # the earlier runs most like this one, whose durations make the range
WEEK_HOURS: Final = 168.0
TIME_WEIGHT: Final = 0.5  # a week's circle spans 1 log unit: a factor of e in a metric
FACTOR_PER_K: Final = 1.0  # the local outlier factor must exceed 1 + k / this (4.5 at k 3.5)


@dataclass(frozen=True)
class Run:
    """One finished run of a job: when it started, how long it took, how many rows it wrote."""

    run_id: str
    at: datetime
    duration: float
    rows: float
    verdict: str | None = None


def check(history: Sequence[Run], run: Run, sensitivity: Sensitivity) -> Finding | None:
    """A finding when the combination is an outlier though each value is within its range."""
    earlier = [r for r in history if r.at < run.at and r.verdict not in (ANOMALY, CONFIRMED)]
    earlier = sorted(earlier, key=lambda r: r.at)[-MAX_RUNS:]
    if len(earlier) < max(MIN_RUNS, sensitivity.min_history):
        return None
    durations = [Point(r.run_id, r.at, r.duration, r.verdict) for r in history]
    rows = [Point(r.run_id, r.at, r.rows, r.verdict) for r in history]
    for points, value in ((durations, run.duration), (rows, run.rows)):
        expected = baseline.expectation(points, run.at, sensitivity)
        if expected.learning or not expected.low <= value <= expected.high:
            return None  # learning, or the per-metric detector reports it itself
    features = _features(earlier)
    target = _features([run])[0]
    model = LocalOutlierFactor(n_neighbors=min(NEIGHBOURS, len(earlier) - 1), novelty=True)
    with warnings.catch_warnings():  # repeated values (whole seconds, fixed row counts) are
        warnings.simplefilter("ignore", UserWarning)  # normal here; LOF warns about them
        model.fit(features)
        factor = float(-model.score_samples(target.reshape(1, -1))[0])
    if factor < 1.0 + sensitivity.k / FACTOR_PER_K:
        return None
    low, high = _like_this(earlier, features, target, sensitivity)
    if low <= run.duration <= high:
        return None  # runs like this one took as long: nothing a person could act on
    return Finding(
        kind=KIND,
        run_id=run.run_id,
        at=run.at,
        severity="warning",
        observed=run.duration,
        expected_low=low,
        expected_high=high,
        score=factor,
        message=(
            f"ran {text.duration(run.duration)} writing {text.count(run.rows)}, an unusual "
            f"pair for this job: runs like it take {text.duration_range(low, high)}"
        ),
        subject=SUBJECT,
    )


def _features(runs: Sequence[Run]) -> np.ndarray:
    """(log duration, log rows, time of week on a circle): log units, so a factor is a
    distance whatever the job's size, and a whole week across is worth a factor of e."""
    hours = np.array([_hour_of_week(r.at) for r in runs])
    angle = 2 * math.pi * hours / WEEK_HOURS
    return np.column_stack(
        [
            np.log1p([max(r.duration, 0.0) for r in runs]),
            np.log1p([max(r.rows, 0.0) for r in runs]),
            TIME_WEIGHT * np.sin(angle),
            TIME_WEIGHT * np.cos(angle),
        ]
    )


def _like_this(
    runs: Sequence[Run], features: np.ndarray, target: np.ndarray, sensitivity: Sensitivity
) -> tuple[float, float]:
    """The expected duration range among the earlier runs nearest in rows and time of week:
    their median duration, k robust sigmas (never under the relative floor) either side."""
    distance = np.linalg.norm(features[:, 1:] - target[1:], axis=1)
    nearest = features[np.argsort(distance)[:LIKE_THIS], 0]
    centre = float(np.median(nearest))
    sigma = baseline.robust_sigma(nearest)
    half = max(sensitivity.k * sigma, float(np.log1p(sensitivity.relative_floor)))
    return max(float(np.expm1(centre - half)), 0.0), float(np.expm1(centre + half))


def _hour_of_week(at: datetime) -> float:
    return float(at.timestamp() / 3600.0 + 72.0) % WEEK_HOURS  # 1970-01-01 was a Thursday
