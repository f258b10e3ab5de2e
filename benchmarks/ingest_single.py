"""Single-event ingestion against a bare FastAPI endpoint, measured in one run.

Starts `benchmarks/reference_app.py` (parses the JSON, answers 201) and a real
`pipewarden serve` (SQLite in a temporary folder, or `--database-url`), then sends each the
same number of unique ~1 KB events (START and COMPLETE of runs with SQL, inputs, outputs and
row counts) over 32 keep-alive connections with the asyncio generator in `harness.py`, the
reference first and pipewarden second, then again, and prints the rates, the ratio and the
target (pipewarden ≥ 50% of the reference, every answer 2xx).

    python benchmarks/ingest_single.py [--events 20000] [--connections 32] [--database-url URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import harness

TARGET_RATIO = 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database-url", help="a PostgreSQL URL to measure instead of SQLite")
    options = parser.parse_args()
    reference, pipewarden = [], []
    for round_number in range(options.rounds):
        events = _events(options.events, round_number)
        requests = harness.post_requests("/api/v1/lineage", events)
        port = harness.free_port()
        command = [sys.executable, str(Path(__file__).with_name("reference_app.py")), str(port)]
        with harness.server(command, port):
            reference.append(harness.load(port, requests, options.connections))
        with tempfile.TemporaryDirectory() as folder:
            port = harness.free_port()
            env = harness.collector_env(Path(folder), options.database_url)
            with harness.server(harness.collector_command(port), port, env) as pid:
                pipewarden.append(harness.load(port, requests, options.connections))
                rss = harness.rss_megabytes(pid)
        print(f"round {round_number + 1}: reference  {reference[-1].summary()}")
        print(f"round {round_number + 1}: pipewarden {pipewarden[-1].summary()}  RSS {rss:.0f} MB")
    best_reference = max(load.rate for load in reference)
    best_pipewarden = max(load.rate for load in pipewarden)
    ratio = best_pipewarden / best_reference
    all_2xx = all(200 <= status < 300 for load in pipewarden for status in load.statuses)
    print(
        f"events {options.events} x {options.rounds} rounds, {options.connections} connections:"
        f" pipewarden {best_pipewarden:.0f}/s, reference {best_reference:.0f}/s,"
        f" ratio {ratio:.2f} (target >= {TARGET_RATIO}), all 2xx: {all_2xx}"
    )
    return 0 if ratio >= TARGET_RATIO and all_2xx else 1


def _events(count: int, round_number: int) -> list[dict[str, object]]:
    """`count` unique events: runs of 200 jobs, a fresh set each round."""
    start = datetime.now(UTC) - timedelta(days=count // 2 // 200 + 2)
    events: list[dict[str, object]] = []
    for number in range(count // 2):
        job, run = number % 200, number // 200
        begin = start + timedelta(days=run, minutes=job % 60, seconds=round_number)
        events += harness.run_events(job, run, begin)
    return events


if __name__ == "__main__":
    sys.exit(main())
