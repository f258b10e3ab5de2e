"""The SQL lineage engine against hand-reviewed golden files (see `golden.py`)."""

from __future__ import annotations

import json
import os

import pytest

from collector.lineage.sql import parse
from tests.lineage.golden import Case, cases, dump, render

UPDATE = os.environ.get("PIPEWARDEN_UPDATE_GOLDEN") == "1"
CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_golden(case: Case) -> None:
    actual = render(parse(case.sql, case.dialect, case.schema))
    if UPDATE:
        case.expected_path.write_text(dump(actual), encoding="utf-8")
    assert case.expected_path.exists(), f"no {case.expected_path.name}: run with UPDATE"
    expected = json.loads(case.expected_path.read_text(encoding="utf-8"))
    assert actual == expected


def test_the_goldens_cover_every_statement_kind_dialect_and_transformation() -> None:
    """The golden set is the specification: it must keep covering everything asked for."""
    dialects = {case.dialect for case in CASES}
    assert {
        "postgres",
        "snowflake",
        "bigquery",
        "spark",
        "databricks",
        "tsql",
        "mysql",
        "redshift",
        "duckdb",
    } <= dialects
    text = "\n".join(case.expected_path.read_text(encoding="utf-8") for case in CASES)
    for kind in (
        "DIRECT/IDENTITY",
        "DIRECT/TRANSFORMATION",
        "DIRECT/AGGREGATION",
        "INDIRECT/JOIN",
        "INDIRECT/FILTER",
        "INDIRECT/GROUP_BY",
        "INDIRECT/SORT",
        "INDIRECT/WINDOW",
        "INDIRECT/CONDITIONAL",
        " masking",
    ):
        assert kind in text, kind
    sql = "\n".join(case.sql.upper() for case in CASES)
    for statement in (
        "INSERT INTO",
        "INSERT OVERWRITE",
        "CREATE OR REPLACE TABLE",
        "CREATE VIEW",
        "INTO #",
        "MERGE INTO",
        "UPDATE ",
        "DELETE FROM",
        "UNION ALL",
        "QUALIFY",
        "EXISTS",
        "COALESCE",
        "CASE WHEN",
        "OVER (",
        "UNNEST",
    ):
        assert statement in sql, statement
