"""The gate's decision: every rule applied, the worst reason deciding."""

from __future__ import annotations

from gates.model import Decision, GateContext
from gates.rules import RULES


def decide(context: GateContext) -> Decision:
    """block if any reason blocks, warn if any warns, else allow."""
    reasons = tuple(reason for rule in RULES for reason in rule(context))
    if any(reason.severity == "block" for reason in reasons):
        return Decision("block", reasons)
    if reasons:
        return Decision("warn", reasons)
    return Decision("allow")


def effective(decision: Decision, mode: str) -> str:
    """What happens to the run: only an enforcing gate stops it."""
    return "block" if decision.decision == "block" and mode == "enforce" else "allow"
