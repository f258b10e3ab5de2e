"""Column lineage of one query, every edge classified: sqlglot's scopes, walked once.

The query is qualified with sqlglot's optimizer (tables aliased, columns qualified, `*`
expanded where a schema is known) and split into scopes (the query, its CTEs, derived
tables, subqueries, UNION branches). Each scope becomes a `Relation`: per output column
the sources of its value, and for the whole scope the sources that decide its rows.
A scope's relation is built from its children's, so a CTE used three times is walked
once, and a column is followed through any number of CTEs and subqueries to the tables
underneath.

Where a column appears decides the edge (OpenLineage columnLineage 1-2-0):
- in a projection's value: DIRECT, IDENTITY when copied as is, AGGREGATION under an
  aggregate, TRANSFORMATION under anything else; `masking` under a hash or a count;
- in a CASE/IF condition, or as a COALESCE argument that a later one falls back from:
  INDIRECT/CONDITIONAL on that output column;
- in a window's PARTITION BY/ORDER BY: INDIRECT/WINDOW on that output column;
- in JOIN ... ON: JOIN; WHERE, HAVING, QUALIFY: FILTER; GROUP BY: GROUP_BY; ORDER BY:
  SORT, all INDIRECT on the rows (dataset-wide).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, ScopeType, build_scope

from collector.lineage.sql_model import (
    AGGREGATION,
    CONDITIONAL,
    DIRECT,
    DIRECT_RANK,
    FILTER,
    GROUP_BY,
    IDENTITY,
    INDIRECT,
    JOIN,
    SORT,
    TRANSFORMATION,
    WINDOW,
    Relation,
    Source,
)
from collector.lineage.sql_schema import TableSchemas, table_name, table_parts

# One-way functions: what comes out does not reveal what went in.
_MASKING_CLASSES: tuple[type[exp.Expr], ...] = tuple(
    getattr(exp, name)
    for name in (
        "MD5",
        "MD5Digest",
        "MD5NumberLower64",
        "MD5NumberUpper64",
        "SHA",
        "SHA1Digest",
        "SHA2",
        "SHA2Digest",
        "StandardHash",
        "FarmFingerprint",
        "CityHash64",
        "Count",
        "CountIf",
        "ApproxDistinct",
        "Hll",
        "HashAgg",
        "Minhash",
        "MinhashCombine",
    )
    if hasattr(exp, name)
)
_MASKING_NAMES = frozenset(
    {
        "APPROX_COUNT_DISTINCT",
        "BINARY_CHECKSUM",
        "BLAKE3",
        "CHECKSUM",
        "CHECKSUM_AGG",
        "CITYHASH64",
        "CRC32",
        "DIGEST",
        "FARM_FINGERPRINT",
        "FNV_HASH",
        "FUNC_SHA1",
        "HASH",
        "HASHBYTES",
        "HASHTEXT",
        "HASH_AGG",
        "HLL",
        "HLL_ACCUMULATE",
        "KECCAK256",
        "MD5",
        "MURMUR_HASH3_32",
        "MURMURHASH3_32",
        "ORA_HASH",
        "SHA1",
        "SHA224",
        "SHA256",
        "SHA3",
        "SHA384",
        "SHA512",
        "SIPHASH64",
        "STANDARD_HASH",
        "XXHASH32",
        "XXHASH64",
        "XXH3",
    }
)

# Dialects where a projection may use an alias defined earlier in the same SELECT list
# (and WHERE may use a projection alias): `SELECT a + 1 AS b, b * 2 AS c`.
_LATERAL_ALIAS_DIALECTS = frozenset(
    {"snowflake", "redshift", "databricks", "spark", "duckdb", "teradata", "clickhouse"}
)

# Nodes a value passes through unchanged.
_PASS_THROUGH = (exp.Alias, exp.Paren, exp.Subquery)
# Nodes with no column inside: nothing to walk.
_LEAVES = (exp.Literal, exp.Null, exp.Boolean, exp.Identifier, exp.Var, exp.DataType, exp.Star)

Aliases = Mapping[str, dict[Source, None]]

_DESCRIPTION_LIMIT = 200
# Described by name (module-level, so their ids stay unique while descriptions are cached).
_SET_OPERATORS: dict[type[exp.Expr], exp.Expr] = {
    exp.Union: exp.var("UNION"),
    exp.Except: exp.var("EXCEPT"),
    exp.Intersect: exp.var("INTERSECT"),
}


class _Ctx(NamedTuple):
    """How a value reaches the output from where the walk is.

    `node` is the expression that describes the step (the projection, the condition,
    the ORDER BY item); its SQL is generated only when an edge needs it.
    """

    type: str
    subtype: str
    masking: bool
    node: exp.Expr | None


def is_masking(node: exp.Expr) -> bool:
    """Whether a function hides its input's value (hashes, counts)."""
    if isinstance(node, _MASKING_CLASSES):
        return True
    return isinstance(node, exp.Anonymous) and node.name.upper() in _MASKING_NAMES


class QueryAnalyzer:
    """Builds the classified lineage of queries, one statement at a time.

    `intermediates` are temp tables (and tables the script creates and drops again) by
    name: a query reading one is traced through to what was written into it.
    """

    def __init__(
        self,
        dialect: Dialect,
        schemas: TableSchemas,
        intermediates: Mapping[str, Relation],
    ) -> None:
        self.dialect = dialect
        self.schemas = schemas
        self.intermediates = intermediates
        self.unresolved: dict[str, None] = {}
        self.lateral_aliases = type(dialect).__name__.lower() in _LATERAL_ALIAS_DIALECTS
        self._relations: dict[int, Relation] = {}
        self._subqueries: dict[int, dict[int, Scope]] = {}
        self._in_progress: set[int] = set()
        self._descriptions: dict[int, str] = {}
        self._generator = dialect.generator()
        self._with_sources: dict[int, Scope] = {}
        self._analysed: list[Scope] = []

    # --- entry points ------------------------------------------------------------------

    def qualified(self, query: exp.Expr) -> exp.Expr:
        """The query with tables aliased and columns qualified where they can be."""
        return qualify(
            query,
            dialect=self.dialect,
            schema=self.schemas,
            expand_alias_refs=False,
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
        )

    def analyze(self, query: exp.Expr) -> tuple[Relation, dict[str, None]]:
        """The relation a query yields, and every table it reads (temp tables traced).

        sqlglot refuses to qualify some queries it cannot fully resolve (a correlated
        subquery over a table without schema, a column a stale schema lacks); those are
        qualified as far as tables only, and columns are placed here, unresolved when
        in doubt.
        """
        try:
            qualified = self.qualified(query)
        except OptimizeError:
            # qualify works in place, scope by scope; what it did before giving up only
            # added qualifiers, so the tree still means what it meant: carry on with it
            qualified = query
        scope = build_scope(qualified)
        if scope is None:
            return Relation(), {}
        # caches here are keyed by id(): keep every tree analysed alive so no id is reused
        self._analysed.append(scope)
        for child in scope.traverse():
            if child.sources:
                self._with_sources.setdefault(id(child.expression), child)
        return self.relation(scope), self.tables_read(scope)

    def tables_read(self, root: Scope) -> dict[str, None]:
        """Every table any scope of the query selects from; temp tables by their sources."""
        tables: dict[str, None] = {}
        for scope in root.traverse():
            for source in scope.sources.values():
                if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
                    name = table_name(source)
                    intermediate = self.intermediates.get(name)
                    if intermediate is None:
                        tables[name] = None
                    else:
                        tables.update(intermediate.tables)
        return tables

    # --- relations -----------------------------------------------------------------------

    def relation(self, scope: Scope) -> Relation:
        """The relation of a scope, built once (children first)."""
        key = id(scope)
        cached = self._relations.get(key)
        if cached is not None:
            return cached
        twin = self._with_sources.get(id(scope.expression))
        if not scope.sources and twin is not None and twin is not scope:
            # sqlglot gives a recursive CTE's anchor a second, source-less scope: use the first
            return self.relation(twin)
        if key in self._in_progress:  # a recursive CTE reading itself adds nothing new
            return Relation()
        self._in_progress.add(key)
        try:
            expression = scope.expression
            if isinstance(expression, exp.Select):
                relation = self._select(scope, expression)
            elif isinstance(expression, exp.SetOperation):
                relation = self._set_operation(scope, expression)
            else:
                relation = self._table_function(scope, expression)
        finally:
            self._in_progress.discard(key)
        self._relations[key] = relation
        return relation

    def _select(self, scope: Scope, select: exp.Select) -> Relation:
        relation = Relation()
        for _, source in scope.selected_sources.values():
            self._read_source(source, relation)
        aliases: dict[str, dict[Source, None]] = {}
        for projection in select.selects:
            name = projection.alias_or_name
            value = projection.unalias() if isinstance(projection, exp.Alias) else projection
            if _is_star(value):
                self._star(scope, value, relation)
                continue
            sources: dict[Source, None] = {}
            described = None if _is_bare_column(value) else value
            lateral = aliases if self.lateral_aliases else None
            self._visit(value, _Ctx(DIRECT, IDENTITY, False, described), sources, scope, lateral)
            relation.columns.append((name, sources))
            aliases.setdefault(name, sources)
        self._clauses(scope, select, relation, aliases)
        return relation

    def _read_source(self, source: exp.Table | Scope, relation: Relation) -> None:
        """A FROM/JOIN source: its tables are read, and what filters it filters us."""
        if isinstance(source, Scope):
            child = self.relation(source)
            relation.rows.update(child.rows)
            relation.tables.update(child.tables)
        elif isinstance(source.this, exp.Identifier):
            name = table_name(source)
            intermediate = self.intermediates.get(name)
            if intermediate is None:
                relation.tables[name] = None
            else:
                relation.rows.update(intermediate.rows)
                relation.tables.update(intermediate.tables)

    def _star(self, scope: Scope, star: exp.Expr, relation: Relation) -> None:
        """An unexpanded `*` or `t.*`: no schema says which columns it brings."""
        relation.has_star = True
        qualifier = star.table if isinstance(star, exp.Column) else ""
        if qualifier:
            source = scope.sources.get(qualifier)
            if source is not None:
                relation.stars.append(source)
        else:
            relation.stars.extend(source for _, source in scope.selected_sources.values())
        relation.columns.append(("*", {}))

    def _clauses(
        self, scope: Scope, select: exp.Select, relation: Relation, aliases: Aliases
    ) -> None:
        """Everything outside the projections: the rows' sources, dataset-wide."""
        rows = relation.rows
        lateral = aliases if self.lateral_aliases else None
        for join in select.args.get("joins") or ():
            condition = join.args.get("on")
            if condition is not None:
                self._conjuncts(condition, JOIN, rows, scope, lateral)
            for using in join.args.get("using") or ():
                self._using(scope, join, using, rows)
        where = select.args.get("where")
        if where is not None:
            self._conjuncts(where.this, FILTER, rows, scope, lateral)
        for clause in ("having", "qualify"):
            node = select.args.get(clause)
            if node is not None:
                self._conjuncts(node.this, FILTER, rows, scope, aliases)
        group = select.args.get("group")
        if group is not None:
            for item in group.iter_expressions():
                ctx = _Ctx(INDIRECT, GROUP_BY, False, item)
                if not self._positional(item, ctx, rows, relation):
                    self._visit(item, ctx, rows, scope, aliases)
        distinct = select.args.get("distinct")
        if distinct is not None and distinct.args.get("on") is not None:
            for item in distinct.args["on"].iter_expressions():
                self._visit(item, _Ctx(INDIRECT, FILTER, False, item), rows, scope, aliases)
        self._order(select, scope, relation, aliases)

    def _order(self, query: exp.Expr, scope: Scope, relation: Relation, aliases: Aliases) -> None:
        order = query.args.get("order")
        if order is not None:
            for item in order.expressions:
                ctx = _Ctx(INDIRECT, SORT, False, item)
                if not self._positional(item, ctx, relation.rows, relation):
                    self._visit(item, ctx, relation.rows, scope, aliases)

    def _positional(
        self, item: exp.Expr, ctx: _Ctx, rows: dict[Source, None], relation: Relation
    ) -> bool:
        """`GROUP BY 1` / `ORDER BY 2 DESC`: the projection at that position decides."""
        value = item.this if isinstance(item, exp.Ordered) else item
        if not (isinstance(value, exp.Literal) and value.is_int):
            return False
        index = int(value.name) - 1
        if 0 <= index < len(relation.columns):
            for source in relation.columns[index][1]:
                rows[self.compose(ctx, source)] = None
        return True

    def _conjuncts(
        self,
        condition: exp.Expr,
        subtype: str,
        rows: dict[Source, None],
        scope: Scope,
        aliases: Aliases | None,
    ) -> None:
        """A WHERE-like condition, each AND-ed part described on its own.

        In WHERE, an equality between columns of two sources of this query is a join
        condition written the old way (`FROM a, b WHERE a.id = b.id`): JOIN, not FILTER.
        """
        for part in condition.flatten() if isinstance(condition, exp.And) else (condition,):
            kind = JOIN if subtype == FILTER and _joins_sources(part, scope) else subtype
            self._visit(part, _Ctx(INDIRECT, kind, False, part), rows, scope, aliases)

    def _using(
        self, scope: Scope, join: exp.Join, using: exp.Expr, rows: dict[Source, None]
    ) -> None:
        """`JOIN … USING (k)` left as is (sqlglot rewrites it when it can): k on both sides."""
        ctx = _Ctx(INDIRECT, JOIN, False, join)
        for _, source in scope.selected_sources.values():
            self._from_source(source, using.name, ctx, rows, using)

    def _set_operation(self, scope: Scope, operation: exp.SetOperation) -> Relation:
        """UNION/INTERSECT/EXCEPT: columns by position, names from the first branch.

        A UNION's rows come from every branch; INTERSECT and EXCEPT return the first
        branch's values, the others only decide which of its rows remain (FILTER).
        """
        relation = Relation()
        branches = [self.relation(branch) for branch in scope.set_operation_scopes]
        for branch in branches:
            relation.rows.update(branch.rows)
            relation.tables.update(branch.tables)
            relation.has_star = relation.has_star or branch.has_star
        flowing = branches if isinstance(operation, exp.Union) else branches[:1]
        if not isinstance(operation, exp.Union):
            decide = _Ctx(INDIRECT, FILTER, False, _SET_OPERATORS[type(operation)])
            for branch in branches[1:]:
                for _, sources in branch.columns:
                    relation.rows.update((self.compose(decide, s), None) for s in sources)
        if flowing:
            for index, (name, sources) in enumerate(flowing[0].columns):
                merged = dict(sources)
                for branch in flowing[1:]:
                    if index < len(branch.columns):
                        merged.update(branch.columns[index][1])
                relation.columns.append((name, merged))
        aliases = dict(reversed(relation.columns))
        self._order(operation, scope, relation, aliases)
        return relation

    def _table_function(self, scope: Scope, expression: exp.Expr) -> Relation:
        """UNNEST, LATERAL VIEW explode(...), VALUES: every column comes from its arguments."""
        sources: dict[Source, None] = {}
        ctx = _Ctx(DIRECT, TRANSFORMATION, False, expression)
        for child in expression.iter_expressions():
            if not isinstance(child, exp.TableAlias):
                self._visit(child, ctx, sources, scope, None)
        return Relation(fallback=sources)

    def compose(self, ctx: _Ctx, source: Source) -> Source:
        """A source of an inner value seen from where the outer query uses that value."""
        if ctx.type == INDIRECT:
            return Source(
                source.table,
                source.field,
                INDIRECT,
                ctx.subtype,
                ctx.masking or source.masking,
                self._describe(ctx.node),
            )
        if source.type == INDIRECT:
            return source
        subtype = max(ctx.subtype, source.subtype, key=DIRECT_RANK.__getitem__)
        outer = self._describe(ctx.node) if ctx.subtype != IDENTITY else None
        if outer and source.description and outer != source.description:
            description: str | None = f"{outer} <- {source.description}"
        else:
            description = outer or source.description
        return Source(
            source.table,
            source.field,
            DIRECT,
            subtype,
            ctx.masking or source.masking,
            description if subtype != IDENTITY else None,
        )

    # --- walking expressions -------------------------------------------------------------

    def _visit(
        self,
        node: exp.Expr,
        ctx: _Ctx,
        out: dict[Source, None],
        scope: Scope,
        aliases: Aliases | None,
        lambdas: frozenset[str] = frozenset(),
    ) -> None:
        """Every column under `node`, classified by the path from `ctx` down to it."""
        if isinstance(node, exp.Column):
            self._column(node, ctx, out, scope, aliases, lambdas)
            return
        if isinstance(node, _LEAVES):
            return
        if isinstance(node, exp.Query) and not isinstance(node, exp.Subquery):
            subquery = self._subquery_scope(scope, node)
            if subquery is not None:
                self._through_subquery(subquery, ctx, out, values=True)
                return
        if isinstance(node, exp.Exists):
            query = node.this.this if isinstance(node.this, exp.Subquery) else node.this
            subquery = self._subquery_scope(scope, query)
            if subquery is not None:  # EXISTS looks at rows only, never at the values
                self._through_subquery(subquery, self._indirect(ctx, CONDITIONAL, node), out)
                return
        if isinstance(node, exp.Window):
            self._window(node, ctx, out, scope, aliases, lambdas)
            return
        if isinstance(node, (exp.Case, exp.If, exp.Coalesce, exp.Nullif)):
            self._conditional(node, ctx, out, scope, aliases, lambdas)
            return
        if isinstance(node, exp.Lambda):
            names = lambdas | {param.name for param in node.expressions}
            self._visit(node.this, self._step(node, ctx), out, scope, aliases, names)
            return
        inner = self._step(node, ctx)
        if isinstance(node, exp.Filter):  # COUNT(*) FILTER (WHERE cond)
            self._visit(node.this, ctx, out, scope, aliases, lambdas)
            where = node.expression
            self._visit(
                where, self._indirect(ctx, FILTER, where.this), out, scope, aliases, lambdas
            )
            return
        if isinstance(node, exp.Order):  # ARRAY_AGG(x ORDER BY y), WITHIN GROUP (ORDER BY y)
            if node.this is not None:
                self._visit(node.this, inner, out, scope, aliases, lambdas)
            for item in node.expressions:
                self._visit(item, self._indirect(ctx, SORT, item), out, scope, aliases, lambdas)
            return
        for child in node.iter_expressions():
            self._visit(child, inner, out, scope, aliases, lambdas)

    def _step(self, node: exp.Expr, ctx: _Ctx) -> _Ctx:
        """The context one node further down: values get transformed, or aggregated."""
        masking = ctx.masking or is_masking(node)
        if ctx.type == INDIRECT or isinstance(node, _PASS_THROUGH):
            return ctx if masking == ctx.masking else ctx._replace(masking=masking)
        if isinstance(node, exp.AggFunc):
            return ctx._replace(subtype=AGGREGATION, masking=masking)
        if ctx.subtype == IDENTITY:
            return ctx._replace(subtype=TRANSFORMATION, masking=masking)
        return ctx if masking == ctx.masking else ctx._replace(masking=masking)

    def _indirect(self, ctx: _Ctx, subtype: str, node: exp.Expr) -> _Ctx:
        """Where a value only decides: that subtype, unless already deciding the rows."""
        if ctx.type == INDIRECT:
            return ctx
        return _Ctx(INDIRECT, subtype, ctx.masking, node)

    def _window(
        self,
        node: exp.Window,
        ctx: _Ctx,
        out: dict[Source, None],
        scope: Scope,
        aliases: Aliases | None,
        lambdas: frozenset[str],
    ) -> None:
        self._visit(node.this, ctx, out, scope, aliases, lambdas)
        specs = [node]
        named = node.args.get("alias")
        select = scope.expression
        if isinstance(named, exp.Identifier) and isinstance(select, exp.Select):
            specs += [
                window
                for window in select.args.get("windows") or ()
                if window.this is not None and window.this.name == named.name
            ]
        window_ctx = self._indirect(ctx, WINDOW, node)
        for spec in specs:
            for item in spec.args.get("partition_by") or ():
                self._visit(item, window_ctx, out, scope, aliases, lambdas)
            order = spec.args.get("order")
            if order is not None:
                for item in order.expressions:
                    self._visit(item, window_ctx, out, scope, aliases, lambdas)

    def _conditional(
        self,
        node: exp.Expr,
        ctx: _Ctx,
        out: dict[Source, None],
        scope: Scope,
        aliases: Aliases | None,
        lambdas: frozenset[str],
    ) -> None:
        """CASE/IF/COALESCE/NULLIF: conditions decide (CONDITIONAL), branches flow on."""
        value = self._step(node, ctx)
        conditions: list[exp.Expr] = []
        values: list[exp.Expr] = []
        if isinstance(node, exp.Case):
            if node.this is not None:
                conditions.append(node.this)
            for branch in node.args.get("ifs") or ():
                conditions.append(branch.this)
                values.append(branch.args["true"])
            if node.args.get("default") is not None:
                values.append(node.args["default"])
        elif isinstance(node, exp.If):
            conditions.append(node.this)
            values += [node.args[key] for key in ("true", "false") if node.args.get(key)]
        elif isinstance(node, exp.Coalesce):
            arguments = [node.this, *node.expressions]
            values += arguments
            conditions += arguments[:-1]  # each one's NULL-ness decides whether the next is used
        else:  # NULLIF(a, b): a flows, b decides whether it is NULL instead
            values.append(node.this)
            conditions.append(node.expression)
        deciding = {id(condition) for condition in conditions}
        for condition in conditions:
            if any(condition is branch for branch in values):
                continue  # a COALESCE argument: walked once below, as a value
            described = condition if isinstance(node, (exp.Case, exp.If)) else node
            decide = self._indirect(ctx, CONDITIONAL, described)
            self._visit(condition, decide, out, scope, aliases, lambdas)
        for branch_value in values:
            if id(branch_value) not in deciding:
                self._visit(branch_value, value, out, scope, aliases, lambdas)
                continue
            # both a value and a choice: walk once, derive the CONDITIONAL edges from it
            # (walking twice would double the work at every level of nested COALESCEs)
            found: dict[Source, None] = {}
            self._visit(branch_value, value, found, scope, aliases, lambdas)
            out.update(found)
            decide = self._indirect(ctx, CONDITIONAL, node)
            for source in found:
                out[self.compose(decide, source)] = None

    # --- columns ---------------------------------------------------------------------------

    def _column(
        self,
        column: exp.Column,
        ctx: _Ctx,
        out: dict[Source, None],
        scope: Scope,
        aliases: Aliases | None,
        lambdas: frozenset[str],
    ) -> None:
        if isinstance(column.this, exp.Star):
            return  # COUNT(t.*) reads rows, not a column
        name = column.name
        qualifier = column.table
        if qualifier:
            source = _find_source(scope, qualifier)
            if source is None:
                self._unresolved(column)
                return
            self._from_source(source, name, ctx, out, column)
            return
        if name in lambdas:
            return
        if aliases is not None and name in aliases:
            for source_ in aliases[name]:
                out[self.compose(ctx, source_)] = None
            return
        source = self._place(scope, name)
        if source is None:
            self._unresolved(column)
            return
        self._from_source(source, name, ctx, out, column)

    def _place(self, scope: Scope | None, name: str) -> exp.Table | Scope | None:
        """The one source an unqualified column can come from, or None when unsure.

        A source whose columns are known has it or not; one whose columns are unknown
        may have it. Exactly one candidate places the column; several are ambiguous
        (reported, not guessed); none sends the search to the enclosing query, as SQL
        resolves a correlated reference.
        """
        while scope is not None:
            selected = [source for _, source in scope.selected_sources.values()]
            candidates = [source for source in selected if self._may_have(source, name)]
            if len(candidates) == 1:
                return candidates[0]
            if candidates or scope.scope_type in (ScopeType.CTE, ScopeType.ROOT):
                return None
            scope = scope.parent
        return None

    def _may_have(self, source: exp.Table | Scope, name: str) -> bool:
        if isinstance(source, Scope):
            relation = self.relation(source)
            return relation.has_star or relation.column(name) is not None
        relation_ = self.intermediates.get(table_name(source))
        if relation_ is not None:
            return relation_.has_star or relation_.column(name) is not None
        known = self.schemas.find_parts(table_parts(source))
        return known is None or name in known

    def _from_source(
        self,
        source: exp.Table | Scope,
        name: str,
        ctx: _Ctx,
        out: dict[Source, None],
        written: exp.Expr,
    ) -> None:
        if isinstance(source, Scope):
            self._from_relation(self.relation(source), name, ctx, out, written)
            return
        if not isinstance(source.this, exp.Identifier):  # a table function without a scope
            self._unresolved(written)
            return
        table = table_name(source)
        intermediate = self.intermediates.get(table)
        if intermediate is not None:
            self._from_relation(intermediate, name, ctx, out, written)
            return
        description = self._describe(ctx.node) if ctx.subtype != IDENTITY else None
        out[Source(table, name, ctx.type, ctx.subtype, ctx.masking, description)] = None

    def _from_relation(
        self,
        relation: Relation,
        name: str,
        ctx: _Ctx,
        out: dict[Source, None],
        written: exp.Expr,
    ) -> None:
        sources = relation.column(name)
        if sources is None:
            sources = relation.fallback
        if sources is None:
            if len(relation.stars) == 1:
                star = relation.stars[0]
                if isinstance(star, (exp.Table, Scope)):
                    self._from_source(star, name, ctx, out, written)
                    return
            self._unresolved(written)
            return
        for source in sources:
            out[self.compose(ctx, source)] = None

    def _unresolved(self, written: exp.Expr) -> None:
        """A reference no schema places: reported as written (after normalisation)."""
        self.unresolved[written.sql(dialect=self.dialect)] = None

    # --- subqueries ------------------------------------------------------------------------

    def _subquery_scope(self, scope: Scope, query: exp.Expr) -> Scope | None:
        key = id(scope)
        by_expression = self._subqueries.get(key)
        if by_expression is None:
            by_expression = {id(child.expression): child for child in scope.subquery_scopes}
            self._subqueries[key] = by_expression
        return by_expression.get(id(query))

    def _through_subquery(
        self, subquery: Scope, ctx: _Ctx, out: dict[Source, None], values: bool = False
    ) -> None:
        """A scalar, IN or EXISTS subquery: its values flow as `ctx` says, its rows decide.

        Seen from a filter, the subquery's own conditions keep their descriptions (the
        outer one would repeat the whole subquery).
        """
        relation = self.relation(subquery)
        if values:
            for _, sources in relation.columns:
                for source in sources:
                    out[self.compose(ctx, source)] = None
        for source in relation.rows:
            if ctx.type == INDIRECT and source.description:
                composed = self.compose(ctx, source)
                out[composed._replace(description=source.description)] = None
            else:
                out[self.compose(ctx, source)] = None

    def _describe(self, node: exp.Expr | None) -> str | None:
        """The SQL of a step, shortened when it runs long (a whole subquery, say)."""
        if node is None:
            return None
        key = id(node)
        text = self._descriptions.get(key)
        if text is None:
            # generating from a copy protects the tree from dialect rewrites, which only
            # touch queries; plain expressions are rendered in place (far cheaper)
            copy = node.find(exp.Query) is not None
            text = self._generator.generate(node, copy=copy)
            if len(text) > _DESCRIPTION_LIMIT:
                text = text[: _DESCRIPTION_LIMIT - 1].rstrip() + "…"
            self._descriptions[key] = text
        return text


def _find_source(scope: Scope | None, qualifier: str) -> exp.Table | Scope | None:
    """The source a table qualifier names, in this scope or (correlated) an outer one."""
    while scope is not None:
        source = scope.sources.get(qualifier)
        if source is not None:
            return source
        scope = scope.parent
    return None


_EQUALITIES = (exp.EQ, exp.NullSafeEQ)


def _joins_sources(predicate: exp.Expr, scope: Scope) -> bool:
    """Whether a predicate equates columns of two different sources of this scope."""
    while isinstance(predicate, exp.Paren):
        predicate = predicate.this
    if not isinstance(predicate, _EQUALITIES) or predicate.find(exp.Query) is not None:
        return False
    sides = []
    for side in (predicate.this, predicate.expression):
        qualifiers = {column.table for column in side.find_all(exp.Column)}
        if not qualifiers or not all(q in scope.selected_sources for q in qualifiers):
            return False
        sides.append(qualifiers)
    return sides[0] != sides[1]


def _is_star(value: exp.Expr) -> bool:
    return isinstance(value, exp.Star) or (
        isinstance(value, exp.Column) and isinstance(value.this, exp.Star)
    )


def _is_bare_column(value: exp.Expr) -> bool:
    while isinstance(value, exp.Paren):
        value = value.this
    return isinstance(value, exp.Column)
