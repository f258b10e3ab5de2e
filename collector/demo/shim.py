"""Running the demo's legacy jobs through the real shim: `pipewarden run` as a subprocess."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass

from collector.demo import jobs_dir
from collector.demo.cast import Cast

CLIENT_TIMEOUT = "10"  # a busy laptop must not turn a gate answer into a fail-open
RUN_TIMEOUT = 300.0


@dataclass(frozen=True)
class Job:
    """How one legacy job is run: what it declares to the shim and its script's arguments."""

    name: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    sql: bool = True
    check: str | None = None  # DS=SCHEMA.yaml@FILE
    retries: int = 0


@dataclass(frozen=True)
class Finished:
    exit_code: int
    stdout: str
    stderr: str
    seconds: float

    def notes(self) -> list[str]:
        """What the shim said (its lines start with `pipewarden:`)."""
        return [line for line in self.stderr.splitlines() if line.startswith("pipewarden:")]


@dataclass(frozen=True)
class Shim:
    """`pipewarden run` and `pipewarden replay` against a collector, with the demo's spool."""

    cast: Cast
    url: str
    api_key: str = ""

    def run(self, job: Job, *script_args: str, url: str | None = None) -> Finished:
        return self._pipewarden(self.arguments(job, *script_args), url)

    def replay(self) -> Finished:
        return self._pipewarden(["replay"], None)

    def arguments(self, job: Job, *script_args: str) -> list[str]:
        args = ["run", "--job", job.name, "--namespace", self.cast.namespace]
        args += ["--dataset-namespace", self.cast.warehouse]
        for name in job.inputs:
            args += ["--input", name]
        for name in job.outputs:
            args += ["--output", name]
        if job.sql:
            args += ["--sql", str(jobs_dir() / f"{job.name}.sql"), "--dialect", "postgres"]
        if job.check:
            args += ["--check", job.check]
        if job.retries:
            args += ["--retries", str(job.retries), "--retry-delay", "0.2"]
        return [*args, "--", sys.executable, str(jobs_dir() / f"{job.name}.py"), *script_args]

    def shown(self, job: Job, *script_args: str) -> str:
        """The command as a person would type it (paths shortened)."""
        text = "pipewarden " + shlex.join(self.arguments(job, *script_args))
        text = text.replace(f"--dataset-namespace {self.cast.warehouse} ", "")
        text = text.replace(f"--namespace {self.cast.namespace} ", "")
        text = text.replace(sys.executable, "python")
        for folder in (jobs_dir(), self.cast.directory.absolute()):
            text = text.replace(f"{folder}/", "")
        return text

    def _pipewarden(self, args: list[str], url: str | None) -> Finished:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "collector.cli", *args],
            env=self.environment(url or self.url),
            cwd=self.cast.directory,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        return Finished(done.returncode, done.stdout, done.stderr, time.monotonic() - started)

    def environment(self, url: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PIPEWARDEN_", "OPENLINEAGE_"))
        }
        env |= {
            "PIPEWARDEN_URL": url,
            "PIPEWARDEN_SPOOL_DIR": str(self.cast.spool.absolute()),
            "PIPEWARDEN_CLIENT_TIMEOUT": CLIENT_TIMEOUT,
        }
        if self.api_key:
            env["PIPEWARDEN_API_KEY"] = self.api_key
        return env
