"""The one writer: every request's events are committed by one thread, in groups.

Requests hand their validated events to the writer and wait; the writer takes everything
queued, stores the raw events in one transaction and commits before any of those requests
is answered (group commit: one fsync for many events, and SQLite's single-writer rule kept
by design). If a group fails, each event is retried alone so one bad event cannot sink the
others.

Deriving runs, jobs, datasets and lineage from the events comes after, in transactions of
up to `DERIVE_CHUNK` events: once no request has come for `IDLE_S`, when a read asks for
it (`settle`), and between request groups, in smaller transactions that stall requests less,
at least every `LAG_S` or while more than `backlog` events wait. A burst is
answered at the speed of the raw insert and derived in large, cheaper groups; what a crash
leaves pending is derived after the next start.

When the store is away or busy (connection lost or refused, PostgreSQL restarting, SQLite
locked) the waiting requests are refused with `StoreUnavailable` (a 503: send again) and the
writer carries on; a deadlock between collectors sharing PostgreSQL is retried a few times
first. A request is only ever told its events are stored after their commit.

With a `Deriver` (`pipewarden serve` on PostgreSQL, see `collector.background`) another
process derives: this writer only tells it how many events each commit stored, and `settle`
asks it; that process's own writer derives them as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine

from collector.ingest import (
    Incoming,
    Outcome,
    claim_rows,
    derive_pending,
    store_pending,
)
from collector.store import reads, writes
from collector.store.errors import StoreUnavailable, is_conflict, is_unavailable, reason

log = logging.getLogger(__name__)
T = TypeVar("T")
CONFLICT_ATTEMPTS = 5  # tries of a transaction that deadlocked with another collector's
IDLE_S = 0.05  # derive pending events once no request has come for this long
LAG_S = 0.25  # and under steady load, `BUSY_CHUNK` events at least this often
BUSY_CHUNK = 250
BUSY_S = 0.25  # events came this recently: the writer is busy (background work yields)
DERIVE_CHUNK = 1000  # events derived per transaction
STOP_DERIVING_S = 10.0  # at stop, derive what is pending for at most this long
KEEP_VALIDATED = DERIVE_CHUNK  # pending events kept validated in memory, not read again


class WriterStopped(StoreUnavailable):
    """The writer is not running, so nothing can be stored."""


class StoreFailed(RuntimeError):
    """The store refused an event for a reason of its own (not the event's fault)."""


class Deriver(Protocol):
    """Another process that derives the events this writer stores."""

    def stored(self, count: int) -> None:
        """`count` more events were committed; called before their requests are answered."""

    async def settle(self, timeout: float) -> None:
        """Wait until the events committed so far are derived, or `timeout` seconds."""


@dataclass
class _Job:
    """Events to store, or another write (`action`) to run in the writer's transaction."""

    items: Sequence[Incoming] = ()
    action: Callable[[Connection], Any] | None = None
    settle: bool = False  # answered once every event committed before it is derived
    noticed: int = 0  # events another process stored, for this writer to derive
    future: Future[Any] = field(default_factory=Future)

    @property
    def size(self) -> int:
        return len(self.items) or 1


class Writer:
    """Owns all writes to the store; `submit` returns once the events are committed."""

    def __init__(
        self,
        engine: Engine,
        max_group: int = 2000,
        backlog: int = 250_000,
        deriver: Deriver | None = None,
    ) -> None:
        self._engine = engine
        self._deriver = deriver  # derives elsewhere: this writer only stores
        self._max_group = max_group
        self._backlog = backlog
        self.on_derived: Callable[[], None] = lambda: None  # told after each derivation pass
        self._queue: queue.Queue[_Job | None] = queue.Queue()  # None: stop
        self._thread: threading.Thread | None = None
        self.pending = 0  # events committed and not derived yet, as far as this writer knows
        self._derived_at = time.monotonic()  # when derivation last ran
        self._request_at = 0.0  # when events last came
        self._validated: dict[str, Incoming] = {}  # pending events by content hash

    def start(self) -> None:
        if self._thread is None:
            if self._deriver is None:
                with self._engine.connect() as connection:
                    self.pending = reads.count_pending_events(connection)  # a crash's leftovers
            self._thread = threading.Thread(target=self._run, name="pipewarden-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def submit(self, items: Sequence[Incoming]) -> list[Outcome | StoreFailed]:
        """Store events; one outcome per event, in order, after the commit.

        Raises `StoreUnavailable` when the store cannot take them now (nothing stored, or
        at most what a commit cut off by a lost connection kept: sent again, a duplicate).
        """
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

    async def settle(self, timeout: float) -> None:
        """Wait until the events committed so far are derived, or `timeout` seconds.

        Reads call it so what a client was told is stored shows in what it reads next; a
        read during a large backlog is answered after `timeout` from what is derived.
        """
        if self._deriver is not None:
            await self._deriver.settle(timeout)
            return
        if self.pending == 0:
            return
        waiting = asyncio.wrap_future(self.settle_nowait())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(waiting), timeout)

    def settle_nowait(self) -> Future[None]:
        """`settle` without a timeout, for other threads: done once derived."""
        return self._enqueue(_Job(settle=True))

    def notice(self, count: int) -> None:
        """Another process stored `count` events: derive them as if this writer had."""
        self._enqueue(_Job(noticed=count))

    @property
    def busy(self) -> bool:
        """Whether events came in the last `BUSY_S` seconds."""
        return time.monotonic() - self._request_at < BUSY_S

    def _enqueue(self, job: _Job) -> Future[Any]:
        if not self.alive:
            raise WriterStopped("the writer is not running")
        if job.items or job.noticed:
            self._request_at = time.monotonic()
        self._queue.put(job)
        return job.future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            group, stopping = self._take_group(IDLE_S if self.pending else None)
            requests = [job for job in group if not job.settle and not job.noticed]
            for job in group:
                if job.noticed:
                    self.pending += job.noticed
                    job.future.set_result(None)
            try:
                self._write_group(requests)
            except Exception as error:  # a fault of the writer's own must not stop it
                log.exception("the writer failed %d requests", len(requests))
                for job in requests:
                    if not job.future.done():
                        job.future.set_exception(StoreUnavailable(reason(error)))
            settles = [job for job in group if job.settle]
            if settles:
                self._derive_guarded(until=math.inf)
            elif self.pending and not group:
                self._derive_guarded(until=0)  # one chunk, then back to see if requests came
            elif self.pending and self._behind():
                self._derive_guarded(until=0, chunk=BUSY_CHUNK)  # a short stall for requests
            for job in settles:
                job.future.set_result(None)
        self._derive_guarded(until=time.monotonic() + STOP_DERIVING_S)

    def _derive_guarded(self, until: float, chunk: int = DERIVE_CHUNK) -> None:
        """`_derive`, whose faults are logged: the events stay pending, the writer goes on."""
        try:
            self._derive(until, chunk)
        except Exception:
            log.exception("deriving events failed; they stay pending and are tried again")

    def _take_group(self, idle: float | None) -> tuple[list[_Job], bool]:
        """The queued jobs (up to `max_group` events) whose requests still wait, and
        whether the writer is told to stop after them; none if nothing came for `idle` s."""
        group: list[_Job] = []
        size = 0
        try:
            following = self._queue.get(timeout=idle)
        except queue.Empty:
            return group, False
        while following is not None:
            # A request cancelled while queued (its client gone) is not written.
            if following.future.set_running_or_notify_cancel():
                group.append(following)
                size += following.size
            if size >= self._max_group:
                return group, False
            try:
                following = self._queue.get_nowait()
            except queue.Empty:
                return group, False
        return group, True

    def _behind(self) -> bool:
        """Whether derivation must go on while requests keep coming."""
        waited = time.monotonic() - self._derived_at
        return self.pending >= self._backlog or waited >= LAG_S

    def _derive(self, until: float, chunk: int = DERIVE_CHUNK) -> None:
        """Derive pending events `chunk` per transaction: one chunk, then more while any
        are pending and the clock (`time.monotonic`) is before `until`."""
        derived = 0
        while self.pending:
            try:
                with self._engine.begin() as connection:
                    taken = derive_pending(connection, chunk, self._validated)
            except Exception as error:
                if is_unavailable(error):
                    log.warning("deriving events: store unavailable: %s", reason(error))
                    break  # the events stay pending; tried again at the next pass
                log.warning("deriving %d events failed; deriving them one by one", chunk)
                taken = self._derive_alone(chunk)
            self.pending = self.pending - taken if taken == chunk else 0
            if not self.pending:
                self._validated.clear()  # another collector derived the rest
            derived += taken
            if time.monotonic() >= until:
                break
        self._derived_at = time.monotonic()
        if derived:
            self.on_derived()

    def _derive_alone(self, count: int) -> int:
        """Derive up to `count` pending events each in its own transaction; an event whose
        derivation fails is kept as stored and marked derived, so it cannot block the rest."""
        taken = 0
        for _ in range(count):
            try:
                with self._engine.begin() as connection:
                    done = derive_pending(connection, 1)
            except Exception:
                log.exception("deriving a stored event failed; it is kept, not derived")
                with self._engine.begin() as connection:
                    oldest = writes.pending_events(connection, 1)
                    writes.mark_derived(connection, [row.id for row in oldest])
                    done = len(oldest)
            if not done:
                break
            taken += done
        return taken

    def _write_group(self, group: list[_Job]) -> None:
        if not group:
            return
        received_at = datetime.now(UTC)
        try:
            with self._engine.begin() as connection:
                claim_rows(connection, [item for job in group for item in job.items])
                results = _perform(connection, group, received_at)
        except Exception as error:
            if is_unavailable(error) and not is_conflict(error):
                log.warning("store unavailable, %d requests refused: %s", len(group), reason(error))
                for job in group:
                    job.future.set_exception(StoreUnavailable(reason(error)))
                return
            log.warning("group of %d requests failed; storing them one by one", len(group))
            for job in group:
                self._write_alone(job, received_at)
            return
        for job, result in zip(group, results, strict=True):
            self._answer(job, result)

    def _write_alone(self, job: _Job, received_at: datetime) -> None:
        """One request in a transaction of its own, each event in a savepoint; a deadlock
        with another collector is tried again."""
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                with self._engine.begin() as connection:
                    result = _perform_isolated(connection, job, received_at)
            except Exception as error:
                if is_conflict(error) and attempt < CONFLICT_ATTEMPTS:
                    time.sleep(random.uniform(0.01, 0.05) * 2**attempt)
                    continue
                _refuse(job, error)
                return
            self._answer(job, result)
            return

    def _answer(self, job: _Job, result: Any) -> None:
        """Tell the waiting request its result, counting its stored events as pending."""
        if job.action is None:
            stored = result.count(Outcome.STORED)
            if self._deriver is not None:
                self._deriver.stored(stored)
            else:
                self.pending += stored
                for item, outcome in zip(job.items, result, strict=True):
                    if outcome is Outcome.STORED and len(self._validated) < KEEP_VALIDATED:
                        self._validated[item.content_hash] = item
        job.future.set_result(result)


def _perform(connection: Connection, group: Sequence[_Job], received_at: datetime) -> list[Any]:
    """Each job's result, in order: the events of consecutive requests are stored together,
    and an action runs after the events queued before it and before those queued after it."""
    results: list[Any] = []
    requests: list[_Job] = []  # consecutive requests whose events are not stored yet
    for job in group:
        if job.action is None:
            requests.append(job)
            continue
        results += _store_requests(connection, requests, received_at)
        requests = []
        results.append(job.action(connection))
    return results + _store_requests(connection, requests, received_at)


def _store_requests(
    connection: Connection, requests: Sequence[_Job], received_at: datetime
) -> list[list[Outcome]]:
    """Several requests' events stored in one statement; each request's outcomes."""
    if not requests:
        return []
    items = [item for job in requests for item in job.items]
    outcomes = store_pending(connection, items, received_at)
    ends = list(itertools.accumulate(len(job.items) for job in requests))
    return [outcomes[end - len(job.items) : end] for job, end in zip(requests, ends, strict=True)]


def _perform_isolated(connection: Connection, job: _Job, received_at: datetime) -> Any:
    if job.action is not None:
        return job.action(connection)
    claim_rows(connection, job.items)
    return [_store_isolated(connection, item, received_at) for item in job.items]


def _refuse(job: _Job, error: Exception) -> None:
    """The request's transaction failed: retryable when the store is at fault for now."""
    if is_unavailable(error):
        log.warning("store unavailable, a request refused: %s", reason(error))
        job.future.set_exception(StoreUnavailable(reason(error)))
    elif job.action is not None:
        job.future.set_exception(error)
    else:  # the commit itself failed: nothing of this job is stored
        log.error("storing %d events failed", len(job.items), exc_info=error)
        job.future.set_result([StoreFailed(reason(error))] * len(job.items))


def _store_isolated(
    connection: Connection, item: Incoming, received_at: datetime
) -> Outcome | StoreFailed:
    try:
        with connection.begin_nested():
            return store_pending(connection, [item], received_at)[0]
    except Exception as error:
        if is_unavailable(error):  # not this event's fault: the whole request is refused
            raise
        log.exception("storing an event failed")
        return StoreFailed(reason(error))
