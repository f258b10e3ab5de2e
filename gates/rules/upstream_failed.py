"""An input's producer failed: its latest run failed or aborted after its last success.

A warning, unless the job's policy says `block_on_upstream_failure = true`.
"""

from __future__ import annotations

from gates.model import GateContext, Reason, Severity

NAME = "upstream_failed"
_FAILED = {"FAILED", "ABORTED"}


def rule(context: GateContext) -> list[Reason]:
    severity: Severity = "block" if context.block_on_upstream_failure else "warn"
    return [
        Reason(
            NAME,
            severity,
            f"{producer.namespace}/{producer.job}, which writes {source.label}, "
            f"{producer.state.lower()} at {producer.at:%Y-%m-%d %H:%M} UTC"
            + (
                f" (last success {producer.last_success:%Y-%m-%d %H:%M})"
                if producer.last_success
                else " and has never succeeded"
            ),
            source.label,
        )
        for source in context.inputs
        for producer in source.producers
        if producer.state in _FAILED
        and (producer.last_success is None or producer.last_success < producer.at)
    ]
