"""The periodic evaluator: judges finished runs, finds overruns and missed runs live, and
prunes old history (see collector/retention.py).

One thread per collector. Judging a run is claimed row by row (a conditional UPDATE), and the
time-driven checks of a tick are claimed with a PostgreSQL advisory lock, so several
collectors on one database never both do the same piece of work.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from collector.detection import Detection
from collector.retention import Retention
from collector.store.errors import is_unavailable, reason

log = logging.getLogger(__name__)
_TICK_LOCK = 7_316_240_202  # any fixed number: the advisory lock of the time-driven checks
JUDGE_GROUP = 20  # runs judged between looks at whether events are arriving
BUSY_SHARE = 0.25  # of the time spent judging while they are


class Evaluator:
    def __init__(
        self,
        engine: Engine,
        detection: Detection,
        interval: float,
        retention: Retention | None = None,
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        self._engine = engine
        self._busy = busy  # whether events are arriving now
        self._detection = detection
        self._interval = interval
        self._retention = retention
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pipewarden-evaluator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def wake(self) -> None:
        """Judge newly finished runs now rather than at the next tick."""
        self._wake.set()

    def _run(self) -> None:
        last_tick = datetime.now(UTC).timestamp()  # the first tick one interval after start
        while not self._stopping.is_set():
            try:
                self._judge_pending()
                now = datetime.now(UTC)
                if now.timestamp() - last_tick >= self._interval:
                    last_tick = now.timestamp()
                    self.tick(now)
            except Exception as error:
                if is_unavailable(error):
                    log.warning("evaluator: %s; retrying at the next tick", reason(error))
                else:
                    log.exception("evaluator pass failed; retrying at the next tick")
            self._wake.wait(self._interval)
            self._wake.clear()

    def _judge_pending(self) -> None:
        """Judge every finished run not judged yet; while events keep arriving, take at
        most `BUSY_SHARE` of the time, so detection never slows ingestion much."""
        while not self._stopping.is_set():
            started = time.monotonic()
            if not self._detection.judge_pending(JUDGE_GROUP):
                return
            if self._busy():
                self._stopping.wait((time.monotonic() - started) * (1 / BUSY_SHARE - 1))

    def tick(self, now: datetime) -> None:
        """The time-driven checks, by one collector at a time."""
        if self._retention is not None:
            self._retention.run_due(now)  # claimed on its own lock
        with self._engine.connect() as connection:
            postgres = connection.dialect.name == "postgresql"
            if postgres:
                locked = connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": _TICK_LOCK}
                ).scalar()
                if not locked:
                    return
            try:
                self._detection.check_overruns(now)
                self._detection.check_freshness(now)
            finally:
                if postgres:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _TICK_LOCK})
