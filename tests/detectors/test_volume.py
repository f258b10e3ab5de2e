"""Volume: drops, spikes and empty loads, rows and bytes."""

from __future__ import annotations

from datetime import timedelta

from detectors import volume
from detectors.model import Point, Sensitivity
from tests.detectors.series import MONDAY, daily, replay, wobble


def test_zero_rows_after_rows_is_always_a_finding_even_while_learning() -> None:
    history = daily([1000.0, 1100.0, 1050.0])
    finding = volume.check(history, Point("empty", MONDAY + timedelta(days=3), 0), Sensitivity())
    assert finding is not None
    assert finding.severity == "critical"
    assert finding.subject == "rows"
    assert finding.message.startswith("wrote 0 rows, after runs of ")


def test_zero_rows_is_normal_for_a_dataset_often_written_empty() -> None:
    values = [0.0 if i % 3 == 0 else 500.0 for i in range(30)]
    finding = volume.check(daily(values), Point("e", MONDAY + timedelta(days=30), 0), Sensitivity())
    assert finding is None


def test_zero_rows_without_history_is_nothing() -> None:
    assert volume.check([], Point("first", MONDAY, 0), Sensitivity()) is None


def test_drops_and_spikes_are_found_and_normal_days_are_not() -> None:
    values = wobble(60, 2_000_000, spread=0.1)
    values[30] = 300_000  # drop
    values[45] = 20_000_000  # spike
    found = replay(daily(values), volume.check)
    assert sorted(found) == [30, 45]
    assert found[30].observed == 300_000
    assert "expected 1.8M\u20132.2M rows" in found[30].message or "M rows" in found[30].message


def test_bytes_are_written_as_bytes() -> None:
    history = daily(wobble(20, 3e9))
    finding = volume.check(
        history, Point("big", MONDAY + timedelta(days=20), 3e10), Sensitivity(), metric="bytes"
    )
    assert finding is not None
    assert finding.subject == "bytes"
    assert finding.message.startswith("wrote 30 GB, expected ")
    assert finding.message.endswith(" GB")


def test_weekend_dip_is_quiet_once_learned() -> None:
    values = [v * (0.3 if (i % 7) >= 5 else 1.0) for i, v in enumerate(wobble(63, 50_000))]
    found = replay(daily(values), volume.check)
    assert [i for i in found if i >= 14] == []
