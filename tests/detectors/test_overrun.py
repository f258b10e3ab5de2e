"""Overrun: a run still going past the high end of its expected duration."""

from __future__ import annotations

from datetime import timedelta

from detectors import overrun, runtime
from detectors.model import Sensitivity
from tests.detectors.series import MONDAY, daily, wobble


def test_a_run_past_its_high_bound_is_an_overrun_before_it_ends() -> None:
    history = daily(wobble(30, 600))
    started = MONDAY + timedelta(days=30)
    high = runtime.expect(history, started, Sensitivity()).high
    assert (
        overrun.check(started, started + timedelta(seconds=high - 5), history, Sensitivity(), "r")
        is None
    )
    finding = overrun.check(started, started + timedelta(hours=2), history, Sensitivity(), "r30")
    assert finding is not None
    assert finding.kind == "overrun"
    assert finding.run_id == "r30"
    assert finding.at == started
    assert finding.observed == 7200
    assert finding.expected_high == high
    assert finding.message.startswith("still running after 2 h, expected to finish in ")
    assert finding.severity == "critical"


def test_no_overrun_while_learning() -> None:
    history = daily(wobble(3, 600))
    started = MONDAY + timedelta(days=3)
    assert overrun.check(started, started + timedelta(days=1), history, Sensitivity(), "r") is None
