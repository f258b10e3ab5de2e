"""The background process `pipewarden serve` starts beside the one answering requests.

Deriving runs, jobs, datasets and lineage from stored events, judging finished runs and the
evaluator's timed checks are CPU work in Python: in the serving process they take turns with
requests for one interpreter lock (about a quarter of its time under steady ingestion). In
a second process they run on another core. The serving process tells it, over a pipe, how
many events each commit stored and asks it to `settle`; it answers once those are derived.

That is the default on PostgreSQL (single events 1.4 times faster on two cores). On SQLite
both processes would need its one write lock: the serving side then waits out the other's
derivation plus SQLite's busy-handler sleeps, and measured slower than one process.

Nothing depends on the pipe for safety: events are durable before their requests are
answered, and whatever is pending when a process stops or dies is derived by the next one
(it counts what is pending at start). If the background process dies, the serving process
logs it and starts another.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import multiprocessing
import signal
import threading
import time
from concurrent.futures import Future
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import Any

from sqlalchemy import Engine

from collector.detection import Detection
from collector.evaluator import Evaluator
from collector.lineage import parsed
from collector.policy import PolicyHolder
from collector.retention import Retention
from collector.settings import Settings
from collector.store.engine import make_engine
from collector.writer import Writer

log = logging.getLogger(__name__)
START_WAIT_S = 60.0  # for the background process to be ready
STOP_WAIT_S = 30.0  # for the background process to derive what is pending and stop
RESTART_DELAY_S = 1.0  # before starting another background process after one died
REPORT_S = 1.0  # how often the background process reports what it counted


def start_detection(
    settings: Settings, engine: Engine, writer: Writer, policy: PolicyHolder
) -> Evaluator:
    """The evaluator judging what `writer` derives, started; in whichever process derives."""
    detection = Detection(engine, writer.write_sync, lambda: policy.current)
    retention = Retention(engine, writer.write_sync, settings.retention_days)
    evaluator = Evaluator(
        engine, detection, settings.evaluator_interval, retention, lambda: writer.busy
    )
    writer.on_derived = evaluator.wake  # newly derived finished runs are judged now
    evaluator.start()
    return evaluator


class BackgroundProcess:
    """The serving process's end: starts the background process and talks to it (a `Deriver`)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._context = multiprocessing.get_context("spawn")  # no threads copied by fork
        self._send_lock = threading.Lock()
        self._connection: Connection | None = None
        self._process: SpawnProcess | None = None
        self._stopping = False
        self._ready = threading.Event()  # set by its first message, or by its early death
        self._up = False  # whether one has ever been ready: else a death is not restarted
        self._asks = itertools.count(1)
        self._waiting: dict[int, Future[None]] = {}
        self._stored = 1  # commits told, counting the pending events of a previous run as one
        self._settled = 0  # the last of those the background process has derived
        self._failures_seen = 0  # SQL parse failures it reported, added to this process's

    def start(self) -> None:
        """Start the background process and wait until it is ready."""
        self._spawn()
        if not self._ready.wait(START_WAIT_S):
            raise RuntimeError(f"the background process did not start in {START_WAIT_S:g} s")
        if not self._up:
            code = self._process.exitcode if self._process is not None else None
            raise RuntimeError(f"the background process failed at start (exit code {code})")

    def _spawn(self) -> None:
        self._ready.clear()
        self._failures_seen = 0
        ours, theirs = self._context.Pipe()
        self._process = self._context.Process(
            target=_serve_background,
            args=(self._settings, theirs, self._stored),
            name="pipewarden-background",
            daemon=True,
        )
        self._process.start()
        theirs.close()
        self._connection = ours
        reader = threading.Thread(
            target=self._read, args=(ours,), name="pipewarden-background-reader", daemon=True
        )
        reader.start()

    def stop(self) -> None:
        """Let the background process derive what is pending (up to `STOP_WAIT_S`), then stop."""
        self._stopping = True
        self._send(("stop",))
        if self._process is not None:
            self._process.join(STOP_WAIT_S)
            if self._process.is_alive():
                log.warning("the background process did not stop in %g s; ending it", STOP_WAIT_S)
                self._process.kill()
                self._process.join()
        if self._connection is not None:
            self._connection.close()

    def stored(self, count: int) -> None:
        if count:
            self._stored += 1
            self._send(("stored", count, self._stored))

    def reload(self) -> None:
        """Have the background process read the policy file again (SIGHUP)."""
        self._send(("reload",))

    async def settle(self, timeout: float) -> None:
        if self._settled >= self._stored:
            return  # nothing committed since the last answer
        ask = next(self._asks)
        answered: Future[None] = Future()
        self._waiting[ask] = answered
        if not self._send(("settle", ask)):
            self._waiting.pop(ask, None)
            return  # no background process now: answer from what is derived
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(answered)), timeout)

    def _send(self, message: tuple[Any, ...]) -> bool:
        """Whether the message went; not while the background process is down."""
        with self._send_lock:
            if self._connection is None:
                return False
            try:
                self._connection.send(message)
            except (OSError, ValueError):  # the process died; the reader starts another
                return False
        return True

    def _read(self, connection: Connection) -> None:
        """Answers from the background process; when it dies, another is started."""
        while True:
            try:
                kind, ask, value = connection.recv()
            except (EOFError, OSError):
                break
            if kind == "ready":
                self._up = True
                self._ready.set()
            elif kind == "parse_failures":  # its count since it started
                parsed.count_failures(value - self._failures_seen)
                self._failures_seen = value
            elif kind == "settled":  # the commits it covers are derived
                self._settled = max(self._settled, value)
                waiting = self._waiting.pop(ask, None)
                if waiting is not None:
                    waiting.set_result(None)
        with self._send_lock:
            self._connection = None
        while self._waiting:
            self._waiting.popitem()[1].set_result(None)  # reads go on, from what is derived
        if self._stopping or not self._up:
            self._ready.set()  # a start that failed is reported by `start`, not retried
            return
        if self._process is not None:
            self._process.join(STOP_WAIT_S)  # its pipe closed: it is ending
            log.error(
                "the background process stopped (exit code %s); starting another",
                self._process.exitcode,
            )
        time.sleep(RESTART_DELAY_S)
        self._stored += 1  # what it left pending is for the next one
        try:
            self._spawn()
        except Exception:
            log.exception("the background process could not be started again")


def _serve_background(settings: Settings, connection: Connection, told: int) -> None:
    """The background process: its own writer derives, its evaluator judges, until told to
    stop or the serving process is gone. `told` counts the commits the serving process has
    told of; a settle's answer carries the count it covers."""
    # Ctrl-C and `kill` of the group reach every process: the serving process stops this one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    engine = make_engine(settings.database_url)
    writer_engine = make_engine(settings.database_url, writer=True)
    writer = Writer(writer_engine, backlog=settings.derivation_backlog)
    writer.start()
    policy = PolicyHolder(settings)
    evaluator = start_detection(settings, engine, writer, policy)
    answering = threading.Lock()

    def answer(ask: int, settled: int, _: object = None) -> None:
        with answering, contextlib.suppress(OSError):
            connection.send(("settled", ask, settled))

    with answering:
        connection.send(("ready", 0, told))
    reported = 0  # SQL parse failures, counted here, for the serving process's /metrics
    try:
        while True:
            try:
                waiting = connection.poll(REPORT_S)
                counted = parsed.parse_failures()
                if counted != reported:
                    reported = counted
                    with answering:
                        connection.send(("parse_failures", 0, reported))
                if not waiting:
                    continue
                message = connection.recv()
            except (EOFError, OSError):
                break  # the serving process is gone
            if message[0] == "stored":
                writer.notice(message[1])
                told = message[2]
            elif message[0] == "settle":
                settled = functools.partial(answer, message[1], told)
                writer.settle_nowait().add_done_callback(settled)
            elif message[0] == "reload":
                policy.reload()
            else:
                break
    finally:
        evaluator.stop()
        writer.stop()  # derives what is pending first (for up to 10 s)
        writer_engine.dispose()
        engine.dispose()
