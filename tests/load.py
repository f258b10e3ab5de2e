"""Concurrent clients against real `pipewarden serve` processes, and the ledger of their answers.

The durability and replica tests post events from several threads, one by one and in
batches, to collectors that get killed, that share a database, or whose PostgreSQL goes
away. The ledger keeps every answer: which events were acknowledged (201 stored/duplicate,
or per item of a 200 batch answer), which were refused with a retryable 503, and anything
else (a 500, a dropped connection, a 503 without Retry-After), which these tests treat as a
problem. What the store holds is then read with SQLAlchemy and held against the ledger.
"""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select

from collector.store.tables import events, runs
from tests.events import dataset, run_event
from tests.shim_helpers import CLI, clean_env, free_port

Key = tuple[str, str]  # (runId, eventType): unique per event in these tests
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
NAMESPACE = "durability"
STATE_OF_END = {"COMPLETE": "COMPLETED", "FAIL": "FAILED"}


# --- the collector process ------------------------------------------------------------------


class Collector:
    """`pipewarden serve` on a given store, started, killed and restarted by the test.

    Each start takes a fresh free port; the output of every start goes to one log file.
    """

    def __init__(self, database_url: str, directory: Path, name: str = "collector", **env: str):
        self.database_url = database_url
        self.directory = directory
        self.log = directory / f"{name}.log"
        self.env = env
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start serving; returns at once (see `wait_healthy`)."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = clean_env(
            **{
                "PIPEWARDEN_DATABASE_URL": self.database_url,
                "PIPEWARDEN_LOG_LEVEL": "warning",
                # The history is from 2024: retention would remove what these tests count.
                "PIPEWARDEN_RETENTION_DAYS": "0",
                **self.env,
            }
        )
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [*CLI, "serve", "--port", str(port)],
                env=env,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def wait_healthy(self, timeout: float = START_TIMEOUT_S) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited {self.process.returncode}:\n{self.output()}")
            try:
                answer = httpx.get(f"{self.url}/healthz", timeout=2.0)
            except httpx.TransportError as error:
                last = repr(error)
            else:
                if answer.status_code == 200:
                    return
                last = f"{answer.status_code} {answer.text}"
            time.sleep(0.05)
        raise AssertionError(f"serve not healthy after {timeout}s ({last}):\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine's OOM killer strikes."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> int:
        """SIGTERM and wait; the exit status (0 after a graceful stop)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"serve did not stop on SIGTERM:\n{self.output()}") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-20_000:]


@contextlib.contextmanager
def serving(collector: Collector) -> Iterator[Collector]:
    """A started, healthy collector, stopped on the way out whatever happened."""
    collector.start()
    try:
        collector.wait_healthy()
        yield collector
    finally:
        if collector.process is not None and collector.process.poll() is None:
            collector.stop()


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One event to send, and the key it is found by in the store."""

    key: Key
    event: dict[str, Any]


def one_run(
    rng: random.Random, at: datetime, job: str, *, end: str = "COMPLETE"
) -> tuple[Planned, Planned]:
    """START and end events of a new run of `job`, reading and writing shared datasets."""
    run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    where = {"namespace": NAMESPACE, "job": job}
    source = dataset(f"public.source_{rng.randrange(4)}", row_count=None)
    target = dataset(f"public.target_{rng.randrange(4)}", row_count=rng.randrange(1, 1000))
    ended = at + timedelta(seconds=rng.randrange(1, 600))
    start = run_event("START", run_id=run_id, event_time=_stamp(at), **where, inputs=[source])
    finish = run_event(
        end, run_id=run_id, event_time=_stamp(ended), **where, inputs=[source], outputs=[target]
    )
    return Planned((run_id, "START"), start), Planned((run_id, end), finish)


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


class EventSource:
    """An endless, thread-safe supply of requests of never-sent events (seeded).

    A run's START and end usually land in different requests, often of different threads,
    so they race; jobs and datasets are shared by many runs, so their rows are contended.
    """

    def __init__(self, seed: int, jobs: int = 6, max_batch: int = 12) -> None:
        self._rng = random.Random(f"events-{seed}")
        self._jobs = [f"job_{seed}_{index}" for index in range(jobs)]
        self._max_batch = max_batch
        self._pending: list[Planned] = []
        self._at = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=seed)
        self._lock = threading.Lock()

    def next_request(self) -> list[Planned]:
        with self._lock:
            size = 1 if self._rng.random() < 0.5 else self._rng.randint(2, self._max_batch)
            while len(self._pending) < size:
                self._at += timedelta(minutes=1)
                end = "FAIL" if self._rng.random() < 0.1 else "COMPLETE"
                job = self._rng.choice(self._jobs)
                self._pending.extend(one_run(self._rng, self._at, job, end=end))
            self._rng.shuffle(self._pending)
            request, self._pending = self._pending[:size], self._pending[size:]
            return request


# --- answers --------------------------------------------------------------------------------


@dataclass
class Ledger:
    """Every event sent and every answer, from all client threads."""

    attempted: dict[Key, dict[str, Any]] = field(default_factory=dict)
    acknowledged: dict[Key, list[str]] = field(default_factory=dict)  # outcome per ack
    statuses: Counter[str] = field(default_factory=Counter)  # "201", "503", "dropped", …
    problems: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def acked(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def count(self, status: str) -> int:
        with self._lock:
            return self.statuses[status]

    def unacknowledged(self) -> list[Planned]:
        with self._lock:
            return [
                Planned(key, event)
                for key, event in self.attempted.items()
                if key not in self.acknowledged
            ]

    def send(self, client: httpx.Client, url: str, request: Sequence[Planned]) -> str:
        """Post the events (one alone, several as a batch) and record the answer's status."""
        with self._lock:
            for planned in request:
                self.attempted[planned.key] = planned.event
        try:
            if len(request) == 1:
                answer = client.post(f"{url}/api/v1/lineage", json=request[0].event)
            else:
                body = [planned.event for planned in request]
                answer = client.post(f"{url}/api/v1/lineage/batch", json=body)
        except httpx.TransportError as error:
            with self._lock:
                self.statuses["dropped"] += 1
                self.statuses[f"dropped: {type(error).__name__}"] += 1
            return "dropped"
        with self._lock:
            self.statuses[str(answer.status_code)] += 1
            self._judge(request, answer)
        return str(answer.status_code)

    def _judge(self, request: Sequence[Planned], answer: httpx.Response) -> None:
        if answer.status_code == 503:
            self._check_retryable(answer)
        elif len(request) == 1 and answer.status_code == 201:
            self._ack(request[0].key, answer.json()["status"])
        elif len(request) > 1 and answer.status_code == 200:
            for planned, result in zip(request, answer.json()["results"], strict=True):
                if result["status"] in ("stored", "duplicate"):
                    self._ack(planned.key, result["status"])
                else:
                    self.problems.append(f"batch item {result}")
        else:
            self.problems.append(f"{answer.status_code} {answer.text[:300]}")

    def _ack(self, key: Key, outcome: str) -> None:
        if outcome not in ("stored", "duplicate"):
            self.problems.append(f"acknowledged as {outcome!r}")
        self.acknowledged.setdefault(key, []).append(outcome)

    def _check_retryable(self, answer: httpx.Response) -> None:
        """A 503 must say when to retry and why, in the API's error shape."""
        retry_after = answer.headers.get("retry-after", "")
        body = answer.json()
        if not retry_after.isdigit() or int(retry_after) < 1:
            self.problems.append(f"503 without a usable Retry-After: {retry_after!r}")
        if body.get("code") != 503 or body.get("errors") != []:
            self.problems.append(f"503 not in the error shape: {body}")
        if "store is unavailable" not in str(body.get("message")):
            self.problems.append(f"503 that does not say the store is unavailable: {body}")


class Clients:
    """Client threads posting requests until told to stop (or their source runs dry)."""

    def __init__(self, ledger: Ledger, deadline_s: float = 120.0) -> None:
        self.ledger = ledger
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._deadline = time.monotonic() + deadline_s
        self.errors: list[BaseException] = []

    def add(
        self,
        url: Callable[[], str],
        requests: Callable[[], list[Planned] | None],
        *,
        stop_when_dropped: bool = False,
    ) -> None:
        """A thread sending `requests()` to `url()` until None, `stop`, or a dropped call."""
        thread = threading.Thread(target=self._loop, args=(url, requests, stop_when_dropped))
        self._threads.append(thread)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=max(1.0, self._deadline - time.monotonic() + 30))
            assert not thread.is_alive(), "a client thread did not finish"
        assert not self.errors, self.errors

    def _loop(
        self,
        url: Callable[[], str],
        requests: Callable[[], list[Planned] | None],
        stop_when_dropped: bool,
    ) -> None:
        try:
            with httpx.Client(timeout=30.0) as client:
                while not self._stop.is_set() and time.monotonic() < self._deadline:
                    request = requests()
                    if request is None:
                        return
                    status = self.ledger.send(client, url(), request)
                    if status == "dropped" and stop_when_dropped:
                        return
                    if status == "503":
                        time.sleep(0.05)  # as a client honouring Retry-After would pause
        except BaseException as error:  # surfaced by join()
            self.errors.append(error)


def wait_for(
    what: str, condition: Callable[[], bool], timeout: float, ledger: Ledger | None = None
) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            seen = f": {ledger.statuses}, {ledger.problems[:5]}" if ledger else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{seen}")
        time.sleep(0.02)


def from_list(requests: Sequence[list[Planned]]) -> Callable[[], list[Planned] | None]:
    """`requests` one after the other, then None (for one thread only)."""
    items = iter(requests)
    return lambda: next(items, None)


# --- the store ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """The run events and run states the store holds, and the events not derived yet."""

    events: Counter[Key]
    states: dict[str, str]
    pending: set[Key]


def read_store(database_url: str) -> Stored:
    """One statement, so one snapshot: a collector may be deriving while this reads."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(events.c.run_uuid, events.c.event_type, events.c.derived, runs.c.state)
                .select_from(events.outerjoin(runs, runs.c.uuid == events.c.run_uuid))
                .where(events.c.kind == "run")
            ).all()
    finally:
        engine.dispose()
    return Stored(
        events=Counter((str(row.run_uuid), str(row.event_type)) for row in rows),
        states={str(row.run_uuid): str(row.state) for row in rows if row.state is not None},
        pending={(str(row.run_uuid), str(row.event_type)) for row in rows if not row.derived},
    )


def wait_until_derived(database_url: str, ledger: Ledger | None = None) -> None:
    """Until every stored event is derived (a collector is running on the store)."""
    wait_for("every stored event derived", lambda: not read_store(database_url).pending, 60, ledger)


def check_store(stored: Stored, ledger: Ledger) -> None:
    """Every acknowledged event is stored, once; every stored event was sent; each stored
    run's state follows from its stored events derived so far (an event is derived after
    its commit: a crash in between leaves it to be derived after the restart).
    """
    twice = {key: count for key, count in stored.events.items() if count > 1}
    assert not twice, f"events stored more than once: {twice}"
    lost = set(ledger.acknowledged) - set(stored.events)
    assert not lost, f"{len(lost)} acknowledged events are not in the store: {sorted(lost)[:5]}"
    phantom = set(stored.events) - set(ledger.attempted)
    assert not phantom, f"events stored that were never sent: {sorted(phantom)[:5]}"
    expected: dict[str, str] = {}
    for run_id, event_type in set(stored.events) - stored.pending:
        expected[run_id] = STATE_OF_END.get(event_type, expected.get(run_id, "RUNNING"))
    wrong = {
        run_id: (stored.states.get(run_id), state)
        for run_id, state in expected.items()
        if stored.states.get(run_id) != state
    }
    assert not wrong, f"runs whose state does not follow from their events: {wrong}"
