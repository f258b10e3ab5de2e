"""The one writer: every request's events are committed by one thread, in groups.

Requests hand their validated events to the writer and wait; the writer takes everything
queued, stores it in one transaction and commits before any of those requests is answered
(group commit: one fsync for many events, and SQLite's single-writer rule kept by design).
If a group fails, each event is retried alone so one bad event cannot sink the others.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine

from collector.ingest import Incoming, Outcome, store

log = logging.getLogger(__name__)


class WriterStopped(RuntimeError):
    """The writer is not running, so nothing can be stored."""


class StoreFailed(RuntimeError):
    """The store refused an event for a reason of its own (not the event's fault)."""


@dataclass
class _Job:
    items: Sequence[Incoming]
    future: Future[list[Outcome | StoreFailed]] = field(default_factory=Future)


class Writer:
    """Owns all writes to the store; `submit` returns once the events are committed."""

    def __init__(self, engine: Engine, max_group: int = 2000) -> None:
        self._engine = engine
        self._max_group = max_group
        self._queue: queue.Queue[_Job | None] = queue.Queue()  # None: stop
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pipewarden-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    async def submit(self, items: Sequence[Incoming]) -> list[Outcome | StoreFailed]:
        """Store events; one outcome per event, in order, after the commit."""
        return await asyncio.wrap_future(self.submit_nowait(items))

    def submit_nowait(self, items: Sequence[Incoming]) -> Future[list[Outcome | StoreFailed]]:
        if self._thread is None:
            raise WriterStopped("the writer is not running")
        job = _Job(items)
        self._queue.put(job)
        return job.future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            group = [first]
            size = len(group[0].items)
            while size < self._max_group:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is None:
                    stopping = True
                    break
                group.append(following)
                size += len(following.items)
            self._write_group(group)

    def _write_group(self, group: list[_Job]) -> None:
        received_at = datetime.now(UTC)
        try:
            with self._engine.begin() as connection:
                results = [
                    [store(connection, item, received_at) for item in job.items] for job in group
                ]
        except Exception:
            log.warning("group of %d requests failed; storing them one by one", len(group))
            for job in group:
                self._write_alone(job, received_at)
            return
        for job, outcomes in zip(group, results, strict=True):
            job.future.set_result(list(outcomes))

    def _write_alone(self, job: _Job, received_at: datetime) -> None:
        outcomes: list[Outcome | StoreFailed] = []
        try:
            with self._engine.begin() as connection:
                outcomes = [_store_isolated(connection, item, received_at) for item in job.items]
        except Exception as error:  # the commit itself failed: nothing of this job is stored
            log.exception("storing %d events failed", len(job.items))
            outcomes = [StoreFailed(_first_line(error))] * len(job.items)
        job.future.set_result(outcomes)


def _store_isolated(
    connection: Connection, item: Incoming, received_at: datetime
) -> Outcome | StoreFailed:
    try:
        with connection.begin_nested():
            return store(connection, item, received_at)
    except Exception as error:
        log.exception("storing an event failed")
        return StoreFailed(_first_line(error))


def _first_line(error: Exception) -> str:
    """What went wrong, without the SQL statement and parameters the driver appends."""
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
