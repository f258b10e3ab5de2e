"""SQL → table and column lineage, every edge classified: pipewarden's SQL lineage engine.

    >>> lineage = parse("INSERT INTO mart.daily SELECT o.day, SUM(o.amount) AS total "
    ...                 "FROM raw.orders o WHERE o.status = 'paid' GROUP BY o.day")
    >>> lineage.inputs, lineage.outputs
    (('raw.orders',), ('mart.daily',))

Built on sqlglot (its parser, optimizer and scopes): a whole script is read statement by
statement; what each statement writes is traced through temp tables, CTEs and
subqueries to the tables underneath, and every edge says how the value got there
(DIRECT/IDENTITY … INDIRECT/FILTER, see `sql_query`). Pure: no I/O, no globals; the
collector caches results by SQL, dialect and schema version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from collector.lineage.sql_model import (
    ColumnEdge,
    Relation,
    Source,
    SqlLineage,
    SqlParseError,
)

if TYPE_CHECKING:
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect

    from collector.lineage.sql_statements import Effect

__all__ = [
    "COLUMN_LINEAGE_SCHEMA_URL",
    "ColumnEdge",
    "SqlLineage",
    "SqlParseError",
    "column_lineage_facets",
    "parse",
]

COLUMN_LINEAGE_SCHEMA_URL = (
    "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json"
    "#/$defs/ColumnLineageDatasetFacet"
)


def parse(
    sql: str,
    dialect: str | None = None,
    schema: Mapping[str, Mapping[str, str]] | None = None,
) -> SqlLineage:
    """The lineage of a SQL script.

    `schema` maps table names, as datasets are named (`orders`, `raw.orders`,
    `cat.raw.orders`), to `{column: type}`; it expands `SELECT *`, places unqualified
    columns, and maps `INSERT INTO t SELECT …` onto t's columns by position. Without it,
    references that cannot be placed are listed in `unresolved` rather than guessed.

    Raises `SqlParseError` when the SQL does not parse, and ValueError for an unknown
    dialect name; nothing else, whatever the text.
    """
    from collector.lineage.sql_parse import dialect_of, parse_script

    engine = dialect_of(dialect)
    statements = parse_script(sql, engine)
    return _Script(engine, schema).run([statement.expression for statement in statements])


class _Script:
    """The state of a script being read: temp tables so far, and what it has found."""

    def __init__(self, dialect: Dialect, schema: Mapping[str, Mapping[str, str]] | None) -> None:
        from collector.lineage.sql_schema import TableSchemas

        self.dialect = dialect
        self.schemas = TableSchemas(schema, dialect)
        self.intermediates: dict[str, Relation] = {}
        self.inputs: dict[str, None] = {}
        self.outputs: dict[str, None] = {}
        self.edges: dict[tuple[str, str, str, str, str, str, bool], list[str]] = {}
        self.unresolved: dict[str, None] = {}

    def run(self, statements: list[exp.Expr]) -> SqlLineage:
        """Every statement in order; then the findings, sorted so results compare equal."""
        normalised = [self._normalised(statement) for statement in statements]
        temporary = _intermediate_names(normalised)
        for statement in normalised:
            self._statement(statement, temporary)
        edges = tuple(
            ColumnEdge(*key, description="; ".join(descriptions) or None)
            for key, descriptions in sorted(self.edges.items())
        )
        return SqlLineage(
            inputs=tuple(sorted(self.inputs)),
            outputs=tuple(sorted(self.outputs)),
            edges=edges,
            unresolved=tuple(sorted(self.unresolved)),
            statements=len(statements),
        )

    def _normalised(self, statement: exp.Expr) -> exp.Expr:
        """Identifiers as the dialect resolves them (`Orders` is `orders` in Postgres)."""
        from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

        try:
            return normalize_identifiers(statement, dialect=self.dialect)
        except RecursionError:  # absurdly deep; the statement degrades to its tables later
            return statement

    def _statement(self, statement: exp.Expr, temporary: set[str]) -> None:
        """One statement's reads and writes; temp tables absorb what is written to them."""
        from collector.lineage.sql_query import QueryAnalyzer
        from collector.lineage.sql_statements import effect_of

        analyzer = QueryAnalyzer(self.dialect, self.schemas, self.intermediates)
        try:
            effect = effect_of(statement, analyzer)
        except RecursionError:
            effect = self._tables_only(statement, "statement nested too deeply to analyse")
        except Exception as error:  # sqlglot's optimizer on SQL it parsed but cannot resolve
            effect = self._tables_only(statement, f"{type(error).__name__}: {error}")
        self.unresolved.update(analyzer.unresolved)
        self.inputs.update(effect.reads)
        for name, parts, columns in effect.creates:
            if name in temporary:
                self.intermediates[name] = Relation(columns=[(c, {}) for c in columns or ()])
            if columns is not None:
                self.schemas.define(parts, columns)
        for write in effect.writes:
            if write.target in temporary:  # a * into a temp table may resolve when read
                _merge_into(self.intermediates.setdefault(write.target, Relation()), write.relation)
            else:
                self.unresolved.update(dict.fromkeys(write.stars))
                self.outputs[write.target] = None
                self._add_edges(write.target, write.relation)
        for _, parts in effect.drops:
            self.schemas.forget(parts)

    def _tables_only(self, statement: exp.Expr, reason: str) -> Effect:
        """Table-level lineage for a statement the column engine could not follow."""
        from sqlglot import exp

        from collector.lineage.sql_schema import table_name
        from collector.lineage.sql_statements import Effect, Write, creation

        effect = Effect()
        created = creation(statement)
        target = created[0] if created else None
        if target is None and isinstance(statement, (exp.Insert, exp.Merge, exp.Update)):
            node = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
            target = node if isinstance(node, exp.Table) else None
        for table in statement.find_all(exp.Table):
            if table is not target and isinstance(table.this, exp.Identifier):
                name = table_name(table)
                effect.reads.update(
                    self.intermediates[name].tables if name in self.intermediates else {name: None}
                )
        if target is not None:
            name = table_name(target)
            effect.reads.pop(name, None)
            effect.writes.append(Write(name, (), Relation(), [f"{name}.* ({reason})"]))
        return effect

    def _add_edges(self, target: str, relation: Relation) -> None:
        for field, sources in relation.columns:
            for source in sources:
                self._edge(target, field, source)
        for source in relation.rows:
            self._edge(target, "", source)

    def _edge(self, target: str, field: str, source: Source) -> None:
        key = (
            target,
            field,
            source.table,
            source.field,
            source.type,
            source.subtype,
            source.masking,
        )
        descriptions = self.edges.setdefault(key, [])
        if source.description and source.description not in descriptions:
            descriptions.append(source.description)


def _intermediate_names(statements: list[exp.Expr]) -> set[str]:
    """Temp tables, and tables the script creates and later drops: resolved, not reported."""
    from collector.lineage.sql_schema import table_name
    from collector.lineage.sql_statements import creation, dropped

    created: set[str] = set()
    intermediate: set[str] = set()
    for statement in statements:
        made = creation(statement)
        if made is not None:
            name = table_name(made[0])
            created.add(name)
            if made[1]:
                intermediate.add(name)
        for table in dropped(statement):
            name = table_name(table)
            if name in created:
                intermediate.add(name)
    return intermediate


def _merge_into(relation: Relation, written: Relation) -> None:
    """Another write into a temp table: its columns gain these sources, rows and tables."""
    for name, sources in written.columns:
        existing = relation.column(name)
        if existing is None:
            relation.columns.append((name, dict(sources)))
        else:
            existing.update(sources)
    relation.rows.update(written.rows)
    relation.tables.update(written.tables)
    if written.has_star:
        relation.has_star = True
        relation.stars.extend(written.stars)


def column_lineage_facets(
    lineage: SqlLineage, namespace: str, producer: str
) -> dict[str, dict[str, Any]]:
    """Per output table, its OpenLineage `columnLineage` facet (1-2-0).

    Field edges go under `fields[<column>].inputFields` (INDIRECT ones that concern one
    column only, CONDITIONAL and WINDOW, included); dataset-wide INDIRECT edges (JOIN,
    FILTER, GROUP_BY, SORT) under `dataset`. Every input is in `namespace`.
    """
    facets: dict[str, dict[str, Any]] = {}
    for output in lineage.outputs:
        facets[output] = {
            "_producer": producer,
            "_schemaURL": COLUMN_LINEAGE_SCHEMA_URL,
            "fields": {},
            "dataset": [],
        }
    fields_index: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for edge in lineage.edges:
        facet = facets.get(edge.output)
        if facet is None:
            continue
        key = (edge.output, edge.output_field, edge.input, edge.input_field)
        entry = fields_index.get(key)
        if entry is None:
            entry = {
                "namespace": namespace,
                "name": edge.input,
                "field": edge.input_field,
                "transformations": [],
            }
            fields_index[key] = entry
            if edge.output_field:
                field = facet["fields"].setdefault(edge.output_field, {"inputFields": []})
                field["inputFields"].append(entry)
            else:
                facet["dataset"].append(entry)
        transformation: dict[str, Any] = {
            "type": edge.type,
            "subtype": edge.subtype,
            "masking": edge.masking,
        }
        if edge.description is not None:
            transformation["description"] = edge.description
        entry["transformations"].append(transformation)
    return facets
