"""The demo's story, act by act: history, today's runs, incidents, an outage.

Each step says what it does and shows what pipewarden answered. Steps that depend on the
collector's policy (the enforced gates, the SLA) are told as they turned out: against a
collector without the demo policy a block is only a would-block, and the story says so.
Waiting on the asynchronous evaluator is done by polling the API against a deadline.
"""

from __future__ import annotations

import math
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from collector.demo import jobs_dir, policy_path
from collector.demo.cast import DROPPED_COLUMN, Cast
from collector.demo.client import Api, CollectorError, wait_for
from collector.demo.events import Run
from collector.demo.history import History, orders_expected, stage_orders_run
from collector.demo.shim import Finished, Job, Shim

# The findings the story must produce: kind -> the job they are about.
EXPECTED_FINDINGS = {
    "runtime": "stage_orders",
    "failure": "load_orders",
    "freshness": "crm_sync",
    "overrun": "crm_sync",
    "schema_drift": "stage_orders",
    "quality": "daily_revenue",
    "volume": "load_orders",
}
HISTORY_FINDINGS = ("runtime", "failure", "freshness", "overrun")
DROPPED_ROWS = 60  # what load_orders' partial extract lands


@dataclass(frozen=True)
class Narrator:
    """Prints the story for a person: acts, steps, and what came back."""

    echo: Callable[[str], None]

    def act(self, title: str) -> None:
        self.echo(f"\n== {title}")

    def text(self, line: str) -> None:
        self.echo(line)

    def step(self, line: str) -> None:
        self.echo(f"\n-> {line}")

    def command(self, line: str) -> None:
        self.echo(f"   $ {line}")

    def detail(self, line: str) -> None:
        self.echo(f"   {line}")


@dataclass(frozen=True)
class GateSeen:
    """One gate decision as a run recorded it."""

    job: str
    decision: str
    mode: str
    effective: str
    reasons: tuple[str, ...]


@dataclass
class Story:
    api: Api
    cast: Cast
    shim: Shim
    say: Narrator
    evaluator_wait: float  # seconds to wait for the evaluator's findings
    strict_policy: bool  # the demo policy is known to be in force (embedded collector)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    surprises: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gates: list[GateSeen] = field(default_factory=list)
    today_rows: int = 0

    def tell(self) -> list[dict[str, Any]]:
        """The whole story; the demo namespace's findings at the end."""
        self.history()
        self.today()
        self.incidents()
        self.outage()
        self.broken_producer()
        return self.wait_for_findings()

    # --- act 1 ------------------------------------------------------------------------

    def history(self) -> None:
        self.say.act("1. Three weeks of history")
        self.say.text(
            "Seven jobs of a small shop's warehouse: legacy scripts reported by the shim, a dbt\n"
            "model and an Airflow task reporting OpenLineage themselves. Their past runs go in\n"
            "as events, one POST /api/v1/lineage/batch per job (event time, not arrival time,\n"
            "counts: the detectors judge each run against the runs before it)."
        )
        runs = History(self.cast, datetime.now(UTC)).build()
        for job, job_runs in runs.items():
            events = sorted(
                (event for run in job_runs for event in run.events()),
                key=lambda event: str(event["eventTime"]),
            )
            stored = self.api.post_batch(events)
            kind = job_runs[0].job.integration.lower().replace("pipewarden", "shim")
            self.say.detail(f"{job:<22} {len(job_runs):>4} runs {stored:>5} events  ({kind})")
        self.say.detail("share_top_customers        (new today: no history)")
        self.say.step("Waiting for the evaluator to judge the history …")
        found = self.findings_of(HISTORY_FINDINGS)
        for finding in found:
            self.say.detail(_finding_line(finding))

    # --- act 2 ------------------------------------------------------------------------

    def today(self) -> None:
        self.say.act("2. Today's runs")
        self.today_rows = round(orders_expected(datetime.now(UTC)) * self.rng.gauss(1.0, 0.02))
        self.say.step("load_orders (cron script) pulls the orders; the shop's API fails once")
        marker = self.cast.directory / ".shop-api-recovered"
        self.legacy(self.load_orders, *self.load_args(self.today_rows), "--fail-once", str(marker))
        self.say.step("stage_orders (dbt) builds staging.orders and reports it itself")
        self.dbt_stage_orders(dropped=False)
        self.say.step("daily_revenue (enforced) computes revenue and checks its export")
        self.legacy(self.daily_revenue, "--out", str(self.revenue_export))
        self.say.step("customer_orders and export_revenue_share (both in monitor mode)")
        self.legacy(self.customer_orders, "--out", str(self.cast.file("exports/customers.csv")))
        self.legacy(self.export_revenue_share, *self.share_args)

    # --- act 3 ------------------------------------------------------------------------

    def incidents(self) -> None:
        self.say.act("3. Things go wrong")
        self.say.step("A new job wants to publish the top customers, e-mail addresses included")
        self.legacy(
            self.share_top_customers,
            "--out",
            str(self.cast.file("share/top_customers.csv")),
            expect="block",
        )
        self.say.step("daily_revenue is rerun with a refund bug: one day's revenue is negative")
        self.legacy(self.daily_revenue, "--out", str(self.revenue_export), "--refund-bug")
        self.show_failed_checks()
        self.say.step("export_revenue_share reads that table (monitor mode: it runs anyway)")
        self.legacy(self.export_revenue_share, *self.share_args, expect="would_block")
        self.say.step(f"A developer drops staging.orders.{DROPPED_COLUMN} in the dbt model")
        self.dbt_stage_orders(dropped=True)
        self.say.step(f"daily_revenue (enforced) reads {DROPPED_COLUMN}: the gate stops it")
        self.legacy(self.daily_revenue, "--out", str(self.revenue_export), expect="block")
        self.say.step(f"customer_orders reads {DROPPED_COLUMN} too (monitor mode: it runs)")
        self.legacy(
            self.customer_orders,
            "--out",
            str(self.cast.file("exports/customers.csv")),
            expect="would_block",
        )
        self.say.step(f"load_orders' evening delta gets only {DROPPED_ROWS} orders")
        self.legacy(self.load_orders, *self.load_args(DROPPED_ROWS))

    # --- act 4 ------------------------------------------------------------------------

    def outage(self) -> None:
        self.say.act("4. The collector is down for a moment")
        self.say.step("export_revenue_share runs while nothing answers at the collector's URL")
        down = _closed_url()
        self.say.command(self.shim.shown(self.export_revenue_share, *self.share_args))
        done = self.shim.run(self.export_revenue_share, *self.share_args, url=down)
        self.show_notes(done)
        spooled = sorted(self.cast.spool.glob("*.json"))
        self.say.detail(f"exit {done.exit_code}; {len(spooled)} events wait in {self.cast.spool}")
        if done.exit_code != 0 or not spooled:
            self.surprise("the run with the collector down should run and spool its events")
        self.say.step("The collector is back: `pipewarden replay` delivers the spool")
        self.say.command("pipewarden replay")
        replayed = self.shim.replay()
        self.say.detail(replayed.stdout.strip() or replayed.stderr.strip())
        if replayed.exit_code != 0:
            self.surprise(f"pipewarden replay exited {replayed.exit_code}: {replayed.stderr}")

    def broken_producer(self) -> None:
        self.say.step("A misconfigured producer posts an event without a runId")
        event = Run(self.cast.crm_sync, "", datetime.now(UTC), None).events()[0]
        del event["run"]["runId"]
        answer = self.api.post("/api/v1/lineage", event)
        self.say.detail(f"HTTP {answer.status}: {answer.body}")
        if answer.status != 422:
            self.surprise(f"a broken event was answered HTTP {answer.status}, not 422")

    # --- the end ----------------------------------------------------------------------

    def wait_for_findings(self) -> list[dict[str, Any]]:
        self.say.step("Waiting for the evaluator's findings on today's runs …")
        self.findings_of(tuple(EXPECTED_FINDINGS))
        return self.all_findings()

    def findings_of(self, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
        """Wait until the evaluator has found each kind on its job; those findings."""
        wanted = {(kind, EXPECTED_FINDINGS[kind]) for kind in kinds}

        def found() -> list[dict[str, Any]] | None:
            findings = self.all_findings()
            seen = {(f["kind"], f["job"]) for f in findings}
            return [f for f in findings if f["kind"] in kinds] if wanted <= seen else None

        try:
            return wait_for("findings", found, time.monotonic() + self.evaluator_wait, every=0.25)[
                ::-1
            ]
        except CollectorError:
            seen = {(f["kind"], f["job"]) for f in self.all_findings()}
            missing = ", ".join(f"{kind} on {job}" for kind, job in sorted(wanted - seen))
            raise CollectorError(
                f"the evaluator did not find {missing} within {self.evaluator_wait:.0f} s"
            ) from None

    def all_findings(self) -> list[dict[str, Any]]:
        answer = self.api.get(f"/api/v1/findings?namespace={_q(self.cast.namespace)}&limit=10000")
        return list(answer["findings"])

    # --- how each kind of job is run ----------------------------------------------------

    def legacy(self, job: Job, *args: str, expect: str = "allow") -> Finished:
        """Run a legacy job through the shim and tell what the gate and the run did."""
        self.say.command(self.shim.shown(job, *args))
        done = self.shim.run(job, *args)
        self.show_notes(done)
        seen = self.gate_of(job.name)
        if seen is not None:
            outcome = "stopped before it started" if seen.effective == "block" else "ran"
            self.say.detail(f"gate: {seen.decision} ({seen.mode} mode), {outcome}")
            for reason in seen.reasons:
                self.say.detail(f"  - {reason}")
            self.gates.append(seen)
        self.say.detail(f"exit {done.exit_code} after {done.seconds:.1f} s")
        self.expect_gate(job.name, expect, seen, done)
        return done

    def expect_gate(self, job: str, expect: str, seen: GateSeen | None, done: Finished) -> None:
        """A surprise when the gate or the shim did not do what the story says.

        A block rests on the demo policy (the enforce mode, the PII tags): against a
        collector with another policy, a different answer is a note, not a surprise.
        """
        if seen is None:
            self.surprise(f"{job}: no gate decision recorded on its run")
            return
        shown = "would_block" if seen.decision == "block" and seen.mode != "enforce" else None
        matched = {
            "allow": seen.decision in ("allow", "warn"),
            "block": seen.decision == "block" and seen.effective == "block",
            "would_block": shown == "would_block",
        }[expect]
        exit_ok = (done.exit_code == 1) if expect == "block" else (done.exit_code == 0)
        if matched and exit_ok:
            return
        said = f"the gate said {seen.decision} in {seen.mode} mode"
        if expect == "block" and not self.strict_policy:
            self.notes.append(
                f"{job}: {said}, where the demo policy blocks it; start the collector with "
                f"PIPEWARDEN_POLICY={policy_path()} to see it blocked."
            )
            return
        self.surprise(f"{job}: expected {expect}, {said} and the shim exited {done.exit_code}")

    def gate_of(self, job: str) -> GateSeen | None:
        """The gate decision recorded on the job's newest run."""
        path = f"/api/v1/namespaces/{_q(self.cast.namespace)}/jobs/{_q(job)}/runs?limit=1"
        runs = self.api.get(path)["runs"]
        gate = (runs[0].get("facets") or {}).get("pipewarden_gate") if runs else None
        if not gate or gate.get("status") != "answered":
            return None
        return GateSeen(
            job=job,
            decision=str(gate["decision"]),
            mode=str(gate["mode"]),
            effective=str(gate["effective"]),
            reasons=tuple(
                f"{r['rule']} ({r['severity']}): {r['message']}" for r in gate["reasons"]
            ),
        )

    def show_notes(self, done: Finished) -> None:
        for note in done.notes():
            if not note.startswith("pipewarden: gate "):
                self.say.detail(note)

    def show_failed_checks(self) -> None:
        dataset = self.api.get(
            f"/api/v1/namespaces/{_q(self.cast.warehouse)}/datasets/mart.daily_revenue"
        )
        facet = (dataset.get("facets") or {}).get("dataQualityAssertions") or {}
        failed = [a for a in facet.get("assertions", []) if not a.get("success")]
        for check in failed:
            self.say.detail(
                f"check failed: {check['assertion']} on {check.get('column')}, "
                f"{check.get('failingCount', '?')} row(s)"
            )
        if not failed:
            self.surprise("the pandera check on daily_revenue's export did not fail")

    def dbt_stage_orders(self, dropped: bool) -> None:
        """A run of the dbt model, reported as dbt-ol would: START and COMPLETE events."""
        end = datetime.now(UTC)
        start = end - timedelta(minutes=6 * math.exp(self.rng.gauss(0, 0.05)))
        rows = round(self.today_rows * 0.97)
        run = stage_orders_run(self.cast, start, end, rows, dropped=dropped)
        for event in run.events():
            answer = self.api.post("/api/v1/lineage", event)
            if answer.status != 201:
                raise CollectorError(f"stage_orders' event was refused: {answer.body}")
        columns = ", ".join(name for name, _ in run.outputs[0].columns or ())
        self.say.detail(
            f"POST /api/v1/lineage (START, COMPLETE): staging.orders ({columns}), {rows} rows"
        )

    def surprise(self, message: str) -> None:
        self.surprises.append(message)
        self.say.detail(f"!! {message}")

    # --- the jobs -----------------------------------------------------------------------

    @property
    def revenue_export(self) -> Path:
        return self.cast.file("exports/daily_revenue.csv")

    def load_args(self, rows: int) -> tuple[str, ...]:
        return ("--out", str(self.cast.landing_orders), "--rows", str(rows))

    @property
    def share_args(self) -> tuple[str, ...]:
        return (
            "--source",
            str(self.revenue_export),
            "--out",
            str(self.cast.file("share/revenue.csv")),
        )

    @property
    def load_orders(self) -> Job:
        return Job("load_orders", outputs=(str(self.cast.landing_orders),), sql=False, retries=1)

    @property
    def daily_revenue(self) -> Job:
        schema = jobs_dir() / "daily_revenue.schema.yaml"
        return Job(
            "daily_revenue",
            inputs=("staging.orders",),
            outputs=("mart.daily_revenue",),
            check=f"mart.daily_revenue={schema}@{self.revenue_export}",
        )

    @property
    def customer_orders(self) -> Job:
        return Job("customer_orders", inputs=("staging.orders",), outputs=("mart.customer_orders",))

    @property
    def export_revenue_share(self) -> Job:
        return Job(
            "export_revenue_share",
            inputs=("mart.daily_revenue",),
            outputs=("public_share.revenue",),
        )

    @property
    def share_top_customers(self) -> Job:
        return Job(
            "share_top_customers",
            inputs=("crm.users", "staging.orders"),
            outputs=("public_share.top_customers",),
        )


def _finding_line(finding: dict[str, Any]) -> str:
    return f"{finding['kind']:<13} {finding['job']:<22} {finding['message']}"


def _q(name: str) -> str:
    return quote(name, safe="")


def _closed_url() -> str:
    """A URL where nothing listens: a port bound and released at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"
