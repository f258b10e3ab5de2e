"""`parse` and `column_lineage_facets`: the API the collector calls, beyond the goldens."""

from __future__ import annotations

from typing import Any

import pytest

from collector.lineage import sql_statements
from collector.lineage.sql import (
    ColumnEdge,
    SqlLineage,
    SqlParseError,
    column_lineage_facets,
    parse,
)
from collector.openlineage import ColumnLineageDatasetFacet

PRODUCER = "https://example.com/pipewarden-tests"


def edge_set(result: SqlLineage) -> set[tuple[str, str, str, str, str, str]]:
    return {
        (e.output, e.output_field, e.input, e.input_field, e.type, e.subtype) for e in result.edges
    }


# --- errors ----------------------------------------------------------------------------


def test_a_parse_error_names_the_statement_and_its_place_in_the_script() -> None:
    script = "INSERT INTO a SELECT x FROM b;\n\nINSERT INTO c\nSELECT (x FROM d;\nSELECT 1"
    with pytest.raises(SqlParseError) as raised:
        parse(script, "postgres")
    error = raised.value
    assert error.statement == "INSERT INTO c\nSELECT (x FROM d"
    assert (error.line, error.column) == (4, 11)
    assert "Expecting )" in error.message
    assert "line 4, column 11" in str(error)
    assert isinstance(error, ValueError)


def test_an_unterminated_string_is_a_parse_error_pointing_at_the_quote() -> None:
    with pytest.raises(SqlParseError) as raised:
        parse("SELECT 1;\nSELECT 'abc FROM t", "postgres")
    assert (raised.value.line, raised.value.column) == (2, 8)
    assert raised.value.statement == "SELECT 'abc FROM t"


def test_a_parse_error_message_shows_the_token_not_its_repr() -> None:
    with pytest.raises(SqlParseError) as raised:
        parse("SELECT a FROM WHERE", "postgres")
    assert "Token" not in raised.value.message
    assert "'WHERE'" in raised.value.message


def test_an_unknown_dialect_is_a_value_error_not_a_parse_error() -> None:
    with pytest.raises(ValueError, match="unknown SQL dialect 'nosuchsql'") as raised:
        parse("SELECT 1", "nosuchsql")
    assert not isinstance(raised.value, SqlParseError)


@pytest.mark.parametrize(
    ("alias", "name"),
    [("postgresql", "postgres"), ("MSSQL", "tsql"), ("sparksql", "spark"), ("ansi", None)],
)
def test_common_dialect_names_are_accepted(alias: str, name: str | None) -> None:
    sql = "INSERT INTO t SELECT a FROM s"
    assert parse(sql, alias) == parse(sql, name)


def test_deeply_nested_sql_is_a_parse_error_not_a_crash() -> None:
    with pytest.raises(SqlParseError):
        parse("SELECT " + "(" * 5000 + "1" + ")" * 5000)


# --- scripts ---------------------------------------------------------------------------


def test_empty_statements_and_comments_are_not_counted() -> None:
    result = parse("-- nothing\n;; /* still nothing */ ;\nSELECT 1 FROM t;\n")
    assert result.statements == 1
    assert result.inputs == ("t",)
    assert result.outputs == ()


def test_statements_that_move_no_data_are_counted_and_ignored() -> None:
    result = parse(
        "SET search_path = raw; BEGIN; INSERT INTO a SELECT x FROM b; COMMIT;", "postgres"
    )
    assert result.statements == 4
    assert (result.inputs, result.outputs) == (("b",), ("a",))


def test_a_table_dropped_before_it_is_created_is_still_an_output() -> None:
    """DROP IF EXISTS; CREATE … AS: the usual idempotent rebuild, not an intermediate."""
    result = parse("DROP TABLE IF EXISTS mart.x; CREATE TABLE mart.x AS SELECT a FROM raw.y")
    assert result.outputs == ("mart.x",)
    assert ("mart.x", "a", "raw.y", "a", "DIRECT", "IDENTITY") in edge_set(result)


def test_a_temp_table_written_twice_keeps_both_writes() -> None:
    script = """
        CREATE TEMP TABLE t (id int, v int);
        INSERT INTO t SELECT id, a FROM raw.one;
        INSERT INTO t SELECT id, b FROM raw.two;
        INSERT INTO mart.out SELECT id, v FROM t;
    """
    result = parse(script, "postgres")
    assert result.inputs == ("raw.one", "raw.two")
    assert result.outputs == ("mart.out",)
    assert {(e.output_field, e.input, e.input_field) for e in result.edges} == {
        ("id", "raw.one", "id"),
        ("id", "raw.two", "id"),
        ("v", "raw.one", "a"),
        ("v", "raw.two", "b"),
    }


def test_a_star_over_a_temp_table_without_schema_passes_through_to_its_source() -> None:
    script = """
        CREATE TEMP TABLE t AS SELECT * FROM raw.events;
        INSERT INTO mart.out SELECT user_id FROM t;
    """
    result = parse(script, "postgres")
    assert edge_set(result) == {
        ("mart.out", "user_id", "raw.events", "user_id", "DIRECT", "IDENTITY")
    }
    assert result.unresolved == ()


def test_a_statement_the_column_engine_cannot_follow_keeps_its_tables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail(*_: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(sql_statements, "_insert", fail)
    result = parse("INSERT INTO mart.out SELECT a FROM raw.one JOIN raw.two USING (k)")
    assert result.inputs == ("raw.one", "raw.two")
    assert result.outputs == ("mart.out",)
    assert result.edges == ()
    assert result.unresolved == ("mart.out.* (RuntimeError: boom)",)


# --- schemas ---------------------------------------------------------------------------


def test_a_schema_keyed_more_qualified_than_the_sql_still_applies() -> None:
    schema = {"warehouse.raw.orders": {"id": "int", "amount": "numeric"}}
    result = parse("INSERT INTO o SELECT * FROM orders", "postgres", schema)
    assert {e.output_field for e in result.edges} == {"id", "amount"}
    assert result.unresolved == ()


def test_a_schema_keyed_less_qualified_than_the_sql_still_applies() -> None:
    schema = {"orders": {"id": "int", "amount": "numeric"}}
    result = parse("INSERT INTO o SELECT * FROM prod.raw.orders", "postgres", schema)
    assert {(e.output_field, e.input) for e in result.edges} == {
        ("id", "prod.raw.orders"),
        ("amount", "prod.raw.orders"),
    }


def test_two_schemas_that_could_both_match_are_not_guessed_between() -> None:
    schema = {"raw.orders": {"id": "int"}, "archive.orders": {"id": "int", "old": "int"}}
    result = parse("INSERT INTO o SELECT * FROM orders", "postgres", schema)
    assert result.edges == ()
    assert result.unresolved == ("orders.*",)


def test_schema_names_are_matched_the_way_the_dialect_resolves_identifiers() -> None:
    schema = {"RAW.Orders": {"ID": "int", "Amount": "numeric"}}
    result = parse("INSERT INTO o SELECT * FROM raw.orders", "postgres", schema)
    assert {e.input_field for e in result.edges} == {"id", "amount"}


def test_an_unqualified_column_is_placed_by_the_one_schema_that_has_it() -> None:
    schema = {"a": {"id": "int", "x": "int"}, "b": {"id": "int", "y": "int"}}
    result = parse("INSERT INTO o SELECT x, y FROM a JOIN b ON a.id = b.id", None, schema)
    assert {(e.output_field, e.input) for e in result.edges if e.output_field} == {
        ("x", "a"),
        ("y", "b"),
    }


def test_a_column_a_stale_schema_lacks_is_unresolved_not_invented() -> None:
    schema = {"a": {"id": "int"}, "b": {"id": "int"}}
    result = parse("INSERT INTO o SELECT a.id, z FROM a JOIN b ON a.id = b.id", None, schema)
    assert result.unresolved == ("z",)


# --- classification details --------------------------------------------------------------


def test_lambda_parameters_are_not_columns() -> None:
    result = parse(
        "INSERT INTO o SELECT TRANSFORM(t.items, x -> x * t.rate) AS scaled FROM t", "spark"
    )
    assert {(e.input_field, e.subtype) for e in result.edges} == {
        ("items", "TRANSFORMATION"),
        ("rate", "TRANSFORMATION"),
    }
    assert result.unresolved == ()


def test_an_aggregate_filter_and_an_ordered_aggregate_only_decide() -> None:
    sql = """
        INSERT INTO o
        SELECT COUNT(*) FILTER (WHERE t.ok) AS n,
               ARRAY_AGG(t.name ORDER BY t.rank) AS names
        FROM t
    """
    result = parse(sql, "postgres")
    assert {(e.output_field, e.input_field, e.type, e.subtype) for e in result.edges} == {
        ("n", "ok", "INDIRECT", "FILTER"),
        ("names", "name", "DIRECT", "AGGREGATION"),
        ("names", "rank", "INDIRECT", "SORT"),
    }


def test_a_named_window_shapes_the_columns_that_use_it() -> None:
    sql = "INSERT INTO o SELECT SUM(t.v) OVER w AS s FROM t WINDOW w AS (PARTITION BY t.k)"
    result = parse(sql, "postgres")
    assert ("o", "s", "t", "k", "INDIRECT", "WINDOW") in edge_set(result)


def test_an_implicit_join_in_where_is_a_join() -> None:
    result = parse("INSERT INTO o SELECT a.x FROM a, b WHERE a.id = b.id AND b.flag")
    assert ("o", "", "a", "id", "INDIRECT", "JOIN") in edge_set(result)
    assert ("o", "", "b", "flag", "INDIRECT", "FILTER") in edge_set(result)


def test_a_hash_of_a_transformed_value_is_masked_and_a_plain_copy_is_not() -> None:
    result = parse("INSERT INTO o SELECT MD5(UPPER(u.email)) AS h, u.email FROM u", "postgres")
    masking = {e.output_field: e.masking for e in result.edges}
    assert masking == {"h": True, "email": False}


# --- the OpenLineage facet ---------------------------------------------------------------


def test_facets_follow_the_column_lineage_spec() -> None:
    sql = """
        INSERT INTO mart.daily
        SELECT o.day, SUM(o.amount) AS total, MD5(o.email) AS email_hash
        FROM raw.orders AS o JOIN raw.days AS d ON d.day = o.day
        WHERE o.status = 'paid'
        GROUP BY o.day, MD5(o.email)
    """
    result = parse(sql, "postgres")
    facets = column_lineage_facets(result, "warehouse", PRODUCER)
    assert list(facets) == ["mart.daily"]
    facet = facets["mart.daily"]
    ColumnLineageDatasetFacet.model_validate(facet)
    assert facet["_producer"] == PRODUCER
    assert facet["_schemaURL"].startswith("https://openlineage.io/spec/facets/1-2-0/")
    assert facet["fields"]["total"] == {
        "inputFields": [
            {
                "namespace": "warehouse",
                "name": "raw.orders",
                "field": "amount",
                "transformations": [
                    {
                        "type": "DIRECT",
                        "subtype": "AGGREGATION",
                        "masking": False,
                        "description": "SUM(o.amount)",
                    }
                ],
            }
        ]
    }
    hashed = facet["fields"]["email_hash"]["inputFields"][0]["transformations"][0]
    assert hashed["masking"] is True
    dataset = {(item["name"], item["field"]) for item in facet["dataset"]}
    assert dataset == {
        ("raw.days", "day"),
        ("raw.orders", "day"),
        ("raw.orders", "email"),
        ("raw.orders", "status"),
    }
    for item in facet["dataset"]:
        assert all(t["type"] == "INDIRECT" for t in item["transformations"])
    grouped = next(i for i in facet["dataset"] if (i["name"], i["field"]) == ("raw.orders", "day"))
    assert [t["subtype"] for t in grouped["transformations"]] == ["GROUP_BY", "JOIN"]


def test_an_input_field_reached_two_ways_lists_both_transformations() -> None:
    result = parse("INSERT INTO o SELECT COALESCE(t.a, 0) AS v FROM t")
    (entry,) = column_lineage_facets(result, "ns", PRODUCER)["o"]["fields"]["v"]["inputFields"]
    assert [(t["type"], t["subtype"]) for t in entry["transformations"]] == [
        ("DIRECT", "TRANSFORMATION"),
        ("INDIRECT", "CONDITIONAL"),
    ]


def test_a_plain_select_has_no_facet() -> None:
    assert column_lineage_facets(parse("SELECT a FROM t"), "ns", PRODUCER) == {}


def test_results_are_frozen_values() -> None:
    result = parse("INSERT INTO o SELECT a FROM t")
    assert result == parse("INSERT INTO o SELECT a FROM t")
    assert hash(result.edges[0]) == hash(ColumnEdge("o", "a", "t", "a", "DIRECT", "IDENTITY"))
    with pytest.raises(AttributeError):
        result.inputs = ()  # type: ignore[misc]
