"""The gate rules, one per module; RULES lists them in the order their reasons are shown."""

from gates.model import Rule
from gates.rules import (
    breaking_schema,
    failed_quality,
    governance,
    open_anomaly,
    pii_to_public,
    stale_input,
    upstream_failed,
)

RULES: tuple[Rule, ...] = (
    breaking_schema.rule,
    pii_to_public.rule,
    failed_quality.rule,
    upstream_failed.rule,
    stale_input.rule,
    open_anomaly.rule,
    governance.rule,
)
