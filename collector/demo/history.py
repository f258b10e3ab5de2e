"""Three weeks of the demo warehouse's past, as the OpenLineage events its jobs sent.

Times are relative to `now`: the history always ends today, whenever the demo runs. The
numbers are seeded noise around realistic levels (a weekend peak of orders, a CRM table
growing run by run), with three incidents in the past: stage_orders ran 41 minutes instead
of 6 two days ago, load_orders failed twice five days ago before a rerun recovered it, and
crm_sync's latest run started hours ago and never finished (so its later runs never
started). The legacy jobs' durations are those of small scripts, so that today's real runs
through the shim fit them.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from croniter import croniter

from collector.demo.cast import CRM_SCHEDULE, Cast
from collector.demo.events import Dataset, JobRef, Run

DAYS = 21
SPIKE_DAY = 2  # stage_orders took 41 min instead of ~6
FAILURE_DAY = 5  # load_orders failed twice (the shop's API was down), then recovered
CRM_GRACE = timedelta(minutes=20)  # as the demo policy says
CRM_MISSED = 3  # slots crm_sync missed since it hung
ORDERS_PER_DAY = 1200
WEEKEND_FACTOR = 1.35
STAGE_MINUTES = 6.0


def orders_expected(at: datetime) -> int:
    """Orders the shop's API returns for a day: more at the weekend."""
    return round(ORDERS_PER_DAY * (WEEKEND_FACTOR if at.weekday() >= 5 else 1.0))


def new_run_id() -> str:
    return str(uuid.uuid4())


@dataclass
class History:
    """The past runs of every demo job, built from one seeded random stream."""

    cast: Cast
    now: datetime
    rng: random.Random = field(default_factory=lambda: random.Random(20240501))
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def build(self) -> dict[str, list[Run]]:
        """Every job's runs, oldest first."""
        self.crm_sync()
        for days_ago in range(DAYS, 0, -1):
            jitter = timedelta(minutes=self.rng.uniform(-5, 5))
            self.day(self.now - timedelta(days=days_ago, minutes=50) + jitter, days_ago)
        return self.runs

    def day(self, start: datetime, days_ago: int) -> None:
        """One night of the orders pipeline, each job starting after its input is written."""
        cast = self.cast
        loaded, rows = self.load_orders(start, failing=days_ago == FAILURE_DAY)
        staged = self.stage_orders(
            loaded + timedelta(minutes=self.rng.uniform(3, 5)),
            round(rows * self.rng.uniform(0.96, 0.98)),
            spike=days_ago == SPIKE_DAY,
        )
        staging = cast.table("staging.orders")
        revenue = self.shim_run(
            "daily_revenue",
            staged + timedelta(minutes=2),
            median=3.0,
            spread=0.3,
            inputs=(staging,),
            outputs=(cast.daily_revenue(checked=True),),
        )
        self.shim_run(
            "customer_orders",
            staged + timedelta(minutes=3),
            median=1.0,
            spread=0.25,
            inputs=(staging,),
            outputs=(cast.table("mart.customer_orders"),),
        )
        self.shim_run(
            "export_revenue_share",
            revenue + timedelta(minutes=5),
            median=1.0,
            spread=0.25,
            inputs=(cast.table("mart.daily_revenue"),),
            outputs=(cast.table("public_share.revenue"),),
        )

    def load_orders(self, start: datetime, failing: bool) -> tuple[datetime, int]:
        """A night's extract: when it ended and how many orders it landed."""
        job = self.cast.shim_job("load_orders", with_sql=False)
        if failing:  # two failed tries 20 minutes apart, then an operator's rerun
            for attempt in range(2):
                tried = start + timedelta(minutes=20 * attempt)
                self.add(
                    Run(
                        job,
                        new_run_id(),
                        tried,
                        tried + timedelta(seconds=self.shim_seconds(0.6, 0.2)),
                        state="FAIL",
                        outputs=(self.cast.landing(),),
                        error="exit code 1: GET https://shop.example.com/api/orders: 503",
                    )
                )
            start += timedelta(minutes=65)
        rows = round(orders_expected(start) * self.rng.gauss(1.0, 0.04))
        end = start + timedelta(seconds=self.shim_seconds(1.2, 0.25))
        self.add(Run(job, new_run_id(), start, end, outputs=(self.cast.landing(rows),)))
        return end, rows

    def stage_orders(self, start: datetime, rows: int, spike: bool) -> datetime:
        minutes = 41.0 if spike else STAGE_MINUTES * math.exp(self.rng.gauss(0, 0.08))
        end = start + timedelta(minutes=minutes)
        self.add(stage_orders_run(self.cast, start, end, rows))
        return end

    def shim_run(
        self,
        name: str,
        start: datetime,
        median: float,
        spread: float,
        inputs: tuple[Dataset, ...],
        outputs: tuple[Dataset, ...],
    ) -> datetime:
        """A run of a legacy job, as the shim reported it; when it ended."""
        end = start + timedelta(seconds=self.shim_seconds(median, spread))
        job = self.cast.shim_job(name)
        self.add(Run(job, new_run_id(), start, end, inputs=inputs, outputs=outputs))
        return end

    def crm_sync(self) -> None:
        """Every four hours for three weeks, until the run that hung CRM_MISSED slots ago."""
        due = crm_slots(self.now - timedelta(days=DAYS), self.now)
        hung = due[-CRM_MISSED - 1]
        job = self.cast.crm_sync
        for index, slot in enumerate(s for s in due if s < hung):
            start = slot + timedelta(minutes=self.rng.uniform(1, 4))
            end = start + timedelta(minutes=9 * math.exp(self.rng.gauss(0, 0.1)))
            rows = round(48_000 + 12 * index + self.rng.gauss(0, 150))
            self.add(crm_sync_run(self.cast, job, start, end, slot, rows))
        self.add(crm_sync_run(self.cast, job, hung + timedelta(minutes=2), None, hung, None))

    def shim_seconds(self, median: float, spread: float) -> float:
        """A small script's wall time: noisy on the log(1 + seconds) scale the detectors use."""
        return math.expm1(math.log1p(median) + self.rng.gauss(0, spread))

    def add(self, run: Run) -> None:
        self.runs.setdefault(run.job.name, []).append(run)


def crm_slots(since: datetime, now: datetime) -> list[datetime]:
    """crm_sync's scheduled slots after `since` whose grace has passed by `now`."""
    iterator = croniter(CRM_SCHEDULE, since)
    slots = []
    while (slot := iterator.get_next(datetime)) + CRM_GRACE <= now:
        slots.append(slot)
    return slots


def crm_sync_run(
    cast: Cast, job: JobRef, start: datetime, end: datetime | None, slot: datetime, rows: int | None
) -> Run:
    return Run(
        job,
        new_run_id(),
        start,
        end,
        inputs=(cast.accounts(),),
        outputs=(cast.users(rows),),
        nominal=slot,
    )


def stage_orders_run(
    cast: Cast, start: datetime, end: datetime, rows: int, dropped: bool = False
) -> Run:
    """A dbt run of the staging model: orders from the landing file, in euros."""
    return Run(
        cast.stage_orders,
        new_run_id(),
        start,
        end,
        inputs=(cast.landing(),),
        outputs=(cast.staging_orders(rows, dropped=dropped),),
    )
