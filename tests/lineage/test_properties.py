"""Property tests: whatever text comes in, `parse` returns lineage or a SqlParseError.

The collector parses SQL from any producer's events; a crash there would be a crash on
ingestion. Three sources of input: arbitrary text, soups of SQL tokens (which reach the
parser's and the analyser's deeper paths), and real statements damaged at random.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from collector.lineage.sql import SqlLineage, SqlParseError, parse

# Hypothesis keeps caches on disk; keep them out of the work tree.
set_hypothesis_home_dir(str(Path(tempfile.gettempdir()) / "pipewarden-hypothesis"))

DIALECTS = [None, "postgres", "snowflake", "bigquery", "spark", "databricks", "tsql", "mysql"]
DIALECTS += ["redshift", "duckdb"]
SCHEMA = {"t": {"a": "int", "id": "int"}, "raw.u": {"b": "text", "id": "int"}}
TOKENS = [
    "SELECT",
    "FROM",
    "WHERE",
    "INSERT",
    "INTO",
    "OVERWRITE",
    "TABLE",
    "UPDATE",
    "SET",
    "MERGE",
    "USING",
    "ON",
    "WHEN",
    "MATCHED",
    "THEN",
    "NOT",
    "JOIN",
    "LEFT",
    "CROSS",
    "APPLY",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "QUALIFY",
    "WITH",
    "RECURSIVE",
    "AS",
    "CASE",
    "END",
    "ELSE",
    "COALESCE",
    "IF",
    "NULLIF",
    "OVER",
    "PARTITION",
    "UNION",
    "ALL",
    "EXISTS",
    "IN",
    "CREATE",
    "TEMP",
    "VIEW",
    "DROP",
    "DELETE",
    "VALUES",
    "NULL",
    "COUNT",
    "MD5",
    "SUM",
    "LATERAL",
    "UNNEST",
    "WINDOW",
    "DISTINCT",
    "LIMIT",
    "(",
    ")",
    ",",
    ";",
    "*",
    "=",
    "+",
    "-",
    "<",
    ">",
    ".",
    "a",
    "b",
    "id",
    "t",
    "raw.u",
    "t.a",
    "u.b",
    "1",
    "'x'",
    "#tmp",
    "`q`",
    '"Q"',
    "[x]",
    "?",
    ":p",
    "@v",
    "$1",
    "--",
    "/*",
    "*/",
    "$$",
    "->",
]
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "bench" / "tpc_statements.json"
GOLDEN_SQL = [
    path.read_text(encoding="utf-8") for path in (Path(__file__).parent / "golden").glob("*.sql")
]


def _statements() -> list[str]:
    corpus = json.loads(CORPUS.read_text(encoding="utf-8")) if CORPUS.exists() else []
    return [item["sql"] for item in corpus] + GOLDEN_SQL


def check(sql: str, dialect: str | None) -> None:
    """`parse` returns a SqlLineage or raises SqlParseError; anything else fails the test."""
    for schema in (None, SCHEMA):
        outcome: SqlLineage | SqlParseError
        try:
            outcome = parse(sql, dialect, schema)
        except SqlParseError as error:
            outcome = error
        if isinstance(outcome, SqlParseError):
            assert isinstance(outcome.message, str)
            assert isinstance(outcome.statement, str)
        else:
            assert outcome.statements >= 0


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.text(max_size=200), st.sampled_from(DIALECTS))
def test_arbitrary_text_never_crashes(sql: str, dialect: str | None) -> None:
    check(sql, dialect)


@settings(
    max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join), st.sampled_from(DIALECTS))
def test_sql_token_soup_never_crashes(sql: str, dialect: str | None) -> None:
    check(sql, dialect)


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.data(), st.sampled_from(DIALECTS))
def test_damaged_real_statements_never_crash(data: st.DataObject, dialect: str | None) -> None:
    words = data.draw(st.sampled_from(_statements())).split()
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(words) - 1))
        action = data.draw(st.sampled_from(["drop", "repeat", "replace"]))
        if action == "drop" and len(words) > 1:
            del words[index]
        elif action == "repeat":
            words.insert(index, data.draw(st.sampled_from(words)))
        else:
            words[index] = data.draw(st.sampled_from(TOKENS))
    check(" ".join(words), dialect)
