"""The TPC-H/TPC-DS bench corpus: every statement, full column lineage, checked against sqlglot.

`../shared/bench/` holds 50 statements (`INSERT INTO bench.out_qNN <query>`) and their
schemas. Every one must parse with nothing unresolved, and sqlglot's own `lineage()` is
the oracle: the DIRECT inputs of each output column are among the leaves it finds for
that column; every leaf it finds is an edge of ours (DIRECT, or INDIRECT where the
column only decides: CASE conditions, window keys, filters inside scalar subqueries);
and a column with any leaf has edges of its own.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlglot import exp, parse_one
from sqlglot.lineage import lineage as sqlglot_lineage

from collector.lineage.sql import parse

BENCH = Path(__file__).resolve().parents[3] / "shared" / "bench"


@cache
def corpus() -> tuple[list[dict[str, str]], dict[str, dict[str, dict[str, str]]]]:
    statements = json.loads((BENCH / "tpc_statements.json").read_text(encoding="utf-8"))
    schemas = json.loads((BENCH / "tpc_schemas.json").read_text(encoding="utf-8"))
    return statements, schemas


def schema_for(statement_id: str) -> dict[str, dict[str, str]]:
    schemas = corpus()[1]
    return schemas["TPCH_SCHEMA" if statement_id.startswith("tpch") else "TPCDS_SCHEMA"]


IDS = [statement["id"] for statement in corpus()[0]] if BENCH.exists() else []


def _statement(statement_id: str) -> str:
    return next(s["sql"] for s in corpus()[0] if s["id"] == statement_id)


def test_the_corpus_has_fifty_statements() -> None:
    assert len(IDS) == 50


@pytest.mark.parametrize("statement_id", IDS)
def test_full_column_lineage(statement_id: str) -> None:
    sql = _statement(statement_id)
    result = parse(sql, None, schema_for(statement_id))
    assert result.unresolved == ()
    assert result.outputs == (f"bench.out_{statement_id}",)
    assert result.inputs
    assert any(edge.output_field for edge in result.edges)


@pytest.mark.parametrize("statement_id", IDS)
def test_direct_edges_agree_with_sqlglot_lineage(statement_id: str) -> None:
    sql = _statement(statement_id)
    schema = schema_for(statement_id)
    result = parse(sql, None, schema)
    ours: dict[str, set[tuple[str, str]]] = {}
    deciding: dict[str, set[tuple[str, str]]] = {}
    for edge in result.edges:
        target = ours if edge.type == "DIRECT" else deciding
        target.setdefault(edge.output_field, set()).add((edge.input, edge.input_field))
    query = parse_one(sql).expression
    for name, node in sqlglot_lineage(None, query, schema).items():
        leaves = _leaves(node)
        mine = ours.get(name, set())
        assert mine <= leaves, name
        assert leaves <= mine | deciding.get(name, set()) | _rows(result), name
        if leaves:  # a column that reads any column has edges of its own
            assert mine | deciding.get(name, set()), name


def _leaves(node: Any) -> set[tuple[str, str]]:
    found = set()
    for step in node.walk():
        if isinstance(step.expression, exp.Table):
            found.add((step.expression.name, step.name.rsplit(".", 1)[-1]))
    return found


def _rows(result: Any) -> set[tuple[str, str]]:
    """The dataset-wide edges: what sqlglot follows into a subquery may be a filter here."""
    return {(edge.input, edge.input_field) for edge in result.edges if not edge.output_field}
