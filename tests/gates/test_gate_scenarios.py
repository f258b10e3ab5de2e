"""Gate scenarios through the HTTP API, each rule in monitor and in enforce mode."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from collector.store.engine import make_engine
from collector.store.tables import gate_decisions
from gates.policy import PolicyError
from tests.events import dataset, facet, run_event
from tests.gates.conftest import GatedClient

PG = "postgres://db.example:5432"


def _policy(mode: str, extra: str = "") -> str:
    return f'[defaults]\nmode = "{mode}"\n\n[[job]]\nname = "*"\nowner = "data-eng"\n{extra}'


def _post(client: TestClient, event: dict[str, Any]) -> None:
    response = client.post("/api/v1/lineage", json=event)
    assert response.status_code == 201, response.text


def _run(
    client: TestClient,
    job: str,
    *,
    inputs: list[dict[str, Any]] = (),  # type: ignore[assignment]
    outputs: list[dict[str, Any]] = (),  # type: ignore[assignment]
    end: str = "COMPLETE",
    at: datetime,
    column_lineage: dict[str, Any] | None = None,
) -> str:
    run_id = str(uuid.uuid4())
    start = run_event(
        "START",
        run_id=run_id,
        job=job,
        event_time=at.isoformat(),
        inputs=list(inputs),
        outputs=list(outputs),
    )
    _post(client, start)
    finished_outputs = [dict(o) for o in outputs]
    if column_lineage is not None:
        for output in finished_outputs:
            output["facets"] = dict(output.get("facets", {}), columnLineage=column_lineage)
    finish = run_event(
        end,
        run_id=run_id,
        job=job,
        event_time=(at + timedelta(minutes=5)).isoformat(),
        inputs=list(inputs),
        outputs=finished_outputs,
    )
    _post(client, finish)
    return run_id


def _gate(client: TestClient, job: str, **plan: Any) -> dict[str, Any]:
    if plan:
        response = client.post(f"/api/v1/gates/shop/{job}", json=plan)
    else:
        response = client.get(f"/api/v1/gates/shop/{job}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _rules(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["rule"], r["severity"]) for r in answer["reasons"]]


NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.mark.parametrize(("mode", "effective"), [("monitor", "allow"), ("enforce", "block")])
def test_failed_quality_check_on_an_input_blocks_its_consumer(
    gated: GatedClient, mode: str, effective: str
) -> None:
    client = gated(_policy(mode))
    checks = facet(
        "DataQualityAssertionsDatasetFacet",
        assertions=[
            {"assertion": "not_null", "column": "email", "success": False},
            {"assertion": "unique", "column": "id", "success": True},
        ],
    )
    _run(
        client,
        "load_users",
        outputs=[dataset("crm.users", PG, dataQualityAssertions=checks)],
        at=NOW - timedelta(hours=2),
    )
    _run(
        client,
        "export_users",
        inputs=[dataset("crm.users", PG)],
        outputs=[dataset("share.users", PG)],
        at=NOW - timedelta(hours=1),
    )

    answer = _gate(client, "export_users")
    assert answer["decision"] == "block"
    assert answer["mode"] == mode
    assert answer["effective"] == effective
    (reason,) = [r for r in answer["reasons"] if r["rule"] == "failed_quality"]
    assert reason["severity"] == "block"
    assert reason["column"] == "email"
    assert reason["dataset"] == f"{PG}/crm.users"
    assert "not_null failed on column email" in reason["message"]


def test_a_warn_severity_check_only_warns(gated: GatedClient) -> None:
    client = gated(_policy("enforce"))
    checks = facet(
        "DataQualityAssertionsDatasetFacet",
        assertions=[{"assertion": "rows > 10", "success": False, "severity": "warn"}],
    )
    _run(
        client,
        "load_users",
        outputs=[dataset("crm.users", PG, dataQualityAssertions=checks)],
        at=NOW - timedelta(hours=2),
    )
    _run(client, "export_users", inputs=[dataset("crm.users", PG)], at=NOW - timedelta(hours=1))
    answer = _gate(client, "export_users")
    assert answer["decision"] == "warn"
    assert answer["effective"] == "allow"
    assert ("failed_quality", "warn") in _rules(answer)


@pytest.mark.parametrize(
    ("mode", "extra", "severity", "effective"),
    [
        ("enforce", "", "warn", "allow"),
        ("enforce", "block_on_upstream_failure = true\n", "block", "block"),
        ("monitor", "block_on_upstream_failure = true\n", "block", "allow"),
    ],
)
def test_a_failed_upstream_run_warns_or_blocks_as_the_policy_says(
    gated: GatedClient, mode: str, extra: str, severity: str, effective: str
) -> None:
    client = gated(_policy(mode, extra))
    _run(client, "load_orders", outputs=[dataset("raw.orders", PG)], at=NOW - timedelta(hours=5))
    _run(client, "daily", inputs=[dataset("raw.orders", PG)], at=NOW - timedelta(hours=4))
    _run(
        client,
        "load_orders",
        outputs=[dataset("raw.orders", PG)],
        end="FAIL",
        at=NOW - timedelta(hours=1),
    )
    answer = _gate(client, "daily")
    (reason,) = [r for r in answer["reasons"] if r["rule"] == "upstream_failed"]
    assert reason["severity"] == severity
    assert answer["effective"] == effective
    assert "shop/load_orders, which writes" in reason["message"]
    assert "failed" in reason["message"]

    # the producer recovers: the consumer is no longer held back
    _run(client, "load_orders", outputs=[dataset("raw.orders", PG)], at=NOW - timedelta(minutes=30))
    assert "upstream_failed" not in [r["rule"] for r in _gate(client, "daily")["reasons"]]


@pytest.mark.parametrize("mode", ["monitor", "enforce"])
def test_a_stale_input_warns(gated: GatedClient, mode: str) -> None:
    client = gated(_policy(mode) + '\n[[dataset]]\nname = "raw.*"\nfreshness = "2h"\n')
    _run(client, "load_orders", outputs=[dataset("raw.orders", PG)], at=NOW - timedelta(hours=6))
    _run(client, "daily", inputs=[dataset("raw.orders", PG)], at=NOW - timedelta(minutes=10))
    answer = _gate(client, "daily")
    assert answer["decision"] == "warn"
    assert answer["effective"] == "allow"
    (reason,) = [r for r in answer["reasons"] if r["rule"] == "stale_input"]
    assert "expected within 2.0 h" in reason["message"]


def test_a_first_run_is_judged_on_its_declared_plan(gated: GatedClient) -> None:
    client = gated(_policy("enforce"))
    checks = facet(
        "DataQualityAssertionsDatasetFacet",
        assertions=[{"assertion": "not_null", "column": "id", "success": False}],
    )
    _run(
        client,
        "load_users",
        outputs=[dataset("crm.users", PG, dataQualityAssertions=checks)],
        at=NOW - timedelta(hours=1),
    )
    answer = _gate(
        client, "brand_new_job", inputs=[{"namespace": PG, "name": "crm.users"}], outputs=[]
    )
    assert answer["effective"] == "block"
    assert ("failed_quality", "block") in _rules(answer)


def test_every_decision_is_kept_with_the_would_blocks(
    gated: GatedClient, database_url: str
) -> None:
    client = gated(_policy("monitor"))
    checks = facet(
        "DataQualityAssertionsDatasetFacet",
        assertions=[{"assertion": "not_null", "column": "id", "success": False}],
    )
    _run(
        client,
        "load_users",
        outputs=[dataset("crm.users", PG, dataQualityAssertions=checks)],
        at=NOW - timedelta(hours=1),
    )
    _run(client, "export_users", inputs=[dataset("crm.users", PG)], at=NOW - timedelta(minutes=30))
    first = _gate(client, "export_users")
    _gate(client, "export_users")
    engine: Engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(gate_decisions).where(gate_decisions.c.job == "export_users")
            ).all()
            total = connection.execute(select(func.count()).select_from(gate_decisions)).scalar()
    finally:
        engine.dispose()
    assert total == 2
    assert {(r.decision, r.mode, r.effective) for r in rows} == {("block", "monitor", "allow")}
    assert str(rows[0].uuid) == first["decisionId"]
    assert rows[0].reasons[0]["rule"] == "failed_quality"


def test_a_job_with_no_owner_gets_a_governance_warning(gated: GatedClient) -> None:
    client = gated('[defaults]\nmode = "enforce"\n')
    _run(client, "orphan", outputs=[dataset("x.y", PG)], at=NOW - timedelta(hours=1))
    answer = _gate(client, "orphan")
    assert answer["decision"] == "warn"
    messages = [r["message"] for r in answer["reasons"] if r["rule"] == "governance"]
    assert (
        "job shop/orphan has no owner (set owner in the policy or send an ownership facet)"
        in messages
    )
    assert f"output {PG}/x.y has no column lineage" in messages


def _lineage(source: str, *columns: str) -> dict[str, Any]:
    """A columnLineage facet: output column `c` copied from `source`.`c` for each column."""
    return facet(
        "ColumnLineageDatasetFacet",
        fields={
            column: {"inputFields": [{"namespace": PG, "name": source, "field": column}]}
            for column in columns
        },
    )


@pytest.mark.parametrize(("mode", "effective"), [("monitor", "allow"), ("enforce", "block")])
def test_a_dropped_column_blocks_only_the_consumer_that_reads_it(
    gated: GatedClient, mode: str, effective: str
) -> None:
    client = gated(_policy(mode))
    before = [("id", "INTEGER"), ("customer_id", "INTEGER"), ("amount", "DECIMAL(10,2)")]
    after = [("id", "INTEGER"), ("amount", "DECIMAL(10,2)")]
    _run(
        client,
        "load_orders",
        outputs=[dataset("raw.orders", PG, fields=before)],
        at=NOW - timedelta(hours=5),
    )
    _run(
        client,
        "by_customer",
        inputs=[dataset("raw.orders", PG)],
        outputs=[dataset("mart.by_customer", PG)],
        at=NOW - timedelta(hours=4),
        column_lineage=_lineage("raw.orders", "customer_id", "amount"),
    )
    _run(
        client,
        "order_ids",
        inputs=[dataset("raw.orders", PG)],
        outputs=[dataset("mart.order_ids", PG)],
        at=NOW - timedelta(hours=4),
        column_lineage=_lineage("raw.orders", "id"),
    )
    _run(
        client,
        "load_orders",
        outputs=[dataset("raw.orders", PG, fields=after)],
        at=NOW - timedelta(hours=1),
    )

    reader = _gate(client, "by_customer")
    assert reader["decision"] == "block"
    assert reader["effective"] == effective
    (reason,) = [r for r in reader["reasons"] if r["rule"] == "breaking_schema_change"]
    assert (reason["severity"], reason["column"]) == ("block", "customer_id")
    assert reason["message"] == (
        f"column customer_id was removed in {PG}/raw.orders, and this job reads it"
    )

    bystander = _gate(client, "order_ids")
    assert bystander["effective"] == "allow"
    assert ("breaking_schema_change", "warn") in _rules(bystander)
    assert ("breaking_schema_change", "block") not in _rules(bystander)


def test_an_added_column_is_no_reason(gated: GatedClient) -> None:
    client = gated(_policy("enforce"))
    _run(
        client,
        "load_orders",
        outputs=[dataset("raw.orders", PG, fields=[("id", "INT")])],
        at=NOW - timedelta(hours=5),
    )
    _run(
        client,
        "order_ids",
        inputs=[dataset("raw.orders", PG)],
        outputs=[dataset("mart.order_ids", PG)],
        at=NOW - timedelta(hours=4),
        column_lineage=_lineage("raw.orders", "id"),
    )
    _run(
        client,
        "load_orders",
        outputs=[dataset("raw.orders", PG, fields=[("id", "INTEGER"), ("note", "TEXT")])],
        at=NOW - timedelta(hours=1),
    )
    assert _gate(client, "order_ids")["decision"] == "allow"


def test_an_invalid_policy_is_refused_with_its_line(gated: GatedClient) -> None:
    with pytest.raises(PolicyError, match=r"pipewarden.toml:5: \[job\] mode must be"):
        gated('[defaults]\nmode = "monitor"\n\n[[job]]\nmode = "enforced"\n')


def _copy(column: str, source: str, field: str, masking: bool = False) -> dict[str, Any]:
    transformation = {
        "type": "DIRECT",
        "subtype": "TRANSFORMATION" if masking else "IDENTITY",
        "masking": masking,
    }
    return {
        column: {
            "inputFields": [
                {"namespace": PG, "name": source, "field": field,
                 "transformations": [transformation]}
            ]
        }
    }  # fmt: skip


PII_POLICY = """
[[dataset]]
name = "crm.users"
pii = ["email"]

[[dataset]]
name = "public_share.*"
public = true
"""


@pytest.mark.parametrize(("mode", "effective"), [("monitor", "allow"), ("enforce", "block")])
def test_pii_reaching_a_public_table_is_blocked_and_the_masked_copy_passes(
    gated: GatedClient, mode: str, effective: str
) -> None:
    client = gated(_policy(mode) + PII_POLICY)
    users = [("id", "INT"), ("email", "TEXT")]
    _run(
        client,
        "load_users",
        outputs=[dataset("crm.users", PG, fields=users)],
        at=NOW - timedelta(hours=3),
    )
    # a staging copy in between: PII travels through it
    _run(
        client,
        "stage_users",
        inputs=[dataset("crm.users", PG)],
        outputs=[dataset("staging.users", PG)],
        at=NOW - timedelta(hours=2),
        column_lineage=facet(
            "ColumnLineageDatasetFacet", fields=_copy("mail", "crm.users", "email")
        ),
    )
    _run(
        client,
        "share_users",
        inputs=[dataset("staging.users", PG)],
        outputs=[dataset("public_share.users", PG)],
        at=NOW - timedelta(hours=1),
        column_lineage=facet(
            "ColumnLineageDatasetFacet", fields=_copy("contact", "staging.users", "mail")
        ),
    )
    _run(
        client,
        "share_hashed",
        inputs=[dataset("crm.users", PG)],
        outputs=[dataset("public_share.hashed", PG)],
        at=NOW - timedelta(hours=1),
        column_lineage=facet(
            "ColumnLineageDatasetFacet",
            fields=_copy("email_md5", "crm.users", "email", masking=True),
        ),
    )

    leaking = _gate(client, "share_users")
    assert leaking["decision"] == "block"
    assert leaking["effective"] == effective
    (reason,) = [r for r in leaking["reasons"] if r["rule"] == "pii_to_public"]
    assert reason["column"] == "contact"
    assert reason["message"] == (
        f"PII column {PG}/crm.users.email reaches {PG}/public_share.users.contact unmasked, "
        f"and {PG}/public_share.users is public"
    )
    masked = _gate(client, "share_hashed")
    assert "pii_to_public" not in [r["rule"] for r in masked["reasons"]]
    assert masked["effective"] == "allow"


def test_a_column_tag_facet_marks_pii_too(gated: GatedClient) -> None:
    client = gated(_policy("enforce") + '\n[[dataset]]\nname = "public_share.*"\npublic = true\n')
    tags = facet(
        "TagsDatasetFacet", tags=[{"key": "classification", "value": "PII", "field": "phone"}]
    )
    _run(
        client,
        "load_users",
        outputs=[dataset("crm.users", PG, tags=tags)],
        at=NOW - timedelta(hours=2),
    )
    _run(
        client,
        "share_users",
        inputs=[dataset("crm.users", PG)],
        outputs=[dataset("public_share.users", PG)],
        at=NOW - timedelta(hours=1),
        column_lineage=facet(
            "ColumnLineageDatasetFacet", fields=_copy("phone", "crm.users", "phone")
        ),
    )
    assert ("pii_to_public", "block") in _rules(_gate(client, "share_users"))


def test_an_open_volume_anomaly_on_an_input_warns_its_consumer(gated: GatedClient) -> None:
    client = gated(_policy("enforce"))
    first = NOW - timedelta(days=20)
    for day in range(16):
        rows = 0 if day == 15 else 1000 + day
        _run(
            client,
            "load_orders",
            outputs=[dataset("raw.orders", PG, row_count=rows)],
            at=first + timedelta(days=day),
        )
    _run(client, "daily", inputs=[dataset("raw.orders", PG)], at=NOW - timedelta(hours=1))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        answer = _gate(client, "daily")
        anomalies = [r for r in answer["reasons"] if r["rule"] == "open_anomaly"]
        if anomalies:
            break
        time.sleep(0.2)
    (reason,) = anomalies
    assert reason["severity"] == "warn"
    assert reason["dataset"] == f"{PG}/raw.orders"
    assert answer["effective"] == "allow"


@pytest.mark.parametrize(
    ("select", "blocked"),
    [("email AS contact", True), ("MD5(email) AS contact", False)],
)
def test_a_first_run_is_judged_on_the_sql_it_declares(
    gated: GatedClient, select: str, blocked: bool
) -> None:
    client = gated(_policy("enforce") + PII_POLICY)
    _run(
        client,
        "load_users",
        outputs=[dataset("crm.users", PG, fields=[("id", "INT"), ("email", "TEXT")])],
        at=NOW - timedelta(hours=1),
    )
    answer = _gate(
        client,
        "new_share",
        inputs=[{"namespace": PG, "name": "crm.users"}],
        outputs=[{"namespace": PG, "name": "public_share.contacts"}],
        sql=f"INSERT INTO public_share.contacts SELECT id, {select} FROM crm.users",
        dialect="postgres",
    )
    assert (("pii_to_public", "block") in _rules(answer)) is blocked
    assert answer["effective"] == ("block" if blocked else "allow")
