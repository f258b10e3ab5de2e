"""The evaluator judges finished runs as they come, and yields to ingestion while it is busy."""

from __future__ import annotations

import time
from typing import cast

from sqlalchemy import Engine

from collector.detection import Detection
from collector.evaluator import Evaluator

RUN_S = 0.6


class _EndlessWork:
    """A Detection with always more runs to judge, each group taking a little CPU time."""

    def __init__(self) -> None:
        self.groups = 0

    def judge_pending(self, limit: int = 200) -> int:
        self.groups += 1
        deadline = time.monotonic() + 0.01
        while time.monotonic() < deadline:
            pass
        return limit


def _groups_judged(busy: bool) -> int:
    work = _EndlessWork()
    detection = cast(Detection, work)
    evaluator = Evaluator(cast(Engine, None), detection, 3600, busy=lambda: busy)
    evaluator.start()
    time.sleep(RUN_S)
    evaluator.stop()
    return work.groups


def test_judging_takes_a_small_share_of_the_time_while_events_arrive() -> None:
    idle, busy = _groups_judged(busy=False), _groups_judged(busy=True)
    assert busy < idle / 2, (busy, idle)
    assert busy > 0
