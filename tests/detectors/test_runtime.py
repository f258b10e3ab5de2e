"""Runtime: the expected duration range and findings, on hand-made daily histories."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from detectors import runtime
from detectors.model import CONFIRMED, FALSE_POSITIVE, Point, Sensitivity
from tests.detectors.series import MONDAY, daily, marked, replay, wobble


def test_cold_start_is_learning_and_never_alerts() -> None:
    history = daily(wobble(5, 600))
    expected = runtime.expect(history, MONDAY + timedelta(days=5), Sensitivity())
    assert expected.learning
    assert expected.basis == 5
    assert expected.low <= expected.centre <= expected.high
    huge = Point("x", MONDAY + timedelta(days=5), 600 * 50)
    assert runtime.check(history, huge, Sensitivity()) is None


def test_empty_history_is_learning() -> None:
    expected = runtime.expect([], MONDAY, Sensitivity())
    assert expected.learning
    assert expected.basis == 0


def test_learning_ends_at_min_history() -> None:
    sensitivity = Sensitivity(min_history=4)
    history = daily(wobble(4, 600))
    assert not runtime.expect(history, MONDAY + timedelta(days=4), sensitivity).learning


def test_constant_series_has_a_range_and_a_real_jump_alerts() -> None:
    history = daily([600.0] * 30)
    at = MONDAY + timedelta(days=30)
    expected = runtime.expect(history, at, Sensitivity())
    assert not expected.learning
    assert expected.low < 600 < expected.high  # the relative floor, not a zero-width band
    assert expected.high == pytest.approx(600 * 1.2, rel=0.05)
    assert runtime.check(history, Point("same", at, 600.0), Sensitivity()) is None
    assert runtime.check(history, Point("jitter", at, 640.0), Sensitivity()) is None
    finding = runtime.check(history, Point("jump", at, 900.0), Sensitivity())
    assert finding is not None
    assert finding.kind == "runtime"
    assert finding.run_id == "jump"


def test_single_huge_outlier_is_flagged_once_and_does_not_blind_the_range() -> None:
    values = wobble(40, 600)
    values[20] = 600 * 20
    found = replay(daily(values), runtime.check)
    assert list(found) == [20]
    assert found[20].severity == "critical"
    assert found[20].observed == pytest.approx(12000)
    assert found[20].expected_high is not None
    assert found[20].expected_high < 1000


def test_the_point_under_test_and_later_points_are_not_in_its_baseline() -> None:
    history = daily(wobble(30, 600))
    point = Point("late", MONDAY + timedelta(days=15), 6000)
    with_future = runtime.check(history, point, Sensitivity())
    only_past = runtime.check(history[:15], point, Sensitivity())
    assert with_future == only_past
    assert with_future is not None


def test_confirmed_anomalies_stay_out_and_false_positives_go_back_in() -> None:
    # Five days at 2x among normal days: as anomalies they are excluded, the range stays
    # narrow; marked false positive they count, and the range widens to hold them.
    values = wobble(40, 600)
    for i in (10, 16, 22, 28, 34):
        values[i] = 1200
    at = MONDAY + timedelta(days=40)
    confirmed = [replace(p, verdict=CONFIRMED) if p.value == 1200 else p for p in daily(values)]
    feedback = [replace(p, verdict=FALSE_POSITIVE) if p.value == 1200 else p for p in daily(values)]
    narrow = runtime.expect(confirmed, at, Sensitivity())
    wide = runtime.expect(feedback, at, Sensitivity())
    assert narrow.high < 900
    assert wide.high > narrow.high
    assert runtime.check(confirmed, Point("again", at, 1200), Sensitivity()) is not None


def test_false_positive_feedback_quiets_a_recurring_value() -> None:
    values = wobble(60, 600)
    for i in range(12, 60, 4):  # every fourth run takes twice as long, and that is fine
        values[i] = 1200
    points = daily(values)
    flagged = replay(points, runtime.check)
    assert flagged  # at first it looks anomalous
    marked = [
        replace(p, verdict=FALSE_POSITIVE) if i in flagged else p for i, p in enumerate(points)
    ]
    at = MONDAY + timedelta(days=60)
    assert runtime.check(marked, Point("next", at, 1200), Sensitivity()) is None


def test_the_weekly_peak_is_learned_and_quiet() -> None:
    values = [v * (3.0 if i % 7 == 0 else 1.0) for i, v in enumerate(wobble(70, 600))]
    found = replay(daily(values), runtime.check)
    later = [i for i in found if i >= 21]
    assert later == []  # once two Mondays have been seen, Mondays are normal
    monday = MONDAY + timedelta(days=70)
    expected = runtime.expect(daily(values), monday, Sensitivity())
    assert expected.season == "Monday"
    assert expected.low < 1800 < expected.high
    tuesday = runtime.expect(daily(values), monday + timedelta(days=1), Sensitivity())
    assert tuesday.high < 1000
    # … and a Monday-sized run on a Tuesday is not normal.
    spike = Point("tue", monday + timedelta(days=1), 1800)
    finding = runtime.check(daily(values), spike, Sensitivity())
    assert finding is not None
    assert "for a Tuesday run" in finding.message


def test_seasonality_is_not_guessed_from_less_than_a_cycle() -> None:
    values = [v * (3.0 if i % 7 == 0 else 1.0) for i, v in enumerate(wobble(6, 600))]
    history = daily(values, MONDAY - timedelta(days=0))
    expected = runtime.expect(history, MONDAY + timedelta(days=6), Sensitivity(min_history=4))
    assert expected.season is None


def test_level_shift_is_accepted_after_a_few_runs() -> None:
    values = wobble(30, 600) + wobble(30, 1800)
    found = replay(daily(values), runtime.check)
    assert sorted(found) == [30, 31, 32]
    history = marked(daily(values), found)
    expected = runtime.expect(history, MONDAY + timedelta(days=60), Sensitivity())
    assert expected.low < 1800 < expected.high


def test_an_incident_of_a_few_runs_does_not_become_the_normal() -> None:
    values = wobble(40, 600)
    values[20:23] = [3000, 3100, 2900]
    found = replay(daily(values), runtime.check)
    assert sorted(found) == [20, 21, 22]
    history = marked(daily(values), found)
    expected = runtime.expect(history, MONDAY + timedelta(days=40), Sensitivity())
    assert expected.high < 1000


def test_growth_is_followed() -> None:
    values = [v * 1.02**i for i, v in enumerate(wobble(90, 600))]  # 2 % a day
    found = replay(daily(values), runtime.check)
    assert found == {}


def test_small_changes_under_the_floor_are_ignored() -> None:
    values = wobble(40, 600, spread=0.001)  # a very steady job
    history = daily(values)
    at = MONDAY + timedelta(days=40)
    assert runtime.check(history, Point("a", at, 600 * 1.15), Sensitivity()) is None
    assert runtime.check(history, Point("b", at, 600 * 1.3), Sensitivity()) is not None
    strict = Sensitivity(relative_floor=0.05)
    assert runtime.check(history, Point("c", at, 600 * 1.15), strict) is not None


def test_higher_k_means_fewer_alerts() -> None:
    history = daily(wobble(40, 600, spread=0.2))
    at = MONDAY + timedelta(days=40)
    loose = runtime.expect(history, at, Sensitivity(k=6))
    tight = runtime.expect(history, at, Sensitivity(k=2))
    assert loose.high > tight.high
    assert loose.low < tight.low


def test_too_fast_is_a_finding_too() -> None:
    history = daily(wobble(30, 600))
    finding = runtime.check(history, Point("quick", MONDAY + timedelta(days=30), 20), Sensitivity())
    assert finding is not None
    assert finding.observed == 20


def test_message_is_one_readable_sentence() -> None:
    values = [v * (2.0 if i % 7 == 0 else 1.0) for i, v in enumerate(wobble(42, 900))]
    history = daily(values)
    finding = runtime.check(
        history, Point("slow", MONDAY + timedelta(days=42), 2820), Sensitivity()
    )
    assert finding is not None
    assert finding.message.startswith("ran 47 min, expected ")
    assert finding.message.endswith(" min for a Monday run")
    assert "\u2013" in finding.message
    low, high = finding.expected_low, finding.expected_high
    assert low is not None
    assert high is not None
    assert low < 1800 < high
