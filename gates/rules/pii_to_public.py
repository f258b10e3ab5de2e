"""PII must not reach a public output: a PII-tagged column flowing, through column lineage
and without a masking step (a hash, a count), into a dataset marked public blocks the job."""

from __future__ import annotations

from gates.model import GateContext, Reason

NAME = "pii_to_public"


def rule(context: GateContext) -> list[Reason]:
    return [
        Reason(
            NAME,
            "block",
            f"PII column {flow.source_dataset}.{flow.source_column} reaches "
            f"{output.label}.{flow.output_column} unmasked, and {output.label} is public",
            output.label,
            flow.output_column,
        )
        for output in context.outputs
        if output.public
        for flow in output.pii_flows
    ]
