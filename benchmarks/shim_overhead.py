"""The shim's own cost: `pipewarden run -- CMD` against the bare `CMD`, measured in one run.

Starts a real collector (`pipewarden serve`, SQLite in a temporary folder), then times the
bare command and the wrapped one alternately (so machine noise hits both alike) and prints
the median of each, the median overhead and the target (≤ 0.25 s). The wrapped run does the
whole path: gate call, START, the command, COMPLETE, each acknowledged by the collector.

    python benchmarks/shim_overhead.py [--runs 30] [-- CMD ARGS…]    (default CMD: true)
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TARGET_SECONDS = 0.25


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("command", nargs="*", default=["true"])
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        port = _free_port()
        env = dict(
            os.environ,
            PIPEWARDEN_DATABASE_URL=f"sqlite:///{folder}/bench.db",
            PIPEWARDEN_URL=f"http://127.0.0.1:{port}",
            PIPEWARDEN_SPOOL_DIR=f"{folder}/spool",
            PIPEWARDEN_LOG_LEVEL="warning",
        )
        collector = subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "serve", "--port", str(port)], env=env
        )
        try:
            _wait_healthy(port)
            wrapped = [sys.executable, "-m", "collector.cli", "run", "--job", "bench", "--"]
            bare_times, shim_times = [], []
            for _ in range(options.runs):
                bare_times.append(_time(options.command, env))
                shim_times.append(_time([*wrapped, *options.command], env))
            if list(Path(folder, "spool").glob("*.json")):
                print("warning: events were spooled, the collector did not acknowledge them")
        finally:
            collector.terminate()
            collector.wait(timeout=15)
    bare, shim = statistics.median(bare_times), statistics.median(shim_times)
    overhead = shim - bare
    print(f"command: {' '.join(options.command)}   runs: {options.runs} each")
    print(f"bare     median {bare * 1000:8.1f} ms")
    print(f"shim     median {shim * 1000:8.1f} ms   ({shim / bare:.1f}x the bare command)")
    print(
        f"overhead median {overhead * 1000:8.1f} ms   target ≤ {TARGET_SECONDS * 1000:.0f} ms: "
        f"{'met' if overhead <= TARGET_SECONDS else 'NOT met'}"
    )
    return 0 if overhead <= TARGET_SECONDS else 1


def _time(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_healthy(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the collector did not become healthy")


if __name__ == "__main__":
    sys.exit(main())
