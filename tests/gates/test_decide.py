"""The decision: the worst reason decides; only an enforcing gate stops a run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gates.decide import decide, effective
from gates.model import Assertion, GateContext, InputState, OutputState, PiiFlow, ProducerRun

NOW = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)


def _context(**changes: object) -> GateContext:
    base = GateContext(namespace="shop", job="daily", now=NOW, owner="data-eng")
    return GateContext(**{**vars(base), **changes})  # type: ignore[arg-type]


def test_nothing_known_allows() -> None:
    decision = decide(_context())
    assert decision.decision == "allow"
    assert decision.reasons == ()


def test_a_warning_warns_and_never_stops_a_run() -> None:
    producer = ProducerRun(
        "shop", "load", "FAILED", NOW - timedelta(hours=1), NOW - timedelta(days=1)
    )
    decision = decide(_context(inputs=(InputState("pg", "raw.orders", producers=(producer,)),)))
    assert decision.decision == "warn"
    assert effective(decision, "enforce") == "allow"


def test_a_block_stops_the_run_only_in_enforce_mode() -> None:
    failed = Assertion("not_null", "id", False, None, NOW)
    decision = decide(_context(inputs=(InputState("pg", "raw.orders", assertions=(failed,)),)))
    assert decision.decision == "block"
    assert effective(decision, "enforce") == "block"
    assert effective(decision, "monitor") == "allow"


def test_pii_reaching_a_public_output_blocks_and_a_private_one_does_not() -> None:
    flow = PiiFlow("contact", "pg/crm.users", "email")
    public = decide(
        _context(outputs=(OutputState("pg", "share.users", public=True, pii_flows=(flow,)),))
    )
    assert public.decision == "block"
    (reason,) = public.reasons
    assert reason.message == (
        "PII column pg/crm.users.email reaches pg/share.users.contact unmasked, "
        "and pg/share.users is public"
    )
    private = decide(_context(outputs=(OutputState("pg", "mart.users", pii_flows=(flow,)),)))
    assert private.decision == "allow"
