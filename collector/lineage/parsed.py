"""Column lineage parsed from the SQL a finished run carries, stored as `parsed` edges.

Most legacy jobs send their SQL (the job's `sql` facet) but no `columnLineage` facet. Once
a run has finished, the evaluator hands it here: the SQL is parsed against the schemas
pipewarden knows for the run's datasets (so `SELECT *` and unqualified columns resolve),
its tables are mapped onto the run's declared datasets, and the edges are stored with
`source = 'parsed'` through the writer. A facet sent by the producer always wins. SQL that
does not parse is recorded on the run (`runs.sql_parse_error`) and counted; it never fails
ingestion, which has long been answered by then.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import orjson
from sqlalchemy import Connection, Engine, Row

from collector.lineage.sql import SqlLineage, SqlParseError
from collector.store import reads, writes

log = logging.getLogger(__name__)
T = TypeVar("T")
Write = Callable[[Callable[[Connection], T]], T]

CACHE_SIZE = 512
PARSE_FAILURES = 0  # runs whose SQL did not parse since the process started
_failures_lock = threading.Lock()

Schema = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # (table, ((column, type), …))


def parse_failures() -> int:
    """How many runs' SQL failed to parse in this process (for metrics)."""
    return PARSE_FAILURES


def count_failures(count: int = 1) -> None:
    """Count runs whose SQL did not parse, here or in this collector's background process."""
    global PARSE_FAILURES
    with _failures_lock:
        PARSE_FAILURES += count


@dataclass(frozen=True)
class Declared:
    """A dataset a run declared, as its events named it."""

    namespace: str
    name: str


@dataclass(frozen=True)
class RunSql:
    """What a run's events say about its SQL: the query, and what the producer declared."""

    query: str
    dialect: str | None
    event_time: datetime
    inputs: tuple[Declared, ...]
    outputs: tuple[Declared, ...]
    # Outputs the producer sent a columnLineage facet for: their lineage is the facet's.
    with_facet: frozenset[Declared]


@dataclass(frozen=True)
class OutputEdges:
    """The parsed edges into one output dataset, as column_edges rows minus the dataset ids."""

    output: Declared
    edges: tuple[tuple[Declared, dict[str, Any]], ...]  # (input dataset, row)


def store_sql_lineage(engine: Engine, write: Write[Any], run: Row[Any]) -> None:
    """Parse a finished run's SQL and store its column lineage; never raises."""
    try:
        _store_sql_lineage(engine, write, run)
    except Exception:  # lineage is a bonus: it must never stop the run being judged
        log.exception("SQL lineage failed for run %s", run.uuid)


def _store_sql_lineage(engine: Engine, write: Write[Any], run: Row[Any]) -> None:
    with engine.connect() as connection:
        sql = run_sql(reads.run_payloads(connection, run.uuid))
        if sql is None:
            return
        schema = known_schemas(connection, (*sql.inputs, *sql.outputs))
    result = parse_cached(sql.query, sql.dialect, schema)
    if isinstance(result, SqlParseError):
        count_failures()
        message = str(result)
        write(lambda connection: writes.set_sql_parse_error(connection, run.uuid, message))
        return
    planned = output_edges(result, sql, run.namespace, run.uuid)
    clear_error = run.sql_parse_error is not None

    def store(connection: Connection) -> None:
        save_edges(connection, run.job_id, planned, sql.event_time)
        if clear_error:
            writes.set_sql_parse_error(connection, run.uuid, None)

    write(store)


# --- the run's SQL and datasets -------------------------------------------------------


def run_sql(payloads: Iterable[Row[Any]]) -> RunSql | None:
    """The newest `sql` job facet among the run's events (oldest first), with its datasets."""
    found: tuple[str, str | None, datetime] | None = None
    inputs: dict[Declared, None] = {}
    outputs: dict[Declared, None] = {}
    with_facet: set[Declared] = set()
    for row in payloads:
        event = orjson.loads(row.payload)
        sql = _dig(event, "job", "facets", "sql")
        if _usable_sql(sql):
            dialect = sql.get("dialect")
            found = (sql["query"], dialect if isinstance(dialect, str) else None, row.event_time)
        inputs.update(dict.fromkeys(_declared(event.get("inputs"))))
        for output, raw in _declared_items(event.get("outputs")):
            outputs[output] = None
            if isinstance(_dig(raw, "facets", "columnLineage"), dict):
                with_facet.add(output)
    if found is None:
        return None
    query, dialect, at = found
    return RunSql(query, dialect, at, tuple(inputs), tuple(outputs), frozenset(with_facet))


def _usable_sql(facet: Any) -> bool:
    """A `sql` facet with a query in it (and not a deletion of the facet)."""
    return (
        isinstance(facet, dict)
        and isinstance(facet.get("query"), str)
        and bool(facet["query"].strip())
        and not facet.get("_deleted")
    )


def _dig(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _declared_items(items: Any) -> list[tuple[Declared, dict[str, Any]]]:
    if not isinstance(items, list):
        return []
    return [
        (Declared(item["namespace"], item["name"]), item)
        for item in items
        if isinstance(item, dict)
        and isinstance(item.get("namespace"), str)
        and isinstance(item.get("name"), str)
    ]


def _declared(items: Any) -> list[Declared]:
    return [declared for declared, _ in _declared_items(items)]


def known_schemas(connection: Connection, datasets: Iterable[Declared]) -> Schema:
    """The latest stored `schema` facet of each dataset, as `{table: {column: type}}` items."""
    tables: dict[str, tuple[tuple[str, str], ...]] = {}
    for declared in datasets:
        row = reads.get_dataset(connection, declared.namespace, declared.name)
        version = reads.current_schema(connection, row.id) if row is not None else None
        if version is None or declared.name in tables:
            continue
        tables[declared.name] = tuple(
            (str(item["name"]), str(item.get("type") or ""))
            for item in version.fields
            if isinstance(item, dict) and item.get("name")
        )
    return tuple(sorted(tables.items()))


# --- parsing, cached ------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    """A parse, identified by (sha256 of the SQL, dialect, schema fingerprint) alone."""

    key: tuple[str, str | None, str]
    sql: str = field(compare=False, repr=False)
    schema: Schema = field(compare=False, repr=False)


def parse_cached(sql: str, dialect: str | None, schema: Schema) -> SqlLineage | SqlParseError:
    """The lineage of `sql`, or why it does not parse; the same question is answered once."""
    fingerprint = hashlib.sha256(orjson.dumps(schema)).hexdigest()
    sql_hash = hashlib.sha256(sql.encode("utf-8", "surrogatepass")).hexdigest()
    return _parse(_Request((sql_hash, dialect, fingerprint), sql, schema))


@functools.lru_cache(maxsize=CACHE_SIZE)
def _parse(request: _Request) -> SqlLineage | SqlParseError:
    from collector.lineage.sql import parse

    schema = {table: dict(columns) for table, columns in request.schema} or None
    dialect = request.key[1]
    try:
        try:
            return parse(request.sql, dialect, schema)
        except ValueError as error:
            if isinstance(error, SqlParseError):
                raise
            log.warning("%s; parsing as generic SQL", error)  # an unknown dialect name
            return parse(request.sql, None, schema)
    except SqlParseError as error:
        return error.with_traceback(None)  # cached: keep no frames alive


def cache_info() -> functools._CacheInfo:
    """Hits, misses and size of the parse cache."""
    return _parse.cache_info()


# --- from SQL tables to datasets ------------------------------------------------------


def resolve(table: str, preferred: Sequence[Declared], fallback_namespace: str) -> Declared:
    """The dataset a SQL table name stands for.

    Matched to the declared datasets by name, case-insensitively, on their last name
    parts (`public.orders` is `db.public.orders`): an exact match first, then the longest
    common ending, the first declared on a tie. An undeclared table is taken to live in
    `fallback_namespace` under the name the SQL gives it.
    """
    wanted = table.lower().split(".")
    best: tuple[int, int] = (0, 0)
    chosen: Declared | None = None
    for declared in preferred:
        parts = declared.name.lower().split(".")
        common = min(len(parts), len(wanted))
        if parts[-common:] != wanted[-common:]:
            continue
        score = (2 if parts == wanted else 1, common)
        if score > best:
            best, chosen = score, declared
    return chosen or Declared(fallback_namespace, table)


def output_edges(
    lineage: SqlLineage, sql: RunSql, job_namespace: str, run_uuid: UUID
) -> list[OutputEdges]:
    """Per output the SQL writes (and the producer gave no facet for), its edge rows."""
    declared = (*sql.inputs, *sql.outputs)
    fallback = declared[0].namespace if declared else job_namespace
    input_order = (*sql.inputs, *sql.outputs)
    output_order = (*sql.outputs, *sql.inputs)
    planned: dict[Declared, dict[tuple[Any, ...], tuple[Declared, dict[str, Any]]]] = {}
    for output in lineage.outputs:
        target = resolve(output, output_order, fallback)
        if target not in sql.with_facet:
            planned.setdefault(target, {})
    for edge in lineage.edges:
        target = resolve(edge.output, output_order, fallback)
        if target not in planned:
            continue
        source = resolve(edge.input, input_order, fallback)
        key = (edge.output_field, source, edge.input_field, edge.type, edge.subtype)
        rows = planned[target]
        if key in rows:
            _merge(rows[key][1], edge.masking, edge.description)
            continue
        rows[key] = (
            source,
            {
                "out_field": edge.output_field,
                "in_field": edge.input_field,
                "type": edge.type,
                "subtype": edge.subtype,
                "description": edge.description,
                "masking": edge.masking,
                "source": "parsed",
                "run_uuid": run_uuid,
            },
        )
    return [OutputEdges(target, tuple(rows.values())) for target, rows in planned.items()]


def _merge(row: dict[str, Any], masking: bool, description: str | None) -> None:
    """Two SQL tables naming one dataset: one edge, masked if either is, both descriptions."""
    row["masking"] = row["masking"] or masking
    if description and description != row["description"]:
        row["description"] = "; ".join(d for d in (row["description"], description) if d)


def save_edges(
    connection: Connection, job_id: int, planned: Sequence[OutputEdges], at: datetime
) -> None:
    """Store parsed edges in the writer's transaction; outputs with a facet are left alone."""
    ids: dict[Declared, int] = {}

    def dataset_id(declared: Declared) -> int:
        if declared not in ids:
            ids[declared] = writes.ensure_dataset(connection, declared.namespace, declared.name, at)
        return ids[declared]

    for output in planned:
        rows = [{**row, "in_dataset_id": dataset_id(source)} for source, row in output.edges]
        writes.replace_parsed_column_edges(connection, job_id, dataset_id(output.output), rows, at)
