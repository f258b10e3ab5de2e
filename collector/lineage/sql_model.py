"""The values SQL lineage is made of: what `parse` returns, and what it builds on the way.

Kept apart from the engine so the collector and the CLI can name these types without
loading sqlglot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

DIRECT = "DIRECT"
INDIRECT = "INDIRECT"

IDENTITY = "IDENTITY"
TRANSFORMATION = "TRANSFORMATION"
AGGREGATION = "AGGREGATION"
JOIN = "JOIN"
FILTER = "FILTER"
GROUP_BY = "GROUP_BY"
SORT = "SORT"
WINDOW = "WINDOW"
CONDITIONAL = "CONDITIONAL"

# How much a DIRECT step changes a value: composing two steps keeps the stronger one
# (an aggregate of a copy is an aggregate; a copy of a transformed value is transformed).
DIRECT_RANK = {IDENTITY: 0, TRANSFORMATION: 1, AGGREGATION: 2}


@dataclass(frozen=True)
class ColumnEdge:
    """One input column feeding one output column (or, with `output_field` '', the rows).

    `type`/`subtype` are the OpenLineage columnLineage 1-2-0 transformation: DIRECT
    (IDENTITY, TRANSFORMATION, AGGREGATION) when the input's value flows into the output,
    INDIRECT (JOIN, FILTER, GROUP_BY, SORT, WINDOW, CONDITIONAL) when it only decides which
    rows or values appear. `masking` is true when a one-way function (a hash, a count)
    stands between them.
    """

    output: str
    output_field: str
    input: str
    input_field: str
    type: str
    subtype: str
    masking: bool = False
    description: str | None = None


@dataclass(frozen=True)
class SqlLineage:
    """Table and column lineage of a SQL script.

    `inputs` and `outputs` are table names as the script writes them (identifiers
    normalised the way the dialect resolves them); temp tables, CTEs and tables the script
    creates and drops again are resolved through to their sources instead. `unresolved`
    lists column references that could not be attributed to a table because no schema
    says where they come from (`amount`, `raw.orders.*`): nothing is guessed for them.
    A statement that parses but that the column engine cannot follow keeps its tables
    and is listed as `<output>.* (<reason>)`.

    The target of MERGE/UPDATE/DELETE is an output, and an input only when the statement
    also reads it as a source of its own; edges may still start at its columns
    (`SET total = total + s.amount`, the ON keys).
    """

    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    edges: tuple[ColumnEdge, ...] = ()
    unresolved: tuple[str, ...] = ()
    statements: int = 0


class SqlParseError(ValueError):
    """SQL that does not parse: which statement, where in the script, and why.

    `line` and `column` are 1-based and point into the whole script, not the statement.
    """

    def __init__(self, message: str, statement: str, line: int | None, column: int | None):
        where = f" at line {line}, column {column}" if line is not None else ""
        super().__init__(f"{message}{where}")
        self.message = message
        self.statement = statement
        self.line = line
        self.column = column


class Source(NamedTuple):
    """One way a column of some table reaches a value: the engine's unit of lineage."""

    table: str
    field: str
    type: str
    subtype: str
    masking: bool
    description: str | None


@dataclass
class Relation:
    """What a query (or a temp table, or a CTE) yields, in terms of the tables under it.

    `columns` are the output columns in order, each with the sources of its values (DIRECT)
    and of the choices made for it alone (INDIRECT CONDITIONAL/WINDOW); names may repeat
    (`SELECT a, a`), so positional mapping uses the list. `rows` are the INDIRECT sources
    that decide which rows there are (joins, filters, grouping, sorting). `tables` are all
    the tables read. `stars` are the sources behind an unexpanded `*` (no schema known):
    a column looked up by name that is not listed passes through to them when there is
    exactly one. `fallback` answers for any column name (a table function's arguments).
    """

    columns: list[tuple[str, dict[Source, None]]] = field(default_factory=list)
    rows: dict[Source, None] = field(default_factory=dict)
    tables: dict[str, None] = field(default_factory=dict)
    stars: list[object] = field(default_factory=list)
    has_star: bool = False
    fallback: dict[Source, None] | None = None

    def column(self, name: str) -> dict[Source, None] | None:
        """The sources of the first output column called `name`, or None."""
        for column_name, sources in self.columns:
            if column_name == name:
                return sources
        return None
