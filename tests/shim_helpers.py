"""Shared parts of the shim's tests: a real collector and the real shim, both as subprocesses.

The collector is `python -m collector.cli serve` on a free port with its own SQLite file; the
shim is `python -m collector.cli run …` with `PIPEWARDEN_URL` and `PIPEWARDEN_SPOOL_DIR` in
its environment. What the shim sent is read back through the collector's HTTP API.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

NAMESPACE = "shim-tests"
CLI = (sys.executable, "-m", "collector.cli")
TAIL_LIMIT = 8 * 1024


def free_port() -> int:
    """A port nothing listens on (bound and released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def closed_url() -> str:
    """A collector URL where nothing answers: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


def unique_job(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any pipewarden/OpenLineage setting, plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIPEWARDEN_", "OPENLINEAGE_"))
    }
    env.update(extra)
    return env


def shim_env(url: str, spool: Path, **extra: str) -> dict[str, str]:
    return clean_env(PIPEWARDEN_URL=url, PIPEWARDEN_SPOOL_DIR=str(spool), **extra)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@dataclass(frozen=True)
class Collector:
    """A running `pipewarden serve`, read through its HTTP API."""

    url: str
    log: Path
    pid: int = 0

    def get(self, path: str) -> Any:
        return get_json(self.url + path)

    def events(self, job: str) -> list[dict[str, Any]]:
        """The raw events stored for `job`, oldest first, exactly as the shim sent them."""
        answer = self.get("/api/v1/events/lineage?limit=10000&sortDirection=asc")
        assert answer["totalCount"] <= 10000, "more events than one page: raise the limit"
        return [event for event in answer["events"] if event["job"]["name"] == job]

    def job(self, job: str, namespace: str = NAMESPACE) -> dict[str, Any]:
        result: dict[str, Any] = self.get(
            f"/api/v1/namespaces/{quote(namespace, safe='')}/jobs/{quote(job, safe='')}"
        )
        return result

    def run(self, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/api/v1/jobs/runs/{run_id}")
        return result


@contextlib.contextmanager
def running_collector(
    directory: Path, database_url: str | None = None, **environment: str
) -> Iterator[Collector]:
    """Start `pipewarden serve` on a free port and a fresh SQLite store (or `database_url`),
    with `environment` added (PIPEWARDEN_… settings); SIGTERM it after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = directory / "collector.log"
    env = clean_env(
        PIPEWARDEN_DATABASE_URL=database_url or f"sqlite:///{directory / 'c.db'}",
        PIPEWARDEN_LOG_LEVEL="warning",
        **environment,
    )
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [*CLI, "serve", "--port", str(port)],
            env=env,
            cwd=directory,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(url, process, log, deadline=time.monotonic() + 30)
        yield Collector(url=url, log=log, pid=process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the collector exited {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError, urllib.error.URLError):
            if get_json(url + "/healthz")["status"] == "ok":
                return
        time.sleep(0.1)
    raise AssertionError(f"the collector did not become healthy:\n{log.read_text()}")


def run_args(job: str, command: Sequence[str], *options: str) -> list[str]:
    """`run --job J --namespace shim-tests OPTIONS -- COMMAND`."""
    return ["run", "--job", job, "--namespace", NAMESPACE, *options, "--", *command]


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes
    seconds: float

    @property
    def err(self) -> str:
        return self.stderr.decode(errors="replace")

    @property
    def out(self) -> str:
        return self.stdout.decode(errors="replace")


def pipewarden(
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    timeout: float = 60,
) -> Result:
    """Run `pipewarden ARGS` as a subprocess to its end."""
    started = time.monotonic()
    done = subprocess.run(
        [*CLI, *args],
        env=dict(env),
        cwd=cwd,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def start_pipewarden(
    args: Sequence[str], env: Mapping[str, str], *, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `pipewarden ARGS`, its output on pipes, for a test that talks to it while it runs."""
    return subprocess.Popen(
        [*CLI, *args],
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def read_until(stream: IO[bytes] | None, needle: bytes, timeout: float) -> bytes:
    """Read a pipe until `needle` shows up; everything read so far is returned."""
    assert stream is not None, "the process was not started with this stream on a pipe"
    descriptor = stream.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{needle!r} not seen within {timeout}s; read {seen!r}")
        readable, _, _ = select.select([descriptor], [], [], left)
        if readable:
            chunk = os.read(descriptor, 65536)
            if not chunk:
                raise AssertionError(f"the stream ended before {needle!r}; read {seen!r}")
            seen += chunk
    return seen


def finish(process: subprocess.Popen[bytes], timeout: float = 30) -> tuple[bytes, bytes]:
    """Wait for a started process; kill it (and fail) if it does not end in time."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError(f"the process did not end within {timeout}s") from None


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in the process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def by_type(events: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(event["eventType"]) for event in events]


def spooled(spool: Path) -> list[Path]:
    """Event files waiting in the spool, in the order they would be sent."""
    if not spool.is_dir():
        return []
    return sorted(path for path in spool.iterdir() if path.name.endswith(".json"))


def shim_facet(event: Mapping[str, Any]) -> dict[str, Any]:
    facet: dict[str, Any] = event["run"]["facets"]["pipewarden_shim"]
    return facet


@contextlib.contextmanager
def collector_told_the_demo(directory: Path, policy: Path) -> Iterator[tuple[Collector, Result]]:
    """A real collector with the demo's `policy`, after `pipewarden demo --url` told it the
    story (its scripts' files in `directory/files`); yields the collector and the demo's output."""
    with running_collector(
        directory, PIPEWARDEN_POLICY=str(policy), PIPEWARDEN_EVALUATOR_INTERVAL="1"
    ) as collector:
        told = pipewarden(
            ["demo", "--url", collector.url, "--dir", str(directory / "files")],
            clean_env(),
            timeout=300,
        )
        assert told.returncode == 0, told.out + told.err
        yield collector, told
