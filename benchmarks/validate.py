"""Validating events in-process: `parse_event` and `ingest.prepare` per event.

Takes N events of `harness.history` (START and COMPLETE of daily runs: SQL job facet, two
inputs, an output with outputStatistics; about 1 KB each), then times `parse_event(document)`
and `prepare(document, raw)` (as the HTTP endpoints call it) over all of them, `--rounds`
times each, and prints the best time per event. No store, no HTTP: only validation,
serialisation and the content hash.

    python benchmarks/validate.py [--events 4000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import harness
import orjson

from collector.ingest import prepare
from collector.openlineage import parse_event


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    jobs = max(1, options.events // 20)
    end = datetime(2024, 5, 1, tzinfo=UTC)
    documents = list(harness.history(jobs, 10, end))[: options.events]
    raws = [orjson.dumps(document) for document in documents]
    size = sum(map(len, raws)) / len(raws)
    print(f"{len(documents)} events, {size:.0f} bytes each on average")

    def parse() -> None:
        for document in documents:
            parse_event(document)

    def prepared() -> None:
        for document, raw in zip(documents, raws, strict=True):
            prepare(document, raw)

    for name, work in (("parse_event", parse), ("prepare", prepared)):
        print(f"{name:12} {_best(work, options.rounds) / len(documents) * 1e6:6.1f} µs per event")
    return 0


def _best(work: Callable[[], Any], rounds: int) -> float:
    work()  # warm up
    times = []
    for _ in range(rounds):
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return min(times)


if __name__ == "__main__":
    raise SystemExit(main())
