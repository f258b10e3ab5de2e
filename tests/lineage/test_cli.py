"""`pipewarden lineage FILE.sql …`, through click's test runner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.lineage.cli import lineage
from collector.openlineage import ColumnLineageDatasetFacet

DAILY = """
INSERT INTO mart.daily (day, total, email_hash)
SELECT o.day, SUM(o.amount), MD5(o.email)
FROM raw.orders AS o
WHERE o.status = 'paid'
GROUP BY o.day, MD5(o.email);
"""
STAR = "INSERT INTO mart.copy SELECT * FROM raw.orders;"
SCHEMA = {"raw.orders": {"day": "date", "amount": "numeric", "email": "text", "status": "text"}}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "daily": tmp_path / "daily.sql",
        "star": tmp_path / "star.sql",
        "broken": tmp_path / "broken.sql",
        "schema": tmp_path / "schema.json",
    }
    paths["daily"].write_text(DAILY, encoding="utf-8")
    paths["star"].write_text(STAR, encoding="utf-8")
    paths["broken"].write_text("SELECT 1;\nINSERT INTO t\nSELECT (a FROM s;\n", encoding="utf-8")
    paths["schema"].write_text(json.dumps(SCHEMA), encoding="utf-8")
    return paths


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(lineage, [str(arg) for arg in args])
    return result.exit_code, result.stdout, result.stderr


def test_table_lists_tables_and_every_edge(files: dict[str, Path]) -> None:
    code, out, _ = run(files["daily"], "--dialect", "postgres")
    assert code == 0
    assert out == (
        "inputs:  raw.orders\n"
        "outputs: mart.daily\n"
        "\n"
        "OUTPUT                 INPUT              TRANSFORMATION                 DESCRIPTION\n"
        "mart.daily (rows)      raw.orders.day     INDIRECT/GROUP_BY              o.day\n"
        "mart.daily (rows)      raw.orders.email   INDIRECT/GROUP_BY masking      MD5(o.email)\n"
        "mart.daily (rows)      raw.orders.status  INDIRECT/FILTER                "
        "o.status = 'paid'\n"
        "mart.daily.day         raw.orders.day     DIRECT/IDENTITY\n"
        "mart.daily.email_hash  raw.orders.email   DIRECT/TRANSFORMATION masking  MD5(o.email)\n"
        "mart.daily.total       raw.orders.amount  DIRECT/AGGREGATION             SUM(o.amount)\n"
    )


def test_json_is_openlineage_inputs_and_outputs_with_the_facet(files: dict[str, Path]) -> None:
    code, out, _ = run(files["daily"], "--format", "json", "--namespace", "warehouse")
    assert code == 0
    document = json.loads(out)
    assert document["inputs"] == [{"namespace": "warehouse", "name": "raw.orders"}]
    (output,) = document["outputs"]
    assert (output["namespace"], output["name"]) == ("warehouse", "mart.daily")
    facet = output["facets"]["columnLineage"]
    ColumnLineageDatasetFacet.model_validate(facet)
    assert set(facet["fields"]) == {"day", "total", "email_hash"}
    assert {item["field"] for item in facet["dataset"]} == {"day", "email", "status"}


def test_json_namespace_defaults_to_default(files: dict[str, Path]) -> None:
    _, out, _ = run(files["daily"], "--format", "json")
    assert json.loads(out)["inputs"][0]["namespace"] == "default"


def test_several_files_give_one_json_line_each(files: dict[str, Path]) -> None:
    code, out, _ = run(files["daily"], files["star"], "--format", "json")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    assert [json.loads(line)["outputs"][0]["name"] for line in lines] == ["mart.daily", "mart.copy"]


def test_several_files_in_table_format_are_headed_by_name(files: dict[str, Path]) -> None:
    _, out, _ = run(files["daily"], files["star"])
    assert f"== {files['daily']}" in out
    assert f"== {files['star']}" in out


def test_without_schema_a_star_is_reported_unresolved(files: dict[str, Path]) -> None:
    code, out, _ = run(files["star"])
    assert code == 0
    assert "unresolved (no schema places them): raw.orders.*" in out


def test_a_schema_file_expands_the_star(files: dict[str, Path]) -> None:
    code, out, _ = run(files["star"], "--schema", files["schema"])
    assert code == 0
    assert "unresolved" not in out
    for column in SCHEMA["raw.orders"]:
        assert f"mart.copy.{column}" in out


def test_sql_that_does_not_parse_exits_2_with_statement_and_position(
    files: dict[str, Path],
) -> None:
    code, out, err = run(files["daily"], files["broken"])
    assert code == 2
    assert "mart.daily" in out  # files before the broken one were reported
    assert f"{files['broken']}: line 3, column 11: Expecting )" in err
    assert "    INSERT INTO t\n    SELECT (a FROM s" in err


def test_an_unknown_dialect_is_a_usage_error(files: dict[str, Path]) -> None:
    code, _, err = run(files["daily"], "--dialect", "nosuchsql")
    assert code == 2
    assert "--dialect" in err
    assert "nosuchsql" in err


@pytest.mark.parametrize(
    ("content", "problem"),
    [("not json", "Expecting value"), ("[1]", "object of tables"), ('{"t": {"a": 1}}', "'t'")],
)
def test_a_bad_schema_file_is_a_usage_error(
    files: dict[str, Path], content: str, problem: str
) -> None:
    files["schema"].write_text(content, encoding="utf-8")
    code, _, err = run(files["daily"], "--schema", files["schema"])
    assert code == 2
    assert "--schema" in err
    assert problem in err


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run(tmp_path / "nope.sql")
    assert code == 2
    assert "nope.sql" in err


def test_sql_can_come_from_stdin() -> None:
    result = CliRunner().invoke(lineage, ["-"], input="INSERT INTO a SELECT x FROM b")
    assert result.exit_code == 0
    assert "outputs: a" in result.stdout


def test_importing_the_command_does_not_load_sqlglot() -> None:
    """`pipewarden` starts fast: sqlglot loads only when `lineage` runs."""
    code = "import sys, collector.lineage.cli; print('sqlglot' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
