"""Numbers as a person reads them in a finding: "47 min", "1.2M rows", "3.4 GB", "Mon 02:00 UTC".

A range is written in the unit of its larger end ("12-18 min", with an en dash), with as
many digits as it takes for the two ends to differ.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

DASH: Final = "\u2013"  # the en dash between the ends of a range
_DURATION_UNITS: Final = (("d", 86400.0, 2 * 86400.0), ("h", 3600.0, 2 * 3600.0))
_COUNT_UNITS: Final = (("B", 1e9), ("M", 1e6), ("k", 1e3))
_BYTE_UNITS: Final = (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3))


def duration(seconds: float) -> str:
    return duration_range(seconds, seconds)


def duration_range(low: float, high: float) -> str:
    """ "12-18 min": one unit for both ends, picked by the larger end."""
    top = max(abs(low), abs(high))
    for unit, size, threshold in _DURATION_UNITS:
        if top >= threshold:
            return _pair(low / size, high / size, f" {unit}")
    if top >= 90:
        return _pair(low / 60, high / 60, " min")
    return _pair(low, high, " s")


def span(delta: timedelta) -> str:
    return duration(delta.total_seconds())


def count(value: float, noun: str = "rows") -> str:
    return count_range(value, value, noun)


def count_range(low: float, high: float, noun: str = "rows") -> str:
    """ "1.2M-1.5M rows"; "0 rows"; small counts written out."""
    top = max(abs(low), abs(high))
    for suffix, size in _COUNT_UNITS:
        if top >= size:
            return _pair(low / size, high / size, suffix, repeat=True) + f" {noun}"
    return _pair(low, high, "", integral=True) + f" {noun}"


def bytes_range(low: float, high: float) -> str:
    top = max(abs(low), abs(high))
    for suffix, size in _BYTE_UNITS:
        if top >= size:
            return _pair(low / size, high / size, f" {suffix}")
    return _pair(low, high, " bytes", integral=True)


def moment(at: datetime) -> str:
    """ "Mon 2024-03-04 02:00 UTC" """
    return at.astimezone(UTC).strftime("%a %Y-%m-%d %H:%M UTC")


def _pair(
    low: float, high: float, suffix: str, *, repeat: bool = False, integral: bool = False
) -> str:
    digits = 0 if integral or max(abs(low), abs(high)) >= 10 else 1
    while _number(low, digits) == _number(high, digits) and low != high and digits < 4:
        digits += 1
    first, second = _number(low, digits), _number(high, digits)
    if first == second:
        return f"{first}{suffix}"
    if repeat:
        return f"{first}{suffix}{DASH}{second}{suffix}"
    return f"{first}{DASH}{second}{suffix}"


def _number(value: float, digits: int) -> str:
    text = f"{value:,.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
