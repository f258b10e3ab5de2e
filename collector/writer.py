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
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from collector.ingest import Incoming, Outcome, store

log = logging.getLogger(__name__)
T = TypeVar("T")


class WriterStopped(RuntimeError):
    """The writer is not running, so nothing can be stored."""


class StoreFailed(RuntimeError):
    """The store refused an event for a reason of its own (not the event's fault)."""


@dataclass
class _Job:
    """Events to store, or another write (`action`) to run in the writer's transaction."""

    items: Sequence[Incoming] = ()
    action: Callable[[Connection], Any] | None = None
    future: Future[Any] = field(default_factory=Future)

    @property
    def size(self) -> int:
        return len(self.items) or 1


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
        return self._enqueue(_Job(items=items))

    async def write(self, action: Callable[[Connection], T]) -> T:
        """Run another write (a gate decision, feedback) in the writer, committed on return."""
        result: T = await asyncio.wrap_future(self._enqueue(_Job(action=action)))
        return result

    def write_sync(self, action: Callable[[Connection], T]) -> T:
        """`write` for threads other than the event loop's (the evaluator)."""
        result: T = self._enqueue(_Job(action=action)).result()
        return result

    def _enqueue(self, job: _Job) -> Future[Any]:
        if self._thread is None:
            raise WriterStopped("the writer is not running")
        self._queue.put(job)
        return job.future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            group = [first]
            size = first.size
            while size < self._max_group:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is None:
                    stopping = True
                    break
                group.append(following)
                size += following.size
            self._write_group(group)

    def _write_group(self, group: list[_Job]) -> None:
        received_at = datetime.now(UTC)
        try:
            with self._engine.begin() as connection:
                results = [_perform(connection, job, received_at) for job in group]
        except Exception:
            log.warning("group of %d requests failed; storing them one by one", len(group))
            for job in group:
                self._write_alone(job, received_at)
            return
        for job, result in zip(group, results, strict=True):
            job.future.set_result(result)

    def _write_alone(self, job: _Job, received_at: datetime) -> None:
        if job.action is not None:
            try:
                with self._engine.begin() as connection:
                    job.future.set_result(job.action(connection))
            except Exception as error:
                job.future.set_exception(error)
            return
        outcomes: list[Outcome | StoreFailed] = []
        try:
            with self._engine.begin() as connection:
                outcomes = [_store_isolated(connection, item, received_at) for item in job.items]
        except Exception as error:  # the commit itself failed: nothing of this job is stored
            log.exception("storing %d events failed", len(job.items))
            outcomes = [StoreFailed(_first_line(error))] * len(job.items)
        job.future.set_result(outcomes)


def _perform(connection: Connection, job: _Job, received_at: datetime) -> Any:
    if job.action is not None:
        return job.action(connection)
    return [store(connection, item, received_at) for item in job.items]


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
