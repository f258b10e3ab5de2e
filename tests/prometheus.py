"""A real Prometheus for tests: its binaries, a throwaway server, and queries with deadlines.

The binaries come from the Debian package `prometheus`; missing is a failure (CI installs
it), never a skip.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.shim_helpers import free_port

DEADLINE = 40.0


def tool(name: str) -> str:
    """`prometheus` or `promtool`, from the Debian package `prometheus`."""
    found = shutil.which(name)
    assert found, f"{name} not found: install the Debian package `prometheus` (.ci/run does)"
    return found


@contextlib.contextmanager
def running_prometheus(
    directory: Path, target: str, rule_files: Sequence[Path] = ()
) -> Iterator[str]:
    """Prometheus scraping `target` every second as the job `pipewarden`; yields its URL."""
    port = free_port()
    config = directory / "prometheus.yml"
    rules = "".join(f"  - {path}\n" for path in rule_files)
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        + (f"rule_files:\n{rules}" if rules else "")
        + "scrape_configs:\n  - job_name: pipewarden\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    log = directory / "prometheus.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited {process.returncode}:\n{log.read_text()}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(url + "/-/ready", timeout=2) as response,
            ):
                if response.status == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus never became ready:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def query(prometheus: str, expression: str) -> list[dict[str, Any]]:
    address = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(address, timeout=5) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def poll(prometheus: str, expression: str, deadline: float) -> list[dict[str, Any]]:
    while True:
        result = query(prometheus, expression)
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)
