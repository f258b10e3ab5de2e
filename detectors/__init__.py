"""pipewarden's detectors: pure functions from a job's or dataset's history to findings.

No database, HTTP, environment or clock: the collector builds the inputs (detectors.model)
from stored runs and passes the time. One detector per module:

- runtime.check / expect: a run's duration against its expected (seasonal) range
- volume.check / expect: rows or bytes written to an output, drops, spikes and empty loads
- freshness.missed: expected runs (schedule or learned cadence) that did not start
- overrun.check: a run still going past its expected high bound
- schema.diff / findings: columns added, removed, retyped, renamed; breaking or not
- failures.check: a streak of failed runs
- multivariate.check: an unusual combination of duration, rows and time of week

POINT_DETECTORS lists those that judge one run's metric against the earlier ones, keyed
by the metric the collector feeds them.
"""

from __future__ import annotations

from typing import Final

from detectors import runtime, volume
from detectors.model import PointDetector

POINT_DETECTORS: Final[tuple[tuple[str, PointDetector], ...]] = (
    ("duration", runtime.check),
    ("rows", volume.check),
)
