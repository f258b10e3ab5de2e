"""An input older than its freshness expectation (policy `freshness`) warns."""

from __future__ import annotations

from datetime import timedelta

from gates.model import GateContext, Reason

NAME = "stale_input"


def rule(context: GateContext) -> list[Reason]:
    reasons = []
    for source in context.inputs:
        if source.freshness is None:
            continue
        if source.last_modified is None:
            reasons.append(
                Reason(
                    NAME,
                    "warn",
                    f"{source.label} has never been written; it is "
                    f"expected every {_human(source.freshness)}",
                    source.label,
                )
            )
            continue
        age = context.now - source.last_modified
        if age > source.freshness:
            reasons.append(
                Reason(
                    NAME,
                    "warn",
                    f"{source.label} was last written "
                    f"{_human(age)} ago; expected within {_human(source.freshness)}",
                    source.label,
                )
            )
    return reasons


def _human(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{max(seconds, 0) // 60} min"
