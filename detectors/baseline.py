"""The expected range of a run metric: robust, seasonal, in log space, shared by runtime and volume.

Runtimes and volumes are multiplicative (a job twice as slow, a table ten times smaller), so
values are compared as log(1 + value): the +1 keeps zero finite and makes sub-unit jitter
(a job of 0.3 s taking 0.6 s) count for nothing. The model is

    log value = level (recent, may drift) + seasonal offset (slot of the day or week) + noise

fitted on the points before the one under test, never on it. Points flagged earlier and
points an operator confirmed stay out of the level and the scale, so one past incident does
not widen the range; points marked false positive are ordinary points. A few consecutive
flagged points at one new level (or, on a noisy job, a few more runs all on one side with
some flagged) that later points do not contradict are a level shift: the level then rests
on the points since the shift, and for its first week the old level stays acceptable too.
Seasonality is chosen among a few calendars (hour of day, day of week, weekday/weekend and
their products) only once the history spans a whole cycle, the slot judged has been seen,
and the calendar clearly beats none out of sample; flagged points help teach it, so a
weekly peak flagged before it was learnable does not stay an anomaly. Growth is followed
by a robust slope when it is steady. The scale comes from the median (or the 90th
percentile) of absolute residuals, and the band is never narrower than the relative floor,
so a constant series has a usable range and a real jump still shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from detectors.model import ANOMALY, CONFIRMED, Expectation, Point, Sensitivity

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

HOUR: Final = 3600.0
DAY: Final = 86400.0
WEEK: Final = 7 * DAY

MAX_POINTS: Final = 600  # the most recent points the fit looks at: enough for 3 weeks hourly
LEVEL_POINTS: Final = 20  # the level is the median of this many latest points of the regime
TREND_POINTS: Final = 40  # the drift is estimated over this many latest points of the regime
TREND_MIN_POINTS: Final = 10  # … and not on fewer
MIN_PER_SLOT: Final = 2  # a calendar needs this many points in the slot judged, and on average
NOISY_EXTRA: Final = 2  # a noisy shift needs this many runs more than a clear one
SHIFT_SIGMAS: Final = 2.0  # a noisy level shift moves the median by at least this many sigmas
ERROR_CAP: Final = 10.0  # in comparing calendars, an error counts for at most this many MADs
SEASON_GAIN: Final = 0.8  # a calendar must cut the noise by at least a fifth to be used
SCALE_POINTS: Final = 200  # the noise is measured on this many latest residuals
MAD_TO_SIGMA: Final = 1.4826  # MAD of a normal sample times this estimates its sigma
_WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Calendar:
    """A seasonal slotting of event times: which slot a moment falls in, and its name."""

    name: str
    period: float  # seconds in one cycle
    slot: Callable[[Floats], Ints]
    label: Callable[[int], str]


def _hour(ts: Floats) -> Ints:
    return np.floor((ts % DAY) / HOUR).astype(np.int64)


def _weekday(ts: Floats) -> Ints:
    return ((np.floor(ts / DAY) + 3) % 7).astype(np.int64)  # 1970-01-01 was a Thursday


def _weekend(ts: Floats) -> Ints:
    return (_weekday(ts) >= 5).astype(np.int64)


def _part(slot: int) -> str:
    return "weekend" if slot else "weekday"


CALENDARS: Final[tuple[Calendar, ...]] = (
    Calendar("hour", DAY, _hour, lambda s: f"{s:02d}:00"),
    Calendar("weekday", WEEK, _weekday, lambda s: _WEEKDAYS[s]),
    Calendar("weekpart", WEEK, _weekend, _part),
    Calendar(
        "weekpart_hour",
        WEEK,
        lambda ts: _weekend(ts) * 24 + _hour(ts),
        lambda s: f"{_part(s // 24)} {s % 24:02d}:00",
    ),
    Calendar(
        "weekday_hour",
        WEEK,
        lambda ts: _weekday(ts) * 24 + _hour(ts),
        lambda s: f"{_WEEKDAYS[s // 24]} {s % 24:02d}:00",
    ),
)


@dataclass(frozen=True)
class Season:
    """A learned calendar: per-slot offsets in log space and the slot of the moment judged."""

    calendar: Calendar
    slots: Ints  # the distinct slots seen
    offsets: Floats  # one per slot, same order
    target_offset: float
    target_label: str
    target_cycles: int  # cycles in which the slot judged was seen

    def offset_of(self, ts: Floats) -> Floats:
        """Offsets for arbitrary times; 0 for slots never seen."""
        keys = self.calendar.slot(ts)
        where = np.searchsorted(self.slots, keys)
        where = np.clip(where, 0, len(self.slots) - 1)
        found = self.slots[where] == keys
        return np.where(found, self.offsets[where], 0.0)


@dataclass(frozen=True)
class Fit:
    """The fitted baseline at one moment, in log space.

    Right after a level shift, while the new level is younger than a week or rests on
    fewer than min_history points, the old level stays acceptable too (a weekly pattern not
    yet learnable, or an incident of a few runs, looks like a shift and then goes back):
    `centres` holds both and the range spans them.
    """

    centres: tuple[float, ...]
    sigma: float  # spread of a new point around a centre
    season: Season | None
    basis: int

    @property
    def centre(self) -> float:
        return self.centres[0]


def to_log(value: float) -> float:
    """The scale the model works on; negatives (never valid) count as zero."""
    return float(np.log1p(max(value, 0.0)))


def from_log(value: float) -> float:
    return float(np.expm1(value))


def usable(history: Sequence[Point], at: datetime) -> list[Point]:
    """The points the fit may see: strictly before `at`, not confirmed anomalies, latest last."""
    points = [p for p in history if p.at < at and p.verdict != CONFIRMED]
    points.sort(key=lambda p: p.at)
    return points[-MAX_POINTS:]


def expectation(history: Sequence[Point], at: datetime, sensitivity: Sensitivity) -> Expectation:
    """The expected range of the metric at `at`, from the points before it."""
    return assess(history, at, sensitivity)[0]


def assess(
    history: Sequence[Point], at: datetime, sensitivity: Sensitivity
) -> tuple[Expectation, Fit | None]:
    """The expected range at `at` and the fit behind it (None while learning)."""
    points = usable(history, at)
    kept = [p for p in points if p.verdict != ANOMALY]
    if len(kept) < max(sensitivity.min_history, 2):
        return _learning(kept), None
    fit = fit_points(points, at, sensitivity)
    low, high = band(fit, sensitivity)
    expected = Expectation(
        low=low,
        high=high,
        centre=from_log(fit.centre),
        learning=False,
        season=fit.season.target_label if fit.season else None,
        basis=fit.basis,
    )
    return expected, fit


def _learning(kept: Sequence[Point]) -> Expectation:
    """While learning, the range only describes what was seen."""
    if not kept:
        return Expectation(0.0, 0.0, 0.0, learning=True, season=None, basis=0)
    values = sorted(p.value for p in kept)
    return Expectation(
        low=values[0],
        high=values[-1],
        centre=float(np.median(values)),
        learning=True,
        season=None,
        basis=len(values),
    )


def band(fit: Fit, sensitivity: Sensitivity) -> tuple[float, float]:
    """[low, high] in value space: k sigmas either side, never within the relative floor."""
    half = sensitivity.k * fit.sigma
    highs, lows = [], []
    for centre in fit.centres:
        value = from_log(centre)
        highs.append(max(from_log(centre + half), value * (1 + sensitivity.relative_floor)))
        lows.append(min(from_log(centre - half), value * (1 - sensitivity.relative_floor)))
    return max(min(lows), 0.0), max(highs)


def score(fit: Fit, value: float, sensitivity: Sensitivity) -> float:
    """How many sigmas the value lies from the nearest centre; the floor sets a least sigma."""
    floor_sigma = np.log1p(sensitivity.relative_floor) / sensitivity.k
    distance = min(abs(to_log(value) - centre) for centre in fit.centres)
    return float(distance / max(fit.sigma, floor_sigma))


def fit_points(points: Sequence[Point], at: datetime, sensitivity: Sensitivity) -> Fit:
    """Fit level, season and scale on `points` (usable, sorted) for the moment `at`."""
    ts = np.array([p.at.timestamp() for p in points], dtype=np.float64)
    ys = np.array([to_log(p.value) for p in points], dtype=np.float64)
    flagged = np.array([p.verdict == ANOMALY for p in points], dtype=np.bool_)
    target = at.timestamp()
    kept = ~flagged
    season, residuals = fit_season(ts, ys, kept, target)
    offset = season.target_offset if season else 0.0
    deseasoned = ys - season.offset_of(ts) if season else ys.copy()
    sigma = robust_sigma(residuals[kept])
    least = max(SHIFT_SIGMAS * sigma, float(np.log1p(sensitivity.relative_floor)))
    start, members = regime(deseasoned, flagged, sensitivity.shift_runs, least)
    after = np.arange(len(ys)) >= start
    use = after & (kept | members)
    if start > 0:  # the noise within each level, not the step between them
        parts = (slice(0, start), slice(start, len(ys)))
        trend = np.concatenate(
            [moving_mean(ts[p], deseasoned[p], (kept | members)[p]) for p in parts]
        )
        sigma = robust_sigma((deseasoned - trend)[kept | members])
    extra = 1.6 / season.target_cycles if season else 0.0
    level, level_var = project_level(ts[use], deseasoned[use], target, sigma)
    centres = [level + offset]
    spread = sigma * float(np.sqrt(1.0 + level_var + extra))
    young = use.sum() < sensitivity.min_history or target - ts[start] < WEEK if start else False
    if young:
        before = ~after & kept
        old, old_var = project_level(ts[before], deseasoned[before], target, sigma)
        centres.append(old + offset)
        spread = max(spread, sigma * float(np.sqrt(1.0 + old_var + extra)))
    return Fit(centres=tuple(centres), sigma=max(spread, 1e-9), season=season, basis=int(use.sum()))


def fit_season(ts: Floats, ys: Floats, kept: Bools, target: float) -> tuple[Season | None, Floats]:
    """The calendar that best explains the variation, if any clearly does, and the residuals.

    Residuals are taken around a centred moving mean of the kept points over a week (or 15
    runs for slower jobs), so growth and level shifts do not pass for seasonality. Flagged
    points take part in the per-slot medians: a weekly peak flagged before its season was
    learnable must be able to teach it. Calendars are compared on their leave-one-out
    error (each point against its slot's median without it, each error capped so that an
    empty load cannot decide alone), so a fine calendar that only fits noise loses, and the
    winner must beat no calendar by SEASON_GAIN.
    """
    detrended = ys - moving_mean(ts, ys, kept)
    n = len(ys)
    cap = max(ERROR_CAP * mad(detrended), 0.05)
    plain = float(np.mean(np.minimum(np.abs(detrended - np.median(detrended)), cap)))
    best: tuple[float, Season, Floats] | None = None
    span = float(ts[-1] - ts[0]) if n else 0.0
    for calendar in CALENDARS:
        if span < calendar.period:  # not one whole cycle seen: no guessing
            continue
        keys = calendar.slot(ts)
        target_key = int(calendar.slot(np.array([target]))[0])
        slots, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        if len(slots) < 2 or MIN_PER_SLOT * len(slots) > n:
            continue
        where = int(np.searchsorted(slots, target_key))
        if where >= len(slots) or slots[where] != target_key or counts[where] < MIN_PER_SLOT:
            continue
        in_slot = keys == target_key
        cycles = len(np.unique(np.floor((ts[in_slot] + 3 * DAY) / calendar.period)))
        errors = np.abs(_leave_one_out(detrended, inverse, len(slots)))
        error = float(np.mean(np.minimum(errors, cap)))
        if error < SEASON_GAIN * plain and (best is None or error < best[0]):
            offsets = group_median(inverse, detrended, len(slots))
            season = Season(
                calendar=calendar,
                slots=slots.astype(np.int64),
                offsets=offsets,
                target_offset=float(offsets[where]),
                target_label=calendar.label(target_key),
                target_cycles=cycles,
            )
            best = (error, season, detrended - offsets[inverse])
    if best is None:
        return None, detrended
    return best[1], best[2]


def _leave_one_out(values: Floats, inverse: npt.NDArray[np.intp], groups: int) -> Floats:
    """Each value less the median of the other values in its group (itself when alone).

    Medians, not means: an empty load (log 0) in a slot must not decide on its own which
    calendar wins.
    """
    order = np.lexsort((values, inverse))
    ordered, keys = values[order], inverse[order]
    counts = np.bincount(inverse, minlength=groups)
    starts = np.cumsum(counts) - counts
    size = counts[keys]
    rank = np.arange(len(values)) - starts[keys]  # position of each value within its group

    def other(position: npt.NDArray[np.int64]) -> Floats:
        """The value at `position` among the others: skip over the value left out."""
        index = starts[keys] + position + (position >= rank)
        picked: Floats = ordered[np.clip(index, 0, len(values) - 1)]
        return picked

    even = (size - 1) % 2 == 1
    middle = np.maximum((size - 2) // 2, 0)
    lower = np.maximum((size - 3) // 2, 0)
    upper = np.maximum((size - 1) // 2, 0)
    medians = np.where(even, other(middle), (other(lower) + other(upper)) / 2)
    medians = np.where(size > 1, medians, 0.0)
    result: Floats = np.empty(len(values))
    result[order] = ordered - medians
    return result


def regime(deseasoned: Floats, flagged: Bools, runs: int, least: float) -> tuple[int, Bools]:
    """Where the current level began (0 without a shift), and its flagged points.

    Two signs of a shift; the later start wins. A clear one: `runs` consecutive flagged
    points on one side of the level before them, closer to each other than to it, that
    the unflagged points after it (if any) do not contradict by going back to the old
    level; flagged runs are searched from the latest, and within one from its end, so a
    spike amid the shift or a later incident that ended does not hide it. A noisy one:
    the latest points, at least `runs` + NOISY_EXTRA and some of them flagged, all on one
    side of the level before them and with a median at least `least` (log) away from it.
    Flagged points near the new level belong to the new regime.
    """
    members = np.zeros(len(flagged), dtype=np.bool_)
    clear = _clear_shift(deseasoned, flagged, runs)
    noisy = _noisy_shift(deseasoned, flagged, runs, least)
    found = [shift for shift in (clear, noisy) if shift is not None]
    if not found:
        return 0, members
    start, old, new = max(found)
    near = np.abs(deseasoned - new) < abs(new - old) / 2
    while start > 0 and flagged[start - 1] and near[start - 1]:
        start -= 1
    members[start:] = (flagged & near)[start:]
    return start, members


def _clear_shift(deseasoned: Floats, flagged: Bools, runs: int) -> tuple[int, float, float] | None:
    end = len(flagged)
    while end > 0:
        while end > 0 and not flagged[end - 1]:
            end -= 1
        begin = end
        while begin > 0 and flagged[begin - 1]:
            begin -= 1
        for stop in range(end, begin + runs - 1, -1):
            levels = _shift(deseasoned, flagged, stop - runs, stop, runs)
            if levels is not None:
                return stop - runs, levels[0], levels[1]
        end = begin
    return None


def _noisy_shift(
    deseasoned: Floats, flagged: Bools, runs: int, least: float
) -> tuple[int, float, float] | None:
    found = None
    for start in range(len(flagged) - runs - NOISY_EXTRA, runs - 1, -1):
        before = deseasoned[:start][~flagged[:start]][-LEVEL_POINTS:]
        if len(before) < runs:
            break
        old = float(np.median(before))
        tail = deseasoned[start:]
        if not (np.all(tail > old) or np.all(tail < old)):
            break
        new = float(np.median(tail))
        if flagged[start:].any() and abs(new - old) >= least:
            found = (start, old, new)
    return found


def _shift(
    deseasoned: Floats, flagged: Bools, begin: int, end: int, runs: int
) -> tuple[float, float] | None:
    """(old level, new level) when points [begin, end) make a level shift, else None."""
    before = deseasoned[:begin][~flagged[:begin]][-LEVEL_POINTS:]
    if len(before) < runs:
        return None
    old = float(np.median(before))
    run = deseasoned[begin:end]
    new = float(np.median(run))
    sides = np.sign(run - old)
    if not (np.all(sides > 0) or np.all(sides < 0)):
        return None
    if float(run.max() - run.min()) >= abs(new - old):
        return None
    after = deseasoned[end:][~flagged[end:]]
    if len(after) and float(np.mean(np.abs(after - new) < np.abs(after - old))) < 0.5:
        return None
    return old, new


def project_level(ts: Floats, ds: Floats, target: float, sigma: float) -> tuple[float, float]:
    """The deseasoned level at `target` and its variance relative to the noise variance.

    The median of the latest points; when they drift by more than the noise over the
    trend window, and both halves of the window drift the same way (growth, not a step),
    a robust (Theil-Sen) slope carries the level forward in time.
    """
    latest_t, latest_d = ts[-LEVEL_POINTS:], ds[-LEVEL_POINTS:]
    variance = 1.6 / max(len(latest_d), 1)  # a median of n varies like a mean of 0.64 n
    slope = _trend(ts[-TREND_POINTS:], ds[-TREND_POINTS:], sigma)
    if slope:
        window = float(ts[-TREND_POINTS:][-1] - ts[-TREND_POINTS:][0])
        level = float(np.median(latest_d + slope * (target - latest_t)))
        lead = (target - float(np.median(latest_t))) / max(window, 1.0)
        variance += 12.0 * lead**2 / len(ts[-TREND_POINTS:])
        return level, variance
    return float(np.median(latest_d)), variance


def _trend(ts: Floats, ds: Floats, sigma: float) -> float:
    """The drift per second when it is real and steady, else 0."""
    if len(ts) < TREND_MIN_POINTS:
        return 0.0
    slope = theil_sen(ts, ds)
    if abs(slope) * float(ts[-1] - ts[0]) <= max(sigma, 1e-9):
        return 0.0
    half = len(ts) // 2
    for part_t, part_d in ((ts[:half], ds[:half]), (ts[half:], ds[half:])):
        if theil_sen(part_t, part_d) * slope < (slope * slope) / 4:
            return 0.0
    return slope


def theil_sen(ts: Floats, ds: Floats) -> float:
    """The median of the pairwise slopes: a line that a few outliers do not tilt."""
    if len(ts) < 3:
        return 0.0
    i, j = np.triu_indices(len(ts), k=1)
    dt = ts[j] - ts[i]
    valid = dt > 0
    if not valid.any():
        return 0.0
    return float(np.median((ds[j] - ds[i])[valid] / dt[valid]))


def moving_mean(ts: Floats, ys: Floats, kept: Bools) -> Floats:
    """At each point, the mean of the kept points within a centred window.

    The window is a week, or about 15 runs for slower jobs; where it holds no kept point,
    the mean of all kept points stands in.
    """
    kept_t, kept_y = ts[kept], ys[kept]
    if len(kept_t) < 2:
        return np.full(len(ys), float(np.mean(kept_y)) if len(kept_y) else 0.0)
    gap = float(np.median(np.diff(kept_t)))
    width = max(WEEK, 15 * gap)
    lo = np.searchsorted(kept_t, ts - width / 2, side="left")
    hi = np.searchsorted(kept_t, ts + width / 2, side="right")
    sums = np.concatenate(([0.0], np.cumsum(kept_y)))
    count = hi - lo
    means: Floats = np.where(
        count > 0, (sums[hi] - sums[lo]) / np.maximum(count, 1), float(np.mean(kept_y))
    )
    return means


def group_median(inverse: npt.NDArray[np.intp], values: Floats, groups: int) -> Floats:
    """The median of `values` within each group, all groups at once."""
    order = np.lexsort((values, inverse))
    ordered = values[order]
    counts = np.bincount(inverse, minlength=groups)
    starts = np.cumsum(counts) - counts
    lower = ordered[starts + (counts - 1) // 2]
    upper = ordered[starts + counts // 2]
    medians: Floats = (lower + upper) / 2
    return medians


def mad(values: Floats) -> float:
    if len(values) == 0:
        return 0.0
    return float(np.median(np.abs(values - np.median(values))))


def robust_sigma(residuals: Floats) -> float:
    """The noise scale from the latest residuals, robust to outliers but not blind to tails.

    The larger of two estimates: from the median absolute deviation, and from the 90th
    percentile of absolute deviations (which a heavy-tailed job pushes up while a few
    spikes cannot). A scale from few points is inflated: its own error is large then.
    """
    latest = residuals[-SCALE_POINTS:]
    if len(latest) == 0:
        return 0.0
    deviations = np.abs(latest - np.median(latest))
    middle, tail = np.quantile(deviations, [0.5, 0.9])
    scale = max(MAD_TO_SIGMA * float(middle), float(tail) / 1.645)
    return scale * (1.0 + 6.0 / len(latest))
