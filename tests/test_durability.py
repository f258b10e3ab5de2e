"""Nothing acknowledged is lost when the collector is killed with SIGKILL under load.

A real `pipewarden serve` takes events from several client threads (single events and
batches, runs whose START and end race each other) and is SIGKILLed at a seeded moment:
when a seeded number of events has been acknowledged. It is started again on the same store
with no manual step, more load follows, it is killed again, and after the last restart
every event that was ever acknowledged must be in the store exactly once, and once the
restarted collector has derived what the kills left pending, the run states follow from the
stored events. The events in flight at a kill were not acknowledged
and may or may not be stored; sent again, each is answered stored or duplicate, and still
stored once. Both backends: SQLite (WAL, synchronous=FULL) and PostgreSQL.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests import postgres
from tests.load import (
    Clients,
    Collector,
    EventSource,
    Ledger,
    check_store,
    read_store,
    serving,
    wait_for,
    wait_until_derived,
)

pytestmark = pytest.mark.e2e

SEED = 8
KILLS = 3
CLIENT_THREADS = 4


def test_every_acknowledged_event_survives_kill_9(database_url: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    ledger = Ledger()
    source = EventSource(SEED)
    collector = Collector(database_url, tmp_path)
    figures: list[str] = []
    try:
        for kill in range(1, KILLS + 1):
            collector.start()
            collector.wait_healthy()
            check_store(read_store(database_url), ledger)  # all acknowledged so far, after a kill
            threshold = ledger.acked + rng.randint(60, 300)
            clients = Clients(ledger)
            for _ in range(CLIENT_THREADS):
                clients.add(lambda: collector.url, source.next_request, stop_when_dropped=True)
            clients.start()
            try:
                wait_for(f"{threshold} acknowledged", _acked(ledger, threshold), 60, ledger)
            finally:
                collector.kill()
                clients.join()  # each thread stops at its first dropped connection
            stored = read_store(database_url)
            in_flight = ledger.unacknowledged()
            figures.append(
                f"kill {kill}: {ledger.acked} acknowledged, {sum(stored.events.values())} stored, "
                f"{len(in_flight)} sent but not acknowledged, of which "
                f"{sum(p.key in stored.events for p in in_flight)} stored"
            )
            assert ledger.problems == [], ledger.problems

        collector.start()
        collector.wait_healthy()
        check_store(read_store(database_url), ledger)
        _send_again_one_by_one(collector.url, ledger)
        assert ledger.unacknowledged() == []
        wait_until_derived(database_url, ledger)  # what the kills left pending, too
        check_store(read_store(database_url), ledger)
        assert collector.stop() == 0, collector.output()
    finally:
        collector.kill()  # nothing once stopped; a failed check must not leave serve running
    assert ledger.problems == [], ledger.problems
    print("\n".join(figures), ledger.statuses)


def _acked(ledger: Ledger, count: int) -> Callable[[], bool]:
    return lambda: ledger.acked >= count


def _send_again_one_by_one(url: str, ledger: Ledger) -> None:
    """What was in flight at the kills, sent again: stored now, or found already stored."""
    with httpx.Client(timeout=30.0) as client:
        for planned in ledger.unacknowledged():
            assert ledger.send(client, url, [planned]) == "201"


def test_postgresql_restarting_under_load_loses_nothing(tmp_path: Path) -> None:
    """PostgreSQL stopped (fast shutdown) and started again while clients post.

    Meanwhile every answer is a retryable 503 with Retry-After — never a 500, never a
    dropped connection, never a 201 for an event that was not committed — and /healthz is
    503; once PostgreSQL is back the collector reconnects by itself and stores again.
    """
    ledger = Ledger()
    source = EventSource(SEED + 1)
    with (
        postgres.throwaway_server() as server,
        serving(Collector(server.url, tmp_path)) as collector,
    ):
        clients = Clients(ledger)
        for _ in range(CLIENT_THREADS - 1):
            clients.add(lambda: collector.url, source.next_request)
        clients.start()
        try:
            wait_for("100 acknowledged events", _acked(ledger, 100), 60, ledger)
            server.stop("fast")
            refused_before = ledger.count("503")
            wait_for("20 answers of 503", _refused(ledger, refused_before + 20), 30, ledger)
            _assert_refused(httpx.get(f"{collector.url}/healthz", timeout=10.0))
            _assert_refused(httpx.get(f"{collector.url}/api/v1/namespaces", timeout=10.0))
            acked_in_outage = ledger.acked
            server.start()
            wait_for("100 more acknowledged", _acked(ledger, acked_in_outage + 100), 60, ledger)
        finally:
            clients.stop()
        assert httpx.get(f"{collector.url}/healthz", timeout=10.0).status_code == 200
        assert ledger.problems == [], ledger.problems
        assert ledger.count("dropped") == 0, ledger.statuses
        check_store(read_store(server.url), ledger)
        refused = len(ledger.unacknowledged())
        _send_again_one_by_one(collector.url, ledger)
        wait_until_derived(server.url, ledger)
        check_store(read_store(server.url), ledger)
        print(f"outage: {ledger.statuses}, {refused} events refused then sent again")


def _refused(ledger: Ledger, count: int) -> Callable[[], bool]:
    return lambda: ledger.count("503") >= count


def _assert_refused(answer: httpx.Response) -> None:
    """503, saying when to try again: PostgreSQL is down."""
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "2"
