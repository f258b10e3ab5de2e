"""Failed data-quality checks on an input: block for severity error, warn otherwise.

The checks are whatever sent `dataQualityAssertions` for the dataset's latest check: the
shim's pandera checks, dbt tests through dbt-ol, any other producer.
"""

from __future__ import annotations

from gates.model import GateContext, Reason, Severity

NAME = "failed_quality"
_WARNING_SEVERITIES = {"warn", "warning", "info", "low"}


def rule(context: GateContext) -> list[Reason]:
    reasons = []
    for source in context.inputs:
        for check in source.assertions:
            if check.success:
                continue
            severity: Severity = (
                "warn" if (check.severity or "").lower() in _WARNING_SEVERITIES else "block"
            )
            where = f"column {check.column} of {source.label}" if check.column else source.label
            reasons.append(
                Reason(
                    NAME,
                    severity,
                    f"quality check {check.assertion} failed on {where}",
                    source.label,
                    check.column or None,
                )
            )
    return reasons
