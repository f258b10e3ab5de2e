"""`pipewarden run`: wrap a legacy command so it reports, asks the gate, and never breaks the job.

Order of work: deliver what an earlier run spooled; ask the gate (time-boxed, fail-open);
START; run the command (output live, signals forwarded, timeout); COMPLETE, FAIL or ABORT
with what was learnt; retry a failure if asked. Every event is spooled before it is sent.
The exit code is always the command's (124 after a timeout, 1 when a gate blocks).
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.settings import Settings
from collector.shim import events
from collector.shim.checks import CheckSpec, run_check
from collector.shim.client import Client
from collector.shim.datasets import DatasetRef, output_statistics, resolve
from collector.shim.process import Finished, noting_stop_signals, run_command
from collector.shim.redact import Redactor
from collector.shim.spool import Delivery, Spool, default_spool_dir, warn

EXIT_BLOCKED = 1
EXIT_TIMEOUT = 124


@dataclass(frozen=True)
class RunSpec:
    """Everything `pipewarden run` was told."""

    job: str
    namespace: str
    command: tuple[str, ...]
    dataset_namespace: str | None = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    sql_files: tuple[Path, ...] = ()
    dialect: str | None = None
    checks: tuple[CheckSpec, ...] = ()
    retries: int = 0
    retry_delay: float = 5.0
    timeout: float | None = None
    kill_grace: float = 10.0


@dataclass(frozen=True)
class GateVerdict:
    """The gate's answer as the shim acts on it."""

    effective: str  # allow | block
    facet: dict[str, Any]
    messages: tuple[str, ...] = ()


@dataclass
class Shim:
    """One `pipewarden run`: the spec, the collector client and the spool it reports through."""

    spec: RunSpec
    client: Client
    spool: Spool
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    command_started: bool = False
    last_exit_code: int | None = None
    _warned_unreachable: bool = False

    def __post_init__(self) -> None:
        self._redact = Redactor.for_run(self.environ, self.spec.command)
        namespace = self.spec.dataset_namespace or self.spec.namespace
        self._inputs = [resolve(name, namespace) for name in self.spec.inputs]
        self._outputs = [resolve(name, namespace) for name in self.spec.outputs]
        sql = _read_sql(self.spec.sql_files)
        self._sql = self._redact.sql(sql) if sql else None

    def run(self) -> int:
        """Run and report; a stop signal outside the command's own run ends retrying."""
        with noting_stop_signals() as stops:
            return self._run(stops)

    def _run(self, stops: list[int]) -> int:
        self.replay()
        verdict = self.ask_gate()
        for message in verdict.messages:
            warn(message)
        first_run = str(uuid.uuid4())
        if verdict.effective == "block":
            self.deliver(self._event("ABORT", first_run, {"pipewarden_gate": verdict.facet}))
            warn(f"the gate blocked job {self.spec.job!r}: the command was not started")
            return EXIT_BLOCKED
        if stops:  # told to stop before the command started: don't start it
            return 128 + stops[0]
        run_id = first_run
        for attempt in range(self.spec.retries + 1):
            finished = self.run_once(run_id, first_run, attempt, verdict.facet)
            failed = finished.exit_code != 0 or finished.timed_out
            stopped = finished.forwarded_signal is not None or bool(stops)
            if not failed or stopped or attempt == self.spec.retries:
                return _exit_code(finished)
            delay = self.spec.retry_delay * 2**attempt
            warn(f"try {attempt + 1} failed (exit {_exit_code(finished)}); retrying in {delay:g}s")
            if _sleep_until_stopped(delay, stops):
                return _exit_code(finished)
            run_id = str(uuid.uuid4())
        raise AssertionError("unreachable")  # pragma: no cover

    def run_once(self, run_id: str, first_run: str, attempt: int, gate: dict[str, Any]) -> Finished:
        run_facets: dict[str, Any] = {
            "pipewarden_shim": events.facet(
                "pipewarden_shim",
                command=self._redact.args(self.spec.command),
                host=socket.gethostname(),
                user=_user(),
                attempt=attempt + 1,
            ),
            "pipewarden_gate": gate,
        }
        if attempt > 0:
            run_facets["parent"] = events.facet(
                "parent",
                run={"runId": first_run},
                job={"namespace": self.spec.namespace, "name": self.spec.job},
            )
        self.deliver(self._event("START", run_id, run_facets))
        self.command_started = True
        finished = run_command(self.spec.command, self.spec.timeout, self.spec.kill_grace)
        self.last_exit_code = _exit_code(finished)
        if finished.not_started:
            warn(finished.not_started)
        end_facets = dict(run_facets)
        end_facets["pipewarden_resources"] = events.facet(
            "pipewarden_resources",
            wallSeconds=round(finished.wall_seconds, 3),
            cpuUserSeconds=round(finished.cpu_user_seconds, 3),
            cpuSystemSeconds=round(finished.cpu_system_seconds, 3),
            maxRssBytes=finished.max_rss_bytes,
        )
        end_facets["pipewarden_shim"] = dict(
            run_facets["pipewarden_shim"],
            exitCode=_exit_code(finished),
            stdoutTail=self._redact.text(finished.stdout_tail),
            stderrTail=self._redact.text(finished.stderr_tail),
        )
        event_type = _event_type(finished)
        if event_type != "COMPLETE":
            end_facets["errorMessage"] = events.facet(
                "errorMessage",
                message=_failure_message(finished),
                programmingLanguage="shell",
                stackTrace=self._redact.text(finished.stderr_tail),
            )
        datasets = self._finished_datasets()
        self.deliver(self._event(event_type, run_id, end_facets, datasets))
        return finished

    def ask_gate(self) -> GateVerdict:
        """The gate's decision on this job and its declared plan; allow when it cannot answer."""
        plan = {
            "inputs": [ref.as_json() for ref in self._inputs],
            "outputs": [ref.as_json() for ref in self._outputs],
            "sql": self._sql,
            "dialect": self.spec.dialect,
        }
        answer = self.client.gate(self.spec.namespace, self.spec.job, plan)
        if answer is None:
            reason = self.client.unreachable_reason or "no answer"
            return _fail_open(f"the gate could not be asked ({reason}); running anyway")
        if answer.status == 404:
            return _fail_open("the collector has no gate for this job yet; running anyway")
        if answer.status != 200:
            return _fail_open(f"the gate answered HTTP {answer.status}; running anyway")
        try:
            decision = answer.json()
            effective = str(decision["effective"])
        except (ValueError, KeyError, TypeError):
            return _fail_open("the gate's answer could not be read; running anyway")
        facet = events.facet("pipewarden_gate", status="answered", **_gate_fields(decision))
        messages = tuple(
            f"gate {decision.get('decision')} ({decision.get('mode')} mode): "
            f"{reason.get('rule')}: {reason.get('message')}"
            for reason in decision.get("reasons") or []
            if isinstance(reason, dict)
        )
        return GateVerdict(effective=effective, facet=facet, messages=messages)

    def deliver(self, event: dict[str, Any]) -> None:
        """Spool the event, then send it; what cannot be sent now stays for `replay`."""
        try:
            path = self.spool.append(event)
        except OSError as error:
            warn(f"cannot write the spool at {self.spool.directory} ({error}); sending directly")
            path = None
        outcome = self.client.post_event(event)
        if outcome is Delivery.ACKNOWLEDGED and path is not None:
            self.spool.acknowledge(path)
        elif outcome is Delivery.REJECTED and path is not None:
            warn(
                f"the collector refused event {path.name}; kept in {self.spool.directory}/rejected"
            )
            self.spool.set_aside(path, "rejected")
        elif outcome is Delivery.UNREACHABLE and not self._warned_unreachable:
            self._warned_unreachable = True
            warn(
                f"collector unreachable ({self.client.unreachable_reason}); events kept in "
                f"{self.spool.directory}, sent by the next run or `pipewarden replay`"
            )

    def replay(self) -> None:
        if self.spool.pending():
            report = self.spool.replay(self.client.post_spooled)
            if report.delivered:
                warn(f"delivered {report.delivered} spooled event(s) from earlier runs")

    def _event(
        self,
        event_type: str,
        run_id: str,
        run_facets: dict[str, Any],
        datasets: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None,
    ) -> dict[str, Any]:
        job_facets: dict[str, Any] = {
            "jobType": events.facet(
                "jobType", processingType="BATCH", integration="PIPEWARDEN", jobType="COMMAND"
            )
        }
        if self._sql:
            job_facets["sql"] = events.facet("sql", query=self._sql, **_dialect(self.spec.dialect))
        inputs, outputs = datasets or (
            [ref.as_json() for ref in self._inputs],
            [ref.as_json() for ref in self._outputs],
        )
        return events.run_event(
            event_type,
            run_id=run_id,
            namespace=self.spec.namespace,
            job=self.spec.job,
            run_facets=run_facets,
            job_facets=job_facets,
            inputs=inputs,
            outputs=outputs,
        )

    def _finished_datasets(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Inputs and outputs after the run: local output counts and quality check results."""
        inputs: list[dict[str, Any]] = [dict(ref.as_json()) for ref in self._inputs]
        outputs: list[dict[str, Any]] = []
        for ref in self._outputs:
            item: dict[str, Any] = ref.as_json()
            if ref.path is not None and (statistics := output_statistics(ref.path)):
                item["outputFacets"] = {
                    "outputStatistics": events.facet("outputStatistics", **statistics)
                }
            outputs.append(item)
        namespace = self.spec.dataset_namespace or self.spec.namespace
        for check in self.spec.checks:
            ref = resolve(check.dataset, namespace)
            facet = events.facet("dataQualityAssertions", assertions=run_check(check))
            target = next((i for i in inputs if _same(i, ref)), None)
            if target is None:
                target = next((o for o in outputs if _same(o, ref)), None)
            if target is None:  # checked but not declared: report it as an output
                target = dict(ref.as_json())
                outputs.append(target)
            target.setdefault("facets", {})["dataQualityAssertions"] = facet
        return inputs, outputs


def _same(item: dict[str, Any], ref: DatasetRef) -> bool:
    return bool(item["namespace"] == ref.namespace and item["name"] == ref.name)


def _gate_fields(decision: dict[str, Any]) -> dict[str, Any]:
    keys = ("decision", "mode", "effective", "reasons", "decisionId")
    return {key: decision[key] for key in keys if key in decision}


def _fail_open(message: str) -> GateVerdict:
    facet = events.facet("pipewarden_gate", status="unavailable", effective="allow", reason=message)
    return GateVerdict(effective="allow", facet=facet, messages=(message,))


def _event_type(finished: Finished) -> str:
    if finished.exit_code == 0 and not finished.timed_out:
        return "COMPLETE"
    if finished.forwarded_signal is not None:
        return "ABORT"
    return "FAIL"


def _exit_code(finished: Finished) -> int:
    return EXIT_TIMEOUT if finished.timed_out else finished.exit_code


def _failure_message(finished: Finished) -> str:
    if finished.not_started:
        return finished.not_started
    if finished.timed_out:
        return f"timed out after {finished.wall_seconds:.1f}s and was stopped"
    if finished.forwarded_signal is not None:
        name = signal.Signals(finished.forwarded_signal).name
        return f"stopped by {name} (exit code {finished.exit_code})"
    return f"exit code {finished.exit_code}"


def _read_sql(files: tuple[Path, ...]) -> str | None:
    texts = []
    for path in files:
        try:
            texts.append(path.read_text())
        except (OSError, UnicodeDecodeError) as error:
            warn(f"cannot read --sql {path} ({error}); reporting without it")
    return "\n;\n".join(text.strip().rstrip(";") for text in texts) or None


def _dialect(dialect: str | None) -> dict[str, str]:
    return {"dialect": dialect} if dialect else {}


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return str(os.getuid())


def _sleep_until_stopped(seconds: float, stops: list[int]) -> bool:
    """Wait between tries; True when a stop signal arrived meanwhile."""
    deadline = time.monotonic() + seconds
    while not stops and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.1))
    return bool(stops)


def run_shim(spec: RunSpec, settings: Settings) -> int:
    """Run the command under the shim; if the shim itself fails, the command still runs."""
    shim = Shim(
        spec, Client(settings.url, settings.api_key, settings.client_timeout), spool_for(settings)
    )
    try:
        return shim.run()
    except Exception as error:  # a bug of ours must never cost the job its run
        warn(f"internal error ({type(error).__name__}: {error})")
        if shim.command_started:
            return shim.last_exit_code if shim.last_exit_code is not None else 1
        warn("running the command unreported")
        return _exit_code(run_command(spec.command, spec.timeout, spec.kill_grace))


def replay_spool(settings: Settings) -> int:
    """`pipewarden replay`: 0 when everything spooled was delivered, 3 when some remains."""
    spool = spool_for(settings)
    client = Client(settings.url, settings.api_key, max(settings.client_timeout, 5.0))
    report = spool.replay(client.post_spooled)
    print(
        f"delivered {report.delivered}, rejected {report.rejected}, corrupt {report.corrupt}, "
        f"remaining {report.remaining} (spool: {spool.directory})"
    )
    if report.remaining:
        warn(f"collector unreachable: {client.unreachable_reason}")
        return 3
    return 0


def spool_for(settings: Settings) -> Spool:
    return Spool(Path(settings.spool_dir) if settings.spool_dir else default_spool_dir())
