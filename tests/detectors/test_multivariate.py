"""Multivariate: a duration that does not go with the rows, each within its own range."""

from __future__ import annotations

from datetime import timedelta

from detectors import multivariate
from detectors.model import Sensitivity
from detectors.multivariate import Run
from tests.detectors.series import MONDAY, wobble


def paired_history(days: int) -> list[Run]:
    """Small loads (1k rows) take 2 min, big ones (100k rows) 20 min, alternating days."""
    noise = wobble(days, 1.0)
    return [
        Run(
            f"r{d}",
            MONDAY + timedelta(days=d),
            (120.0 if d % 2 else 1200.0) * noise[d],
            (1000.0 if d % 2 else 100_000.0) * noise[(d * 7) % days],
        )
        for d in range(days)
    ]


def test_a_fast_run_with_a_big_load_is_an_unusual_pair() -> None:
    history = paired_history(60)
    odd = Run("odd", MONDAY + timedelta(days=60), 30.0, 100_000.0)
    finding = multivariate.check(history, odd, Sensitivity())
    assert finding is not None
    assert finding.kind == "runtime"
    assert finding.subject == "duration+rows"
    assert finding.expected_low is not None
    assert finding.expected_low > 600  # big loads took about 20 min
    assert finding.message == (
        "ran 30 s writing 100k rows, an unusual pair for this job: runs like it take 16\u201324 min"
    )


def test_usual_pairs_mild_oddities_and_short_histories_are_quiet() -> None:
    history = paired_history(60)
    usual = Run("ok", MONDAY + timedelta(days=60), 1190.0, 99_000.0)
    assert multivariate.check(history, usual, Sensitivity()) is None
    mild = Run("mild", MONDAY + timedelta(days=60), 130.0, 100_000.0)  # LOF about 2.9
    assert multivariate.check(history, mild, Sensitivity()) is None
    assert multivariate.check(history, mild, Sensitivity(k=1.5)) is not None
    odd = Run("odd", MONDAY + timedelta(days=20), 30.0, 100_000.0)
    assert multivariate.check(history[:20], odd, Sensitivity()) is None


def test_values_outside_their_own_range_are_left_to_runtime_and_volume() -> None:
    noise = wobble(60, 1.0)
    steady = [
        Run(f"r{d}", MONDAY + timedelta(days=d), 600 * noise[d], 5000 * noise[59 - d])
        for d in range(60)
    ]
    slow = Run("slow", MONDAY + timedelta(days=60), 6000.0, 5000.0)
    assert multivariate.check(steady, slow, Sensitivity()) is None  # runtime reports it


def test_a_bimodal_job_still_gets_a_readable_range() -> None:
    history = paired_history(60)  # durations 2 or 20 min: the runtime range spans both
    slow = Run("slow", MONDAY + timedelta(days=60), 20_000.0, 1000.0)
    finding = multivariate.check(history, slow, Sensitivity())
    assert finding is not None
    assert finding.message.endswith("runs like it take 1.7\u20132.4 min")


def test_repeated_values_do_not_warn() -> None:
    history = [Run(f"r{d}", MONDAY + timedelta(days=d), 60.0, 100.0) for d in range(40)]
    run = Run("same", MONDAY + timedelta(days=40), 60.0, 100.0)
    assert multivariate.check(history, run, Sensitivity()) is None
