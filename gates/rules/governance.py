"""Governance basics: a job has an owner, and its outputs have lineage. Warnings only."""

from __future__ import annotations

from gates.model import GateContext, Reason

NAME = "governance"


def rule(context: GateContext) -> list[Reason]:
    reasons = []
    if not context.owner:
        reasons.append(
            Reason(
                NAME,
                "warn",
                f"job {context.namespace}/{context.job} has no owner "
                "(set owner in the policy or send an ownership facet)",
            )
        )
    reasons.extend(
        Reason(NAME, "warn", f"output {output.label} has no column lineage", output.label)
        for output in context.outputs
        if not output.has_lineage
    )
    return reasons
