"""How numbers read in findings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from detectors import text


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (720, 1080, "12\u201318 min"),
        (30, 45, "30\u201345 s"),
        (2.5, 3.0, "2.5\u20133 s"),
        (7200, 3 * 3600, "2\u20133 h"),
        (5400, 7000, "90\u2013117 min"),
        (5 * 3600, 9 * 3600, "5\u20139 h"),
        (3 * 86400, 4 * 86400, "3\u20134 d"),
        (600, 600, "10 min"),
        (600, 610, "10\u201310.2 min"),
    ],
)
def test_duration_ranges(low: float, high: float, expected: str) -> None:
    assert text.duration_range(low, high) == expected


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (1_200_000, 1_500_000, "1.2M\u20131.5M rows"),
        (0, 0, "0 rows"),
        (12, 40, "12\u201340 rows"),
        (900, 4500, "0.9k\u20134.5k rows"),
        (2e9, 3e9, "2B\u20133B rows"),
    ],
)
def test_count_ranges(low: float, high: float, expected: str) -> None:
    assert text.count_range(low, high) == expected


def test_bytes_and_moments() -> None:
    assert text.bytes_range(3.4e9, 4.1e9) == "3.4\u20134.1 GB"
    assert text.bytes_range(10, 900) == "10\u2013900 bytes"
    assert text.moment(datetime(2024, 3, 4, 2, 0, tzinfo=UTC)) == "Mon 2024-03-04 02:00 UTC"
    assert text.span(timedelta(minutes=30)) == "30 min"
