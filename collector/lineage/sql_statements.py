"""What each kind of statement writes, and from which query: mapping onto the target.

sqlglot's lineage walks queries; which table and which of its columns a query fills is
the statement's business: INSERT maps by its column list (by position), by the target's
known columns (by position), or by the query's names; CREATE … AS and SELECT … INTO by
the declared or the query's names. MERGE, UPDATE and DELETE are rewritten into the
SELECTs they amount to (`UPDATE t SET a = s.x FROM s WHERE …` reads like `SELECT s.x AS a FROM t, s
WHERE …`), so one engine classifies every statement the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlglot import exp

from collector.lineage.sql_model import Relation, Source
from collector.lineage.sql_query import QueryAnalyzer
from collector.lineage.sql_schema import Parts, table_name, table_parts


@dataclass
class Write:
    """One statement's effect on one table: target columns in order, with their sources.

    `stars` name what an unexpanded `*` stood for when no schema could expand it.
    """

    target: str
    parts: Parts
    relation: Relation
    stars: list[str] = field(default_factory=list)


@dataclass
class Effect:
    """What one statement reads and writes; `creates` lists tables it (re)defines."""

    reads: dict[str, None] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)
    creates: list[tuple[str, Parts, list[str] | None]] = field(default_factory=list)
    drops: list[tuple[str, Parts]] = field(default_factory=list)


def creation(statement: exp.Expr) -> tuple[exp.Table, bool] | None:
    """The table a statement creates (CREATE TABLE/VIEW, SELECT … INTO), and if temporary."""
    if isinstance(statement, exp.Create) and str(statement.args.get("kind") or "").upper() in (
        "TABLE",
        "VIEW",
    ):
        target = _target_table(statement.this)
        if target is None:
            return None
        properties = statement.args.get("properties")
        temporary = properties is not None and any(
            isinstance(prop, (exp.TemporaryProperty, exp.VolatileProperty))
            for prop in properties.expressions
        )
        return target, temporary or table_name(target).startswith("#")
    if isinstance(statement, exp.Select):
        into = statement.args.get("into")
        if into is not None and isinstance(into.this, exp.Table):
            temporary = bool(into.args.get("temporary")) or table_name(into.this).startswith("#")
            return into.this, temporary
    return None


def _target_table(node: exp.Expr | None) -> exp.Table | None:
    """The table of `CREATE TABLE t …` or `CREATE TABLE t (columns …)`."""
    if isinstance(node, exp.Schema):
        node = node.this
    return node if isinstance(node, exp.Table) else None


def dropped(statement: exp.Expr) -> list[exp.Table]:
    """The tables or views a DROP statement removes."""
    if not isinstance(statement, exp.Drop):
        return []
    if str(statement.args.get("kind") or "").upper() not in ("TABLE", "VIEW"):
        return []
    tables = list(statement.args.get("tables") or ())
    if isinstance(statement.this, exp.Table):
        tables.append(statement.this)
    return tables


def effect_of(statement: exp.Expr, analyzer: QueryAnalyzer) -> Effect:
    """The reads and writes of one statement (nothing for statements that move no data)."""
    effect = Effect()
    if isinstance(statement, exp.Insert):
        _insert(statement, analyzer, effect)
    elif isinstance(statement, exp.Create):
        _create(statement, analyzer, effect)
    elif isinstance(statement, exp.Select) and statement.args.get("into") is not None:
        _select_into(statement, analyzer, effect)
    elif isinstance(statement, exp.Query):
        effect.reads.update(_reads_only(statement, analyzer))
    elif isinstance(statement, exp.Merge):
        _merge(statement, analyzer, effect)
    elif isinstance(statement, exp.Update):
        _update(statement, analyzer, effect)
    elif isinstance(statement, exp.Delete):
        _delete(statement, analyzer, effect)
    elif isinstance(statement, exp.Drop):
        effect.drops += [(table_name(table), table_parts(table)) for table in dropped(statement)]
    return effect


# --- INSERT, CREATE, SELECT INTO ---------------------------------------------------------


def _insert(statement: exp.Insert, analyzer: QueryAnalyzer, effect: Effect) -> None:
    """INSERT [OVERWRITE] … SELECT: by the column list, else the target's known columns
    (by position, static partition columns left out), else the query's names (also for
    `INSERT … BY NAME`). INSERT … VALUES writes the table but no column from another.
    """
    target_node = statement.this
    declared: list[str] | None = None
    if isinstance(target_node, exp.Schema):
        declared = [column.name for column in target_node.expressions]
        target_node = target_node.this
    if not isinstance(target_node, exp.Table):
        return
    query = _query(statement.expression, statement.args.get("with_"))
    if query is not None:
        relation, reads = analyzer.analyze(query)
    else:  # VALUES: only subqueries inside the rows read anything
        relation, reads = Relation(), _subquery_reads(statement.expression, analyzer)
    effect.reads.update(reads)
    parts = table_parts(target_node)
    if declared is None and not statement.args.get("by_name"):
        known = analyzer.schemas.find_parts(parts)
        if known is not None:
            declared = [name for name in known if name not in _static_partitions(target_node)]
    effect.writes.append(_write(target_node, relation, declared, analyzer))


def _create(statement: exp.Create, analyzer: QueryAnalyzer, effect: Effect) -> None:
    """CREATE TABLE/VIEW [(columns)] AS …; without a query it only declares columns."""
    created = creation(statement)
    if created is None:
        return
    target, _ = created
    declared: list[str] | None = None
    if isinstance(statement.this, exp.Schema):
        declared = [
            column.name
            for column in statement.this.expressions
            if isinstance(column, (exp.ColumnDef, exp.Identifier, exp.Column))
        ] or None
    query = _query(statement.expression, None)
    clone = statement.args.get("clone")
    if query is None and clone is not None and isinstance(clone.this, exp.Table):
        query = exp.select(exp.Star()).from_(clone.this.copy())  # CLONE copies it all
    if query is None:
        effect.creates.append((table_name(target), table_parts(target), declared))
        return
    relation, reads = analyzer.analyze(query)
    effect.reads.update(reads)
    write = _write(target, relation, declared, analyzer)
    names = [name for name, _ in write.relation.columns]
    effect.creates.append((write.target, write.parts, None if write.stars else names))
    effect.writes.append(write)


def _select_into(statement: exp.Select, analyzer: QueryAnalyzer, effect: Effect) -> None:
    """SELECT … INTO t (T-SQL, Postgres): creates t with the query's names."""
    into = statement.args["into"]
    query = statement.copy()
    query.set("into", None)
    relation, reads = analyzer.analyze(query)
    effect.reads.update(reads)
    write = _write(into.this, relation, None, analyzer)
    names = [name for name, _ in write.relation.columns]
    effect.creates.append((write.target, write.parts, None if write.stars else names))
    effect.writes.append(write)


def _query(expression: exp.Expr | None, with_: exp.Expr | None) -> exp.Expr | None:
    """The query part of a statement, CTEs attached; None for VALUES and the like."""
    while isinstance(expression, exp.Subquery) and not expression.alias:
        expression = expression.this
    if not isinstance(expression, exp.Query):
        return None
    if with_ is not None and not expression.args.get("with_"):
        expression.set("with_", with_)
    return expression


def _static_partitions(table: exp.Table) -> set[str]:
    """Hive/Spark `PARTITION (ds = '…')`: columns the query does not supply."""
    partition = table.args.get("partition")
    if partition is None:
        return set()
    return {
        item.this.name
        for item in partition.expressions
        if isinstance(item, exp.EQ) and isinstance(item.this, exp.Column)
    }


def _write(
    target: exp.Table, relation: Relation, declared: list[str] | None, analyzer: QueryAnalyzer
) -> Write:
    """Map a query's columns onto the target: by position onto `declared`, else by name."""
    mapped = Relation(rows=relation.rows, tables=relation.tables)
    stars: list[str] = []
    position = 0
    for name, sources in relation.columns:
        if name == "*":
            stars += _star_names(relation, analyzer)
            if declared is not None:
                break  # the positions after an unexpanded * are unknown
            continue
        if declared is None:
            mapped.columns.append((name, sources))
        elif position < len(declared):
            mapped.columns.append((declared[position], sources))
        position += 1
    if stars:
        mapped.has_star = True
        mapped.stars = list(relation.stars)
    return Write(table_name(target), table_parts(target), mapped, list(dict.fromkeys(stars)))


def _star_names(relation: Relation, analyzer: QueryAnalyzer) -> Iterator[str]:
    """What an unexpanded `*` stood for, as `table.*` where a table is known."""
    found = False
    for star in relation.stars:
        if isinstance(star, exp.Table) and isinstance(star.this, exp.Identifier):
            name = table_name(star)
            intermediate = analyzer.intermediates.get(name)
            if intermediate is not None and intermediate.has_star:
                yield from _star_names(intermediate, analyzer)
            else:
                yield f"{name}.*"
            found = True
    if not found:
        yield "*"


def _subquery_reads(expression: exp.Expr | None, analyzer: QueryAnalyzer) -> dict[str, None]:
    """Tables read by the subqueries of a non-query (VALUES (…, (SELECT …)))."""
    reads: dict[str, None] = {}
    if expression is not None:
        for select in expression.find_all(exp.Select):
            reads.update(_reads_only(select, analyzer))
    return reads


def _reads_only(statement: exp.Expr, analyzer: QueryAnalyzer) -> dict[str, None]:
    """A plain SELECT writes nothing: only which tables it reads matters."""
    from sqlglot.optimizer.scope import build_scope

    scope = build_scope(statement)
    return analyzer.tables_read(scope) if scope is not None else {}


# --- MERGE, UPDATE, DELETE -----------------------------------------------------------------


def _merge(statement: exp.Merge, analyzer: QueryAnalyzer, effect: Effect) -> None:
    """Each WHEN … UPDATE SET / INSERT VALUES branch as `SELECT values FROM a JOIN b ON …
    WHERE branch condition`; the branches' columns and rows are united.
    """
    target = statement.this
    using = statement.args.get("using")
    if not isinstance(target, exp.Table) or using is None:
        return
    on = statement.args.get("on")
    whens = statement.args.get("whens")
    name = table_name(target)
    relations: list[Relation] = []
    reads: dict[str, None] = {}
    for when in whens.expressions if whens is not None else ():
        then = when.args.get("then")
        condition = when.args.get("condition")
        if isinstance(then, exp.Update):
            pairs = _assignments(then.expressions, using)
            first, second = target, using
        elif isinstance(then, exp.Insert):
            pairs = _insert_values(then, using, analyzer, target)
            first, second = using, target
        else:
            continue  # DELETE, DO NOTHING: no column is written
        select = exp.Select(
            expressions=_projections(pairs),
            from_=exp.From(this=_bare(first)),
            joins=[exp.Join(this=_bare(second), on=on.copy() if on is not None else None)],
        )
        if condition is not None:
            select.set("where", exp.Where(this=condition.copy()))
        relation, read = analyzer.analyze(select)
        relations.append(relation)
        reads.update(read)
    if not _reads_target_elsewhere(statement, name, (target,)):
        reads.pop(name, None)
    effect.reads.update(reads)
    effect.writes.append(
        Write(name, table_parts(target), _union(relations) if relations else Relation())
    )


def _assignments(assignments: list[exp.Expr], using: exp.Expr) -> list[tuple[str, exp.Expr]]:
    """`SET a = x, (b, c) = (SELECT …)`, or Databricks' `SET *` (every source column)."""
    pairs: list[tuple[str, exp.Expr]] = []
    for assignment in assignments:
        if isinstance(assignment, exp.Star):
            pairs.append(("*", exp.Column(this=exp.Star(), table=_alias_identifier(using))))
        elif isinstance(assignment, exp.EQ) and isinstance(assignment.this, exp.Tuple):
            pairs += _tuple_assignment(assignment.this, assignment.expression)
        elif isinstance(assignment, exp.EQ) and isinstance(assignment.this, exp.Column):
            pairs.append((assignment.this.name, assignment.expression.copy()))
    return pairs


def _tuple_assignment(columns: exp.Tuple, value: exp.Expr) -> list[tuple[str, exp.Expr]]:
    """`(a, b) = (x, y)` pairs by position; `(a, b) = (SELECT x, y …)` too, per column."""
    names = [column.name for column in columns.expressions]
    if isinstance(value, exp.Tuple) and len(value.expressions) == len(names):
        return [(n, v.copy()) for n, v in zip(names, value.expressions, strict=True)]
    inner = value.this if isinstance(value, exp.Subquery) else None
    if isinstance(inner, exp.Select) and len(inner.expressions) == len(names):
        pairs = []
        for index, name in enumerate(names):
            single = value.copy()
            single.this.set("expressions", [inner.expressions[index].copy()])
            pairs.append((name, single))
        return pairs
    return [(name, value.copy()) for name in names]


def _insert_values(
    then: exp.Insert, using: exp.Expr, analyzer: QueryAnalyzer, target: exp.Table
) -> list[tuple[str, exp.Expr]]:
    """`INSERT (a, b) VALUES (x, y)`, `INSERT VALUES (…)` onto known columns, `INSERT *`."""
    columns = then.this
    values = then.expression
    row = isinstance(columns, exp.Var) and columns.name.upper() == "ROW"  # BigQuery
    if row or isinstance(columns, exp.Star) or (columns is None and values is None):
        return [("*", exp.Column(this=exp.Star(), table=_alias_identifier(using)))]
    value_list = list(values.expressions) if isinstance(values, exp.Tuple) else []
    if isinstance(columns, exp.Tuple):
        names = [column.name for column in columns.expressions]
    else:
        names = list(analyzer.schemas.find_parts(table_parts(target)) or ())
    return [(n, v.copy()) for n, v in zip(names, value_list, strict=False)]


def _projections(pairs: list[tuple[str, exp.Expr]]) -> list[exp.Expr]:
    """`value AS column` for each pair; the column quoted so its case survives qualify."""
    return [
        value if column == "*" else exp.alias_(value, exp.to_identifier(column, quoted=True))
        for column, value in pairs
    ]


def _alias_identifier(source: exp.Expr) -> exp.Identifier:
    """The name a MERGE source is referred to by (its alias, else its name)."""
    alias = source.alias_or_name
    return exp.to_identifier(alias) or exp.to_identifier("_")


def _bare(source: exp.Expr) -> exp.Expr:
    """A copy of a source without the joins some dialects hang on it."""
    copy = source.copy()
    copy.set("joins", None)
    return copy


def _update(statement: exp.Update, analyzer: QueryAnalyzer, effect: Effect) -> None:
    """UPDATE in its dialects' shapes: `… SET … FROM s WHERE` (Postgres, Snowflake),
    `UPDATE alias SET … FROM t alias JOIN …` (T-SQL), `UPDATE t JOIN s ON … SET` (MySQL).
    """
    target = statement.this
    if not isinstance(target, exp.Table):
        return
    from_ = statement.args.get("from_")
    sources: list[exp.Expr] = []
    joins: list[exp.Expr] = [join.copy() for join in target.args.get("joins") or ()]
    real_target: exp.Table = target
    if from_ is not None:
        first = from_.this
        joins += [join.copy() for join in first.args.get("joins") or ()]
        sources.append(_bare(first))
        aliased = _aliased_in_from(target, [first, *(j.this for j in joins)])
        if aliased is None:
            sources.insert(0, _bare(target))
        else:
            real_target = aliased
    else:
        sources.append(_bare(target))
    select = exp.Select(
        expressions=_projections(_assignments(statement.expressions, target)),
        from_=exp.From(this=sources[0]),
        joins=[exp.Join(this=source) for source in sources[1:]] + joins,
    )
    where = statement.args.get("where")
    if where is not None:
        select.set("where", where.copy())
    relation, reads = analyzer.analyze(select)
    name = table_name(real_target)
    if not _reads_target_elsewhere(statement, name, (target, real_target)):
        reads.pop(name, None)
    effect.reads.update(reads)
    effect.writes.append(_write(real_target, relation, None, analyzer))


def _aliased_in_from(target: exp.Table, candidates: list[exp.Expr]) -> exp.Table | None:
    """T-SQL's `UPDATE a SET … FROM t AS a JOIN …`: the FROM table the target names."""
    if target.args.get("db") is not None:
        wanted = table_name(target)
        for candidate in candidates:
            if isinstance(candidate, exp.Table) and table_name(candidate) == wanted:
                return candidate
        return None
    for candidate in candidates:
        if isinstance(candidate, exp.Table) and target.name in (candidate.alias, candidate.name):
            return candidate
    return None


def _delete(statement: exp.Delete, analyzer: QueryAnalyzer, effect: Effect) -> None:
    """DELETE writes no column; what its WHERE reads decides which rows remain."""
    target = statement.this
    if not isinstance(target, exp.Table):
        return
    using = [source.copy() for source in statement.args.get("using") or ()]
    select = exp.Select(
        expressions=[exp.alias_(exp.Literal.number(1), "_")],
        from_=exp.From(this=_bare(target)),
        joins=[exp.Join(this=source) for source in using],
    )
    where = statement.args.get("where")
    if where is not None:
        select.set("where", where.copy())
    relation, reads = analyzer.analyze(select)
    if not _reads_target_elsewhere(statement, table_name(target), (target,)):
        reads.pop(table_name(target), None)
    effect.reads.update(reads)
    effect.writes.append(
        Write(table_name(target), table_parts(target), Relation(rows=relation.rows))
    )


def _reads_target_elsewhere(statement: exp.Expr, name: str, skip: tuple[exp.Expr, ...]) -> bool:
    """Whether the target also appears as a source of its own (a subquery, USING …).

    MERGE/UPDATE/DELETE targets are outputs; by convention they are inputs only when
    the statement reads them besides, though edges may still start at their columns.
    """
    return any(
        table_name(table) == name
        for table in statement.find_all(exp.Table)
        if isinstance(table.this, exp.Identifier) and not any(table is node for node in skip)
    )


def _union(relations: list[Relation]) -> Relation:
    """Several branches writing one table (MERGE): all their columns and rows together."""
    merged = Relation()
    index: dict[str, dict[Source, None]] = {}
    for relation in relations:
        for name, sources in relation.columns:
            if name == "*":
                merged.has_star = True
                continue
            if name not in index:
                index[name] = {}
                merged.columns.append((name, index[name]))
            index[name].update(sources)
        merged.rows.update(relation.rows)
        merged.tables.update(relation.tables)
    return merged
