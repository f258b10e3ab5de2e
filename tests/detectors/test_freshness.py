"""Freshness: missed runs against a schedule or a learned cadence, live and retrospective."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from detectors import freshness
from detectors.freshness import Schedule
from detectors.model import Finding, Sensitivity

START = datetime(2024, 1, 1, 2, 0, tzinfo=UTC)  # a Monday, 02:00 UTC
NIGHTLY = Schedule("0 2 * * *", timedelta(minutes=30))


def nightly_starts(days: int, skip: frozenset[int] = frozenset(), late: int = 4) -> list[datetime]:
    """A run each day at 02:00 (a few minutes late each), except on the skipped days."""
    return [START + timedelta(days=d, minutes=late + d % 3) for d in range(days) if d not in skip]


def test_a_missed_scheduled_run_is_found_when_the_next_run_arrives() -> None:
    starts = nightly_starts(6, skip=frozenset({3}))
    previous, new = starts[2], starts[3]  # day 2, then day 4
    found = freshness.missed(starts, previous, new, NIGHTLY, Sensitivity())
    assert [f.at for f in found] == [START + timedelta(days=3)]
    finding = found[0]
    assert finding.kind == "freshness"
    assert finding.run_id is None
    assert finding.severity == "warning"
    assert "Thu 2024-01-04 02:00 UTC" in finding.message
    assert "0 2 * * *" in finding.message


def test_a_run_within_grace_counts_and_one_past_grace_does_not() -> None:
    starts = [START, START + timedelta(days=1, minutes=25)]
    assert freshness.missed(starts, starts[0], starts[1], NIGHTLY, Sensitivity()) == []
    late = [START, START + timedelta(days=1, minutes=45)]
    found = freshness.missed(late, late[0], late[1], NIGHTLY, Sensitivity())
    assert [f.at for f in found] == [START + timedelta(days=1)]


def test_a_run_a_little_early_counts_for_its_slot() -> None:
    starts = [START, START + timedelta(days=1, minutes=-10), START + timedelta(days=2)]
    assert freshness.missed(starts, starts[0], starts[2], NIGHTLY, Sensitivity()) == []


def test_live_detection_waits_for_grace() -> None:
    starts = nightly_starts(3)
    last = starts[-1]
    due = START + timedelta(days=3)
    assert freshness.missed(starts, last, due + timedelta(minutes=20), NIGHTLY, Sensitivity()) == []
    found = freshness.missed(starts, last, due + timedelta(minutes=31), NIGHTLY, Sensitivity())
    assert [f.at for f in found] == [due]


def test_several_missed_runs_grow_critical() -> None:
    starts = nightly_starts(8, skip=frozenset({2, 3, 4, 5}))
    found = freshness.missed(starts, starts[1], starts[2], NIGHTLY, Sensitivity())
    assert [f.at.day for f in found] == [3, 4, 5, 6]
    assert [f.severity for f in found] == ["warning", "warning", "critical", "critical"]


@pytest.mark.parametrize("schedule", [NIGHTLY, None])
def test_backfilled_history_gives_the_same_findings_as_live(schedule: Schedule | None) -> None:
    starts = nightly_starts(40, skip=frozenset({20, 21, 30}))
    retro = []
    for previous, new in itertools.pairwise(starts):
        retro += freshness.missed(starts, previous, new, schedule, Sensitivity())
    live: dict[tuple[datetime, str], Finding] = {}
    for index, last in enumerate(starts):  # an evaluator every 10 minutes until the next run
        known = starts[: index + 1]
        following = starts[index + 1] if index + 1 < len(starts) else last + timedelta(hours=1)
        now = last
        while now < following:
            now += timedelta(minutes=10)
            for finding in freshness.missed(known, last, now, schedule, Sensitivity()):
                live.setdefault((finding.at, finding.message), finding)
    assert sorted(retro, key=lambda f: f.at) == sorted(live.values(), key=lambda f: f.at)
    assert [f.at.day for f in retro] == [21, 22, 31]


def test_learned_cadence_is_learning_at_first() -> None:
    starts = nightly_starts(5)
    found = freshness.missed(
        starts, starts[-1], starts[-1] + timedelta(days=5), None, Sensitivity()
    )
    assert found == []


def test_learned_cadence_finds_a_missed_run() -> None:
    starts = nightly_starts(30, skip=frozenset({25}))
    found = freshness.missed(starts, starts[24], starts[25], None, Sensitivity())
    assert len(found) == 1
    assert abs(found[0].at - (START + timedelta(days=25))) < timedelta(minutes=30)
    assert "about every 24 h" in found[0].message


def test_learned_weekday_job_is_not_late_at_the_weekend() -> None:
    starts = [s for s in nightly_starts(42) if s.weekday() < 5]
    friday = next(s for s in starts if s.weekday() == 4 and s.day == 2)  # Fri 2 Feb
    monday = min(s for s in starts if s > friday)
    assert freshness.missed(starts, friday, monday, None, Sensitivity()) == []
    tuesday = min(s for s in starts if s > monday)
    assert freshness.missed(starts, friday, tuesday, None, Sensitivity()) == []
    skip_monday = [s for s in starts if s != monday]
    found = freshness.missed(skip_monday, friday, tuesday, None, Sensitivity())
    assert [f.at.weekday() for f in found] == [0]


def test_learned_office_hours_job_is_not_late_at_night() -> None:
    starts = [
        START + timedelta(days=d, hours=h - 2)
        for d in range(22)
        for h in range(9, 18)
        if (START + timedelta(days=d)).weekday() < 5
    ]
    evening = max(s for s in starts if s.day == 18)  # Thursday 17:00
    morning = min(s for s in starts if s.day == 19)  # Friday 09:00
    assert freshness.missed(starts, evening, morning, None, Sensitivity()) == []
    friday = max(s for s in starts if s.day == 19)
    monday = min(s for s in starts if s.day == 22)
    assert freshness.missed(starts, friday, monday, None, Sensitivity()) == []
    gap = [s for s in starts if not (s.day == 19 and s.hour == 12)]  # Friday 12:00 missed
    found = freshness.missed(gap, friday - timedelta(hours=6), friday, None, Sensitivity())
    assert [(f.at.day, f.at.hour) for f in found] == [(19, 12)]


def test_schedule_in_a_time_zone() -> None:
    paris = Schedule("0 2 * * *", timedelta(minutes=30), "Europe/Paris")
    starts = [datetime(2024, 7, 1, 0, 5, tzinfo=UTC), datetime(2024, 7, 3, 0, 5, tzinfo=UTC)]
    found = freshness.missed(starts, starts[0], starts[1], paris, Sensitivity())
    assert [f.at for f in found] == [datetime(2024, 7, 2, 0, 0, tzinfo=UTC)]


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(ValueError, match="cron"):
        Schedule("every day", timedelta(0))
    with pytest.raises(ValueError, match="grace"):
        Schedule("0 2 * * *", timedelta(minutes=-1))


def test_an_empty_window_finds_nothing() -> None:
    assert freshness.missed([START], START, START, NIGHTLY, Sensitivity()) == []
