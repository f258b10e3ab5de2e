"""An open anomaly on an input (a volume drop, zero rows, …) warns its consumers."""

from __future__ import annotations

from gates.model import GateContext, Reason

NAME = "open_anomaly"


def rule(context: GateContext) -> list[Reason]:
    return [
        Reason(NAME, "warn", f"open finding on {source.label}: {message}", source.label)
        for source in context.inputs
        for message in source.open_anomalies
    ]
