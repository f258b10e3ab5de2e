"""Table schemas for the SQL lineage engine: what the collector knows plus what a script creates.

The collector's schemas are keyed by table name as datasets are named (`orders`,
`raw.orders`, `cat.raw.orders`), at whatever depth each one has; SQL refers to the same
table more or less qualified. sqlglot's own `MappingSchema` wants every table at one
depth, so this `Schema` resolves a reference itself: an exact match first, else the one
schema whose name ends with the reference (or the reference ends with it). Keys and
column names are normalised only for tables a query actually touches, so a large
schema costs nothing per parse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.schema import Schema

Parts = tuple[str, ...]
_TABLE_ARGS = ("this", "db", "catalog")


def table_parts(table: exp.Table) -> Parts:
    """A table reference's name parts, catalog first; T-SQL `#temp` keeps its `#`."""
    parts = []
    for part in table.parts:
        name = part.name
        if isinstance(part, exp.Identifier) and part.args.get("temporary"):
            name = f"#{name}"
        elif isinstance(part, exp.Identifier) and part.args.get("global_"):
            name = f"##{name}"
        parts.append(name)
    return tuple(parts)


_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")


def _plain_table(key: str) -> exp.Table | None:
    """`raw.orders` without the tokenizer: most dataset names need no quoting."""
    if not _PLAIN_NAME.match(key):
        return None
    parts = key.split(".")
    names = dict(zip(("this", "db", "catalog"), reversed(parts), strict=False))
    return exp.Table(**{arg: exp.to_identifier(name) for arg, name in names.items()})


def _last_part(key: str) -> str:
    """The bucket a schema key is filed under: its last dotted part, unquoted, lower case."""
    return key.rsplit(".", 1)[-1].strip('"`[]').lower()


def table_name(table: exp.Table) -> str:
    """The name a table is reported under: its parts joined with dots."""
    return ".".join(table_parts(table))


class TableSchemas(Schema):
    """Column names (and types) of tables, looked up the way SQL refers to them."""

    def __init__(self, tables: Mapping[str, Mapping[str, str]] | None, dialect: Dialect) -> None:
        self._dialect = dialect
        self._raw: dict[str, list[str]] = {}
        self._tables: Mapping[str, Mapping[str, str]] = tables or {}
        for key in self._tables:
            self._raw.setdefault(_last_part(key), []).append(key)
        self._key_cache: dict[str, Parts] = {}
        self._column_cache: dict[str, dict[str, str]] = {}
        self._defined: dict[Parts, dict[str, str]] = {}
        self._found: dict[Parts, dict[str, str] | None] = {}
        self._types: dict[str, exp.DataType] = {}

    # --- lookups -----------------------------------------------------------------------

    def find_parts(self, parts: Parts) -> dict[str, str] | None:
        """The columns of the table `parts` refers to, or None when no schema says."""
        if parts not in self._found:
            self._found[parts] = self._lookup(parts)
        return self._found[parts]

    def _lookup(self, parts: Parts) -> dict[str, str] | None:
        if not parts:
            return None
        defined = self._defined.get(parts)
        if defined is not None:
            return defined
        candidates: list[tuple[Parts, str | None]] = [
            (key, None) for key in self._defined if key[-1] == parts[-1]
        ]
        candidates += [(self._key_parts(raw), raw) for raw in self._raw.get(parts[-1].lower(), ())]
        chosen = [(key, raw) for key, raw in candidates if key == parts]
        if not chosen:
            chosen = [
                (key, raw)
                for key, raw in candidates
                if key[-len(parts) :] == parts or parts[-len(key) :] == key
            ]
            if len({key for key, _ in chosen}) != 1:
                return None
        key, raw = chosen[0]
        return self._defined[key] if raw is None else self._user_columns(raw)

    def _key_parts(self, key: str) -> Parts:
        cached = self._key_cache.get(key)
        if cached is None:
            try:
                table = _plain_table(key) or exp.to_table(key, dialect=self._dialect)
                cached = table_parts(normalize_identifiers(table, dialect=self._dialect))
            except (SqlglotError, ValueError):
                cached = tuple(key.split("."))
            self._key_cache[key] = cached
        return cached

    def _user_columns(self, key: str) -> dict[str, str]:
        cached = self._column_cache.get(key)
        if cached is None:
            cached = {self.column_name(name): str(kind) for name, kind in self._tables[key].items()}
            self._column_cache[key] = cached
        return cached

    def column_name(self, name: str) -> str:
        """A column name from a schema, normalised as the dialect resolves identifiers."""
        identifier = exp.to_identifier(name)
        if identifier is None:
            return name
        return self._dialect.normalize_identifier(identifier).name

    def define(self, parts: Parts, columns: Sequence[str]) -> None:
        """Record the columns of a table the script creates (they win over stale schemas)."""
        self._defined[parts] = dict.fromkeys(columns, "")
        self._found.clear()

    def forget(self, parts: Parts) -> None:
        """The script dropped this table: what it created no longer applies."""
        if self._defined.pop(parts, None) is not None:
            self._found.clear()

    # --- sqlglot's Schema interface ------------------------------------------------------

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    @property
    def empty(self) -> bool:
        return not self._raw and not self._defined

    @property
    def supported_table_args(self) -> tuple[str, ...]:
        return _TABLE_ARGS

    def add_table(
        self,
        table: exp.Table | str,
        column_mapping: Any = None,
        dialect: Any = None,
        normalize: bool | None = None,
        match_depth: bool = True,
    ) -> None:
        parts = table_parts(table) if isinstance(table, exp.Table) else self._key_parts(table)
        self.define(parts, list(column_mapping or {}))

    def column_names(
        self,
        table: exp.Table | str,
        only_visible: bool = False,
        dialect: Any = None,
        normalize: bool | None = None,
    ) -> list[str]:
        parts = table_parts(table) if isinstance(table, exp.Table) else self._key_parts(table)
        return list(self.find_parts(parts) or ())

    def get_column_type(
        self,
        table: exp.Table | str,
        column: exp.Column | str,
        dialect: Any = None,
        normalize: bool | None = None,
    ) -> exp.DataType:
        parts = table_parts(table) if isinstance(table, exp.Table) else self._key_parts(table)
        name = column if isinstance(column, str) else column.name
        kind = (self.find_parts(parts) or {}).get(name)
        return self._type(kind) if kind else exp.DataType.build("unknown")

    def has_column(
        self,
        table: exp.Table | str,
        column: exp.Column | str,
        dialect: Any = None,
        normalize: bool | None = None,
    ) -> bool:
        name = column if isinstance(column, str) else column.name
        return name in self.column_names(table)

    def _type(self, kind: str) -> exp.DataType:
        built = self._types.get(kind)
        if built is None:
            try:
                built = exp.DataType.build(kind, dialect=self._dialect)
            except (SqlglotError, ValueError):
                built = exp.DataType.build("unknown")
            self._types[kind] = built
        return built
