"""Small hand-made run histories for the detector tests."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from detectors.model import ANOMALY, Finding, Point, Sensitivity

MONDAY = datetime(2024, 1, 1, 2, 0, tzinfo=UTC)  # a Monday, 02:00 UTC


def daily(values: Sequence[float], start: datetime = MONDAY) -> list[Point]:
    """One point a day at the same time, run ids r0, r1, …"""
    return [Point(f"r{i}", start + timedelta(days=i), v) for i, v in enumerate(values)]


def wobble(count: int, centre: float, spread: float = 0.05) -> list[float]:
    """A deterministic, noise-like series around `centre` (±spread, multiplicative)."""
    return [centre * math.exp(spread * math.sin(i * 2.4) * math.cos(i * 0.7)) for i in range(count)]


def replay(
    points: Sequence[Point],
    check: Callable[[Sequence[Point], Point, Sensitivity], Finding | None],
    sensitivity: Sensitivity | None = None,
) -> dict[int, Finding]:
    """Judge each point against those before it, as the collector does; flagged points are
    marked "anomaly" in the history the next points see. Returns findings by index."""
    history: list[Point] = []
    found: dict[int, Finding] = {}
    for index, point in enumerate(points):
        finding = check(history, point, sensitivity or Sensitivity())
        if finding is not None:
            found[index] = finding
        history.append(replace(point, verdict=ANOMALY) if finding else point)
    return found


def marked(points: Sequence[Point], found: dict[int, Finding]) -> list[Point]:
    """The history as the collector keeps it after a replay: flagged points marked."""
    return [replace(p, verdict=ANOMALY) if i in found else p for i, p in enumerate(points)]
