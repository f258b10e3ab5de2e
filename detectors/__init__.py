"""pipewarden's detectors: pure functions from a job's or dataset's history to findings.

No database, HTTP, environment or clock: the collector builds the inputs (detectors.model)
from stored runs and passes the time. One detector per module:

- runtime.check / expect: a run's duration against its expected (seasonal) range
- volume.check / expect: rows or bytes written to an output, drops, spikes and empty loads
- freshness.missed: expected runs (schedule or learned cadence) that did not start
- overrun.check: a run still going past its expected high bound
- schema.diff / findings: columns added, removed, retyped, renamed; breaking or not
- failures.check: a streak of failed runs
- multivariate.check: an unusual combination of duration, rows and time of week (opt-in,
  scikit-learn)

Shared by runtime, volume and overrun: baseline (the expected range: log space, robust,
seasonal, level shifts, feedback) and text (numbers as a person reads them).

POINT_DETECTORS lists those that judge one run's metric against the earlier ones, with
the metric the collector feeds them (volume.check also takes metric="bytes"); EXPECTATIONS
the ranges a dashboard draws for the same metrics.
"""

from __future__ import annotations

from typing import Final

from detectors import runtime, volume
from detectors.model import Expecter, PointDetector

POINT_DETECTORS: Final[tuple[tuple[str, PointDetector], ...]] = (
    ("duration", runtime.check),
    ("rows", volume.check),
)
EXPECTATIONS: Final[tuple[tuple[str, Expecter], ...]] = (
    ("duration", runtime.expect),
    ("rows", volume.expect),
)
