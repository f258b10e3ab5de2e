"""How far each job has come on the road to an enforced gate, and the next step.

The scale (from the project's brief): 1 cron only, 2 observed (events), 3 lineage and
quality checks, 4 gated in monitor mode with few would-blocks, 5 enforced with detectors
and SLAs. The would-block count over the last decisions is what says a job is ready.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row

from collector.store import reads
from gates.policy import Policy

WINDOW = 30  # the decisions readiness is judged on
READY_SHARE = 0.1  # at most this share of would-blocks: ready to enforce
LABELS = {
    1: "cron only",
    2: "observed",
    3: "lineage and quality checks",
    4: "gated in monitor mode",
    5: "enforced",
}


@dataclass(frozen=True)
class Maturity:
    namespace: str
    job: str
    level: int
    mode: str
    decisions: int
    would_block: int
    blocked: int
    next_step: str

    def as_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "job": self.job,
            "level": self.level,
            "label": LABELS[self.level],
            "mode": self.mode,
            "recentDecisions": self.decisions,
            "wouldBlock": self.would_block,
            "blocked": self.blocked,
            "nextStep": self.next_step,
        }


def assess(connection: Connection, policy: Policy, namespace: str | None) -> list[Maturity]:
    return [
        assess_job(connection, policy, job)
        for job in reads.all_jobs(connection)
        if namespace is None or job.namespace == namespace
    ]


def assess_job(connection: Connection, policy: Policy, job: Row[Any]) -> Maturity:
    settings = policy.for_job(job.namespace, job.name)
    latest = reads.latest_run(connection, job.id)
    lineage = reads.columns_read(connection, job.id) is not None
    checked = latest is not None and any(
        reads.latest_assertions(connection, io.dataset_id)
        for io in reads.run_datasets(connection, latest.uuid)
    )
    decisions = reads.recent_decisions(connection, job.namespace, job.name, WINDOW)
    would_block = sum(1 for d in decisions if d.decision == "block" and d.mode == "monitor")
    blocked = sum(1 for d in decisions if d.effective == "block")
    reasons = Counter(
        reason["rule"]
        for d in decisions
        if d.decision == "block"
        for reason in d.reasons
        if reason["severity"] == "block"
    )
    ready = bool(decisions) and would_block <= READY_SHARE * len(decisions)
    level, step = _level(
        observed=latest is not None,
        lineage=lineage,
        checked=checked,
        decisions=len(decisions),
        would_block=would_block,
        blocked=blocked,
        ready=ready,
        enforced=settings.mode == "enforce",
        scheduled=settings.schedule is not None or settings.sla is not None,
        reasons=reasons,
    )
    return Maturity(
        job.namespace, job.name, level, settings.mode, len(decisions), would_block, blocked, step
    )


def _level(
    *,
    observed: bool,
    lineage: bool,
    checked: bool,
    decisions: int,
    would_block: int,
    blocked: int,
    ready: bool,
    enforced: bool,
    scheduled: bool,
    reasons: Counter[str],
) -> tuple[int, str]:
    if not observed:
        return (
            1,
            "report its runs: wrap it with `pipewarden run`, "
            "or point its OpenLineage integration at pipewarden",
        )
    if not (lineage and checked):
        missing = [
            what
            for what, present in (
                ("column lineage (facet or --sql)", lineage),
                ("quality checks (--check, dbt tests)", checked),
            )
            if not present
        ]
        return 2, "send " + " and ".join(missing)
    if enforced:
        if scheduled:
            return 5, f"enforced: blocked {blocked} of the last {decisions} runs"
        return 4, "enforced, but declare a schedule or SLA in the policy so missed runs are found"
    if not decisions:
        return 3, "ask the gate before each run (`pipewarden run` does) to see what it would block"
    summary = f"would have blocked {would_block} of the last {decisions} runs"
    if ready:
        return 4, f'{summary}: ready to enforce (mode = "enforce" in the policy)'
    common = ", ".join(f"{rule} {count}x" for rule, count in reasons.most_common(3))
    return 3, f"{summary} ({common}): fix those before enforcing"
