"""A breaking schema change on an input blocks a job that reads the changed column.

Reading includes joining or filtering on it: dropping a join key breaks a consumer whose
outputs never mention it. A change to a column the job does not read is at most a warning;
when no lineage says which columns the job reads, a breaking change warns.
"""

from __future__ import annotations

from gates.model import GateContext, InputState, Reason, SchemaChange

NAME = "breaking_schema_change"


def rule(context: GateContext) -> list[Reason]:
    return [
        _reason(source, change)
        for source in context.inputs
        for change in source.schema_changes
        if change.breaking
    ]


def _reason(source: InputState, change: SchemaChange) -> Reason:
    what = _describe(change)
    if source.columns_read is None:
        return Reason(
            NAME,
            "warn",
            f"{what} in {source.label}; no lineage says whether this job reads it",
            source.label,
            change.column,
        )
    if change.column in source.columns_read:
        return Reason(
            NAME,
            "block",
            f"{what} in {source.label}, and this job reads it",
            source.label,
            change.column,
        )
    return Reason(
        NAME,
        "warn",
        f"{what} in {source.label}; this job does not read it",
        source.label,
        change.column,
    )


def _describe(change: SchemaChange) -> str:
    if change.kind == "removed":
        return f"column {change.column} was removed"
    if change.kind == "type_changed":
        return f"column {change.column} changed type from {change.old_type} to {change.new_type}"
    if change.kind == "renamed":
        return f"column {change.column} was renamed to {change.renamed_to}"
    return f"column {change.column} was {change.kind}"
