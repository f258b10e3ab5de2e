"""`pipewarden lineage FILE.sql …`: the column lineage of SQL files, offline.

Registered on the `pipewarden` group by the collector's CLI. Only click and the
standard library load with this module; sqlglot is imported when the command runs, so
`pipewarden --help` and the shim stay fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from collector.lineage.sql_model import SqlLineage, SqlParseError

PRODUCER = "https://github.com/pipewarden/pipewarden"
EXIT_PARSE_ERROR = 2


@click.command("lineage")
@click.argument(
    "files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path),
    metavar="FILE.sql…",
)
@click.option(
    "--dialect",
    help="SQL dialect: postgres, snowflake, bigquery, spark, databricks, tsql, mysql, "
    "redshift, duckdb, … [default: sqlglot's generic SQL]",
)
@click.option(
    "--schema",
    "schema_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="SCHEMA.json",
    help='Table schemas: {"raw.orders": {"id": "int", "amount": "numeric"}}. '
    "Expands SELECT * and places unqualified columns.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "table"]),
    default="table",
    show_default=True,
    help="json: per file, OpenLineage inputs and outputs with the columnLineage facet; "
    "table: a readable edge list.",
)
@click.option(
    "--namespace",
    default="default",
    show_default=True,
    help="OpenLineage namespace of every dataset in the JSON output.",
)
def lineage(
    files: tuple[Path, ...],
    dialect: str | None,
    schema_file: Path | None,
    output_format: str,
    namespace: str,
) -> None:
    """Print the table and column lineage of SQL scripts, every edge classified.

    \b
        pipewarden lineage etl/daily.sql --dialect snowflake --schema schemas.json

    Each edge says how the input reaches the output: DIRECT (IDENTITY, TRANSFORMATION,
    AGGREGATION) or INDIRECT (JOIN, FILTER, GROUP_BY, SORT, WINDOW, CONDITIONAL), and
    whether a hash or count masks it. Columns that no schema places are listed as
    unresolved rather than guessed. Exit 2 when a file's SQL does not parse.
    """
    from collector.lineage.sql import SqlParseError, parse

    schema = _read_schema(schema_file) if schema_file is not None else None
    for path in files:
        text = _read_sql(path)
        try:
            result = parse(text, dialect, schema)
        except SqlParseError as error:
            _fail(path, error)
        except ValueError as error:  # an unknown dialect
            raise click.BadParameter(str(error), param_hint="--dialect") from None
        if output_format == "json":
            document = _document(result, namespace)
            indent = 2 if len(files) == 1 else None
            click.echo(json.dumps(document, indent=indent, ensure_ascii=False))
        else:
            if len(files) > 1:
                click.echo(f"== {path}")
            click.echo(_table(result))


def _read_sql(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise click.BadParameter(f"{path}: {error}", param_hint="FILE.sql") from None


def _read_schema(path: Path) -> dict[str, dict[str, str]]:
    """SCHEMA.json: an object of tables, each an object of column name to type."""
    hint = "--schema"
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise click.BadParameter(f"{path}: {error}", param_hint=hint) from None
    if not isinstance(loaded, dict):
        raise click.BadParameter(f"{path}: expected an object of tables", param_hint=hint)
    schema: dict[str, dict[str, str]] = {}
    for table, columns in loaded.items():
        if not isinstance(columns, dict) or not all(
            isinstance(kind, str) for kind in columns.values()
        ):
            raise click.BadParameter(
                f"{path}: table {table!r} must map column names to type names, "
                '(e.g. {"id": "int"})',
                param_hint=hint,
            )
        schema[table] = dict(columns)
    return schema


def _fail(path: Path, error: SqlParseError) -> None:
    where = f"line {error.line}, column {error.column}" if error.line is not None else "?"
    click.echo(f"pipewarden lineage: {path}: {where}: {error.message}", err=True)
    click.echo(_indent(error.statement), err=True)
    sys.exit(EXIT_PARSE_ERROR)


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.strip().splitlines())


def _document(result: SqlLineage, namespace: str) -> dict[str, Any]:
    """The OpenLineage view of a script: inputs, and outputs with their columnLineage."""
    from collector.lineage.sql import column_lineage_facets

    facets: Mapping[str, dict[str, Any]] = column_lineage_facets(result, namespace, PRODUCER)
    return {
        "inputs": [{"namespace": namespace, "name": name} for name in result.inputs],
        "outputs": [
            {"namespace": namespace, "name": name, "facets": {"columnLineage": facets[name]}}
            for name in result.outputs
        ],
    }


def _table(result: SqlLineage) -> str:
    """Inputs, outputs, then one line per edge: output ← input, how, and the expression."""
    lines = [
        f"inputs:  {', '.join(result.inputs) or '-'}",
        f"outputs: {', '.join(result.outputs) or '-'}",
    ]
    rows = [
        (
            f"{edge.output}.{edge.output_field}" if edge.output_field else f"{edge.output} (rows)",
            f"{edge.input}.{edge.input_field}",
            f"{edge.type}/{edge.subtype}" + (" masking" if edge.masking else ""),
            edge.description or "",
        )
        for edge in result.edges
    ]
    if rows:
        header = ("OUTPUT", "INPUT", "TRANSFORMATION", "DESCRIPTION")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
        lines.append("")
        for row in [header, *rows]:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            lines.append("  ".join([*cells, row[3]]).rstrip())
    if result.unresolved:
        lines.append("")
        lines.append(f"unresolved (no schema places them): {', '.join(result.unresolved)}")
    return "\n".join(lines)
