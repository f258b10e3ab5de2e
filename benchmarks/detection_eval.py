"""How well the detectors find labelled trouble, against a trailing z-score baseline.

Generates job histories with known trouble, replays each one run by run as the collector
would (each value judged against the values before it, flagged values marked "anomaly" in
the history the next run sees, missed runs looked for when a run arrives after a gap and
once more at the end of the history), and prints precision, recall and F1 per kind for
pipewarden's detectors and for an Elementary-style trailing z-score at k = 3.

    python benchmarks/detection_eval.py [--seed 1 --seed 2 …] [--small]

The generator draws every job's shape from the seed: cadence (hourly, 4-hourly, daily,
weekdays only, weekly), declared schedule or none, seasonality (none, weekday dip, weekend
peak, Monday catch-up, diurnal curve, diurnal with quiet weekends), growth, noise level and
tail (normal or Student-t), start jitter and late-but-within-grace starts, and whether it
has a permanent level shift. Injected trouble: runtime spikes and collapses, volume drops
and spikes, zero-row loads, missed runs (alone or two or three in a row). An injected change
is as large as an operator would call an incident on that job: at least 2.2x and at least
7 noise sigmas (drawn up to twice that), so a change that the job's own noise could produce
is never a label.

What counts (events, not runs):
- an injected runtime or volume anomaly is one event, found when its run is flagged;
- a level shift is one event made of the first 3 runs at the new level: found when any of
  them is flagged; more flags among those 3 are neither right nor wrong, flags after them
  are false positives (the new level should have become normal);
- a missed run is one event per missed slot, found by a freshness finding within a
  quarter period (or the tolerance, if larger) of the slot; for the baseline, a flagged gap
  finds every missed slot inside it;
- every other flag is a false positive, including flags in the cold start.
precision = found events / (found events + false positives); recall = found / events.

The baseline (Elementary's volume/freshness anomaly test without its buckets): z = (value -
mean) / stddev over the points of the last 14 days (at least the last 14 points), the point
itself included, |z| > 3 flags; freshness scores the gap since the previous run the same way.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors import freshness, runtime, volume
from detectors.freshness import Schedule
from detectors.model import ANOMALY, Point, Sensitivity

HOUR = 3600.0
DAY = 86400.0
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
SHIFT_RUNS = 3  # the first runs at a new level that count for the shift event
HISTORY_CAP = 800  # points passed to a check, as the collector would (latest first kept)
KINDS = ("runtime", "volume", "freshness")


# --- the generator ------------------------------------------------------------------------


@dataclass(frozen=True)
class Cadence:
    name: str
    period: float  # seconds
    cron: Callable[[int, int, int], str]  # (minute, hour, weekday) -> cron
    weekdays_only: bool = False


CADENCES = {
    "hourly": Cadence("hourly", HOUR, lambda m, h, d: f"{m} * * * *"),
    "4-hourly": Cadence("4-hourly", 4 * HOUR, lambda m, h, d: f"{m} {h % 4}-23/4 * * *"),
    "daily": Cadence("daily", DAY, lambda m, h, d: f"{m} {h} * * *"),
    "weekdays": Cadence("weekdays", DAY, lambda m, h, d: f"{m} {h} * * 1-5", True),
    "weekly": Cadence("weekly", 7 * DAY, lambda m, h, d: f"{m} {h} * * {(d + 1) % 7}"),
}
LENGTH_DAYS = {  # full, small
    "hourly": (35, 21),
    "4-hourly": (120, 60),
    "daily": (365, 150),
    "weekdays": (365, 150),
    "weekly": (3 * 365, 2 * 365),
}
SHAPES = ("none", "weekday_dip", "weekend_peak", "monday_peak", "diurnal", "diurnal_weekend")


@dataclass(frozen=True)
class Metric:
    base: float
    sigma: float
    heavy_tail: bool
    growth: float  # log per day
    shape: str
    amplitude: float  # log amplitude of the seasonal shape
    phase: float  # hour of the diurnal peak


@dataclass
class Run:
    index: int
    slot: datetime
    start: datetime
    duration: float
    rows: float
    runtime_event: int | None = None  # event id when this run carries a runtime label
    volume_event: int | None = None


@dataclass
class Job:
    name: str
    cadence: Cadence
    schedule: Schedule | None
    runs: list[Run]
    missed_slots: list[datetime]
    end: datetime
    runtime_events: int = 0
    volume_events: int = 0
    notes: list[str] = field(default_factory=list)


def seasonal(metric: Metric, at: datetime) -> float:
    """The log offset of the job's seasonal shape at `at`."""
    weekday, hour = at.weekday(), at.hour + at.minute / 60
    a = metric.amplitude
    diurnal = a * math.cos(2 * math.pi * (hour - metric.phase) / 24)
    return {
        "none": 0.0,
        "weekday_dip": -a if weekday >= 5 else 0.0,
        "weekend_peak": a if weekday >= 5 else 0.0,
        "monday_peak": a if weekday == 0 else 0.0,
        "diurnal": diurnal,
        "diurnal_weekend": diurnal - (a if weekday >= 5 else 0.0),
    }[metric.shape]


def draw_metric(rng: np.random.Generator, base: float, cadence: Cadence) -> Metric:
    shapes = SHAPES if cadence.period < DAY else SHAPES[:4]
    return Metric(
        base=base,
        sigma=float(rng.choice([0.03, 0.08, 0.15, 0.25])),
        heavy_tail=bool(rng.random() < 0.3),
        growth=float(rng.choice([0.0, 0.0, 0.002, 0.006])),
        shape=str(rng.choice(shapes)),
        amplitude=float(rng.uniform(0.3, 0.8)),
        phase=float(rng.uniform(0, 24)),
    )


def noise(rng: np.random.Generator, metric: Metric) -> float:
    if metric.heavy_tail:  # Student-t with 5 degrees of freedom, scaled to the same sigma
        return float(metric.sigma * rng.standard_t(5) / math.sqrt(5 / 3))
    return float(rng.normal(0, metric.sigma))


def magnitude(rng: np.random.Generator, sigma: float) -> float:
    """An incident's size in log space: clear on this job, whatever its noise."""
    return max(math.log(2.2), 7 * sigma) * float(rng.uniform(1.0, 2.0))


def make_job(rng: np.random.Generator, number: int, cadence_name: str, small: bool) -> Job:
    cadence = CADENCES[cadence_name]
    days = LENGTH_DAYS[cadence_name][1 if small else 0]
    minute, hour, weekday = (
        int(rng.integers(0, 60)),
        int(rng.integers(0, 24)),
        int(rng.integers(0, 7)),
    )
    first = EPOCH + timedelta(days=int(rng.integers(0, 7)))
    slots = _slots(cadence, first, first + timedelta(days=days), minute, hour, weekday)
    grace = timedelta(seconds=max(300.0, 0.1 * cadence.period))
    declared = rng.random() < 0.5
    schedule = Schedule(cadence.cron(minute, hour, weekday), grace) if declared else None
    duration = draw_metric(rng, float(np.exp(rng.uniform(math.log(20), math.log(3000)))), cadence)
    rows = draw_metric(rng, float(np.exp(rng.uniform(math.log(1e3), math.log(1e8)))), cadence)
    n = len(slots)
    warm = max(20, n // 8)  # no trouble injected while the job is young
    missed: set[int] = set()
    for first_missed in _pick(rng, range(warm, n - 4), max(2, n // 90)):
        missed.update(range(first_missed, first_missed + int(rng.choice([1, 1, 1, 2, 3]))))
    spikes = _pick(rng, range(warm, n), max(2, n // 70))
    volume_hits = _pick(rng, range(warm, n), max(2, n // 70))
    zeros = _pick(rng, range(warm, n), max(1, n // 200))
    shift_at = int(rng.integers(n // 3, 3 * n // 4)) if rng.random() < 0.5 else None
    shift_metric = str(rng.choice(["duration", "rows"]))
    shift_size = float(rng.choice([-1, 1]) * rng.uniform(math.log(1.8), math.log(3.0)))
    job = Job(f"job{number}-{cadence_name}", cadence, schedule, [], [], slots[-1] + grace)
    job.notes = [
        f"runtime {duration.shape} sigma={duration.sigma}",
        f"rows {rows.shape} sigma={rows.sigma}",
        f"shift {shift_metric} at {shift_at}" if shift_at else "no shift",
        "schedule" if declared else "learned cadence",
    ]
    jitter = float(rng.choice([0.002, 0.01, 0.03]))  # spread of start delays, share of period
    late_limit = grace.total_seconds() * 0.8 if declared else 0.15 * cadence.period
    shift_event: dict[str, int] = {}
    for index, slot in enumerate(slots):
        if index in missed:
            job.missed_slots.append(slot)
            continue
        delay = abs(float(rng.normal(0, jitter * cadence.period)))
        if rng.random() < 0.03:
            delay = float(rng.uniform(0.3, 1.0)) * late_limit
        start = slot + timedelta(seconds=min(delay, late_limit))
        days_in = (start - first).total_seconds() / DAY
        log_d = math.log(duration.base) + seasonal(duration, start) + duration.growth * days_in
        log_r = math.log(rows.base) + seasonal(rows, start) + rows.growth * days_in
        log_d += noise(rng, duration)
        log_r += noise(rng, rows)
        run = Run(len(job.runs), slot, start, 0.0, 0.0)
        if shift_at is not None and index >= shift_at:
            if shift_metric == "duration":
                log_d += shift_size
            else:
                log_r += shift_size
            if shift_metric not in shift_event:
                shift_event[shift_metric] = _new_event(job, shift_metric)
            if shift_metric == "duration":
                run.runtime_event = shift_event[shift_metric]
            else:
                run.volume_event = shift_event[shift_metric]
        if index in spikes:
            sign = 1 if rng.random() < 0.8 else -1
            log_d += sign * magnitude(rng, duration.sigma)
            run.runtime_event = _new_event(job, "duration")
        if index in volume_hits:
            sign = -1 if rng.random() < 0.6 else 1
            log_r += sign * magnitude(rng, rows.sigma)
            run.volume_event = _new_event(job, "rows")
        run.duration = max(1.0, round(math.exp(log_d)))
        run.rows = max(1.0, round(math.exp(log_r)))
        if index in zeros and index not in volume_hits:
            run.rows = 0.0
            run.volume_event = _new_event(job, "rows")
        job.runs.append(run)
    _trim_shift_events(job)
    return job


def _new_event(job: Job, metric: str) -> int:
    if metric == "duration":
        job.runtime_events += 1
        return job.runtime_events
    job.volume_events += 1
    return job.volume_events


def _trim_shift_events(job: Job) -> None:
    """A shift event is the first SHIFT_RUNS runs at the new level and no more."""
    for attribute in ("runtime_event", "volume_event"):
        seen: dict[int, int] = {}
        for run in job.runs:
            event = getattr(run, attribute)
            if event is None:
                continue
            seen[event] = seen.get(event, 0) + 1
            if seen[event] > SHIFT_RUNS:
                setattr(run, attribute, None)


def _pick(rng: np.random.Generator, indices: range, count: int) -> set[int]:
    if len(indices) == 0:
        return set()
    return {int(i) for i in rng.choice(list(indices), size=min(count, len(indices)), replace=False)}


def _slots(
    cadence: Cadence, first: datetime, last: datetime, minute: int, hour: int, weekday: int
) -> list[datetime]:
    if cadence.period >= 7 * DAY:
        offset = (weekday - first.weekday()) % 7
        slot = first + timedelta(days=offset, hours=hour, minutes=minute)
    elif cadence.period >= DAY:
        slot = first + timedelta(hours=hour, minutes=minute)
    elif cadence.period >= 4 * HOUR:
        slot = first + timedelta(hours=hour % 4, minutes=minute)
    else:
        slot = first + timedelta(minutes=minute)
    slots = []
    while slot < last:
        if not (cadence.weekdays_only and slot.weekday() >= 5):
            slots.append(slot)
        slot += timedelta(seconds=cadence.period)
    return slots


def make_jobs(seed: int, small: bool) -> list[Job]:
    rng = np.random.default_rng(seed)
    per_cadence = 2 if small else 4
    jobs: list[Job] = []
    for name in CADENCES:
        for _ in range(per_cadence):
            jobs.append(make_job(rng, len(jobs), name, small))
    return jobs


# --- scoring ------------------------------------------------------------------------------


@dataclass
class Tally:
    events: int = 0
    found: int = 0
    false_positives: int = 0

    def add(self, other: Tally) -> None:
        self.events += other.events
        self.found += other.found
        self.false_positives += other.false_positives

    @property
    def precision(self) -> float:
        flagged = self.found + self.false_positives
        return self.found / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.events if self.events else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def score_flags(labels: Sequence[int | None], flags: Sequence[bool], events: int) -> Tally:
    """Events found (any of their runs flagged) and flags outside every event."""
    found = {label for label, flag in zip(labels, flags, strict=True) if flag and label}
    stray = sum(1 for label, flag in zip(labels, flags, strict=True) if flag and not label)
    return Tally(events=events, found=len(found), false_positives=stray)


def score_slots(missed: Sequence[datetime], found: Sequence[datetime], window: float) -> Tally:
    """Missed slots matched by findings within `window` seconds, each used once."""
    open_slots = sorted(missed)
    hits = 0
    stray = 0
    for at in sorted(found):
        match = next(
            (s for s in open_slots if abs((s - at).total_seconds()) <= window),
            None,
        )
        if match is None:
            stray += 1
        else:
            open_slots.remove(match)
            hits += 1
    return Tally(events=len(missed), found=hits, false_positives=stray)


# --- replay: pipewarden -------------------------------------------------------------------


def replay_ours(job: Job, sensitivity: Sensitivity) -> dict[str, Tally]:
    durations: list[Point] = []
    volumes: list[Point] = []
    starts: list[datetime] = []
    runtime_flags: list[bool] = []
    volume_flags: list[bool] = []
    missed_at: list[datetime] = []
    for run in job.runs:
        if starts:
            found = freshness.missed(
                [*starts, run.start], starts[-1], run.start, job.schedule, sensitivity
            )
            missed_at.extend(f.at for f in found)
        starts.append(run.start)
        point = Point(f"r{run.index}", run.start, run.duration)
        finding = runtime.check(durations[-HISTORY_CAP:], point, sensitivity)
        durations.append(replace(point, verdict=ANOMALY) if finding else point)
        runtime_flags.append(finding is not None)
        end = run.start + timedelta(seconds=run.duration)
        point = Point(f"r{run.index}", end, run.rows)
        finding = volume.check(volumes[-HISTORY_CAP:], point, sensitivity)
        volumes.append(replace(point, verdict=ANOMALY) if finding else point)
        volume_flags.append(finding is not None)
    found = freshness.missed(starts, starts[-1], job.end, job.schedule, sensitivity)
    missed_at.extend(f.at for f in found)
    window = max(0.25 * job.cadence.period, 0.2 * job.cadence.period + 600)
    return {
        "runtime": score_flags(
            [r.runtime_event for r in job.runs], runtime_flags, job.runtime_events
        ),
        "volume": score_flags([r.volume_event for r in job.runs], volume_flags, job.volume_events),
        "freshness": score_slots(job.missed_slots, missed_at, window),
    }


# --- replay: the trailing z-score baseline ------------------------------------------------


def zscore_flags(times: Sequence[datetime], values: Sequence[float], k: float = 3.0) -> list[bool]:
    """|z| > k over the last 14 days (at least 14 points), the point itself included."""
    seconds = np.array([t.timestamp() for t in times])
    data = np.array(values, dtype=np.float64)
    flags = []
    for i in range(len(data)):
        first = int(np.searchsorted(seconds, seconds[i] - 14 * DAY, side="right"))
        first = min(first, max(0, i - 13))
        window = data[first : i + 1]
        if len(window) < 3:
            flags.append(False)
            continue
        std = float(window.std(ddof=1))
        flags.append(std > 0 and abs(data[i] - float(window.mean())) / std > k)
    return flags


def replay_baseline(job: Job) -> dict[str, Tally]:
    runs = job.runs
    starts = [r.start for r in runs]
    ends = [r.start + timedelta(seconds=r.duration) for r in runs]
    runtime_flags = zscore_flags(starts, [r.duration for r in runs])
    volume_flags = zscore_flags(ends, [r.rows for r in runs])
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    gap_flags = zscore_flags(starts[1:], gaps)
    found, stray = set(), 0
    for (a, b), flagged in zip(itertools.pairwise(starts), gap_flags, strict=True):
        if not flagged:
            continue
        inside = [s for s in job.missed_slots if a < s < b]
        found.update(inside)
        stray += 0 if inside else 1
    return {
        "runtime": score_flags([r.runtime_event for r in runs], runtime_flags, job.runtime_events),
        "volume": score_flags([r.volume_event for r in runs], volume_flags, job.volume_events),
        "freshness": Tally(len(job.missed_slots), len(found), stray),
    }


# --- the report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    seed: int
    ours: dict[str, Tally]
    baseline: dict[str, Tally]
    jobs: int
    runs: int
    seconds: float


def evaluate(seed: int, small: bool = False, sensitivity: Sensitivity | None = None) -> Result:
    """Generate the seed's jobs, replay them through both detectors and tally per kind."""
    began = time.perf_counter()
    jobs = make_jobs(seed, small)
    ours = {kind: Tally() for kind in KINDS}
    baseline = {kind: Tally() for kind in KINDS}
    for job in jobs:
        for kind, tally in replay_ours(job, sensitivity or Sensitivity()).items():
            ours[kind].add(tally)
        for kind, tally in replay_baseline(job).items():
            baseline[kind].add(tally)
    runs = sum(len(job.runs) for job in jobs)
    return Result(seed, ours, baseline, len(jobs), runs, time.perf_counter() - began)


def table(results: Sequence[Result]) -> str:
    lines = [
        f"{'seed':>4}  {'kind':<9}  {'method':<11} {'events':>6} {'found':>5} {'FP':>4}"
        f"  {'prec':>5} {'recall':>6} {'F1':>5}"
    ]
    for result in results:
        for kind in KINDS:
            for method, tally in (
                ("pipewarden", result.ours[kind]),
                ("z-score k=3", result.baseline[kind]),
            ):
                lines.append(
                    f"{result.seed:>4}  {kind:<9}  {method:<11} {tally.events:>6} {tally.found:>5}"
                    f" {tally.false_positives:>4}  {tally.precision:>5.2f} {tally.recall:>6.2f}"
                    f" {tally.f1:>5.2f}"
                )
        lines.append(f"      ({result.jobs} jobs, {result.runs} runs, {result.seconds:.1f} s)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, action="append", help="repeatable; default 1 2 3")
    parser.add_argument("--small", action="store_true", help="shorter histories, fewer jobs")
    options = parser.parse_args()
    results = [evaluate(seed, options.small) for seed in options.seed or [1, 2, 3]]
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
