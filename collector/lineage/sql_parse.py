"""From script text to sqlglot statements, or a `SqlParseError` saying which and where.

The script is tokenised once and split on top-level semicolons (as sqlglot itself
does), then each statement is parsed on its own, so a failure names the statement it is
in and the position in the whole script. Whatever sqlglot raises on hostile input
(including recursion limits on absurd nesting) becomes a `SqlParseError`: callers only
ever have to handle that one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from collector.lineage.sql_model import SqlParseError

# Names the collector may meet (OpenLineage's `sql` facet, users' habits) for sqlglot's.
_DIALECT_ALIASES = {
    "postgresql": "postgres",
    "psql": "postgres",
    "mssql": "tsql",
    "sqlserver": "tsql",
    "sql_server": "tsql",
    "azuresql": "tsql",
    "synapse": "tsql",
    "sparksql": "spark",
    "spark_sql": "spark",
    "googlesql": "bigquery",
    "mariadb": "mysql",
    "generic": "",
    "ansi": "",
    "sql": "",
}

_MISSING_FROM = re.compile(r"from (\d+):(\d+)$")
_TOKEN_REPR = re.compile(r"<Token token_type: [^,]+, text: (.*?), line: \d+, col: \d+.*?>")


@dataclass(frozen=True)
class Statement:
    """One parsed statement and the text it came from."""

    expression: exp.Expr
    text: str


def dialect_of(name: str | None) -> Dialect:
    """sqlglot's dialect for a name (case-insensitive; common aliases accepted).

    An unknown name is a ValueError naming it: that is a caller's mistake, not bad SQL.
    """
    key = (name or "").strip().lower()
    key = _DIALECT_ALIASES.get(key, key)
    try:
        return Dialect.get_or_raise(key or None)
    except ValueError:
        raise ValueError(f"unknown SQL dialect {name!r}") from None


def parse_script(sql: str, dialect: Dialect) -> list[Statement]:
    """The script's statements in order; empty ones (`;;`, comments only) are skipped."""
    try:
        tokens = dialect.tokenize(sql)
    except TokenError as error:
        raise _token_error(error, sql, dialect) from None
    except Exception as error:  # anything else sqlglot's tokenizer may throw on odd text
        raise SqlParseError(_describe(error), sql.strip(), None, None) from None
    statements = []
    parser = dialect.parser()
    for chunk in _split(tokens):
        text = sql[chunk[0].start : chunk[-1].end + 1]
        try:
            parsed = parser.parse(chunk, sql)
        except ParseError as error:
            raise _parse_error(error, text) from None
        except Exception as error:  # e.g. RecursionError on thousands of nested brackets
            line, column = chunk[0].line, _start_column(chunk[0])
            raise SqlParseError(_describe(error), text, line, column) from None
        for expression in parsed:
            if expression is not None and not isinstance(expression, exp.Semicolon):
                statements.append(Statement(expression, text))
    return statements


def _split(tokens: list[Token]) -> list[list[Token]]:
    chunks: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            chunks.append([])
        else:
            chunks[-1].append(token)
    return [chunk for chunk in chunks if chunk]


def _start_column(token: Token) -> int:
    """sqlglot's token column is where the token ends; a reader wants where it starts."""
    return max(1, token.col - len(token.text) + 1) if "\n" not in token.text else token.col


def _parse_error(error: ParseError, statement: str) -> SqlParseError:
    detail = error.errors[0] if error.errors else {}
    line, column = detail.get("line"), detail.get("col")
    highlight = detail.get("highlight") or ""
    if isinstance(column, int) and highlight and "\n" not in highlight:
        column = max(1, column - len(highlight) + 1)
    message = detail.get("description") or str(error).split("\n", 1)[0]
    message = _TOKEN_REPR.sub(lambda found: repr(found.group(1)), message)
    return SqlParseError(
        message,
        statement,
        line if isinstance(line, int) else None,
        column if isinstance(column, int) else None,
    )


def _token_error(error: TokenError, sql: str, dialect: Dialect) -> SqlParseError:
    """Where tokenising stopped: an unterminated quote or comment, most often.

    sqlglot's inner error says where the unterminated token starts (`Missing ' from
    line:offset`); failing that, the middle of the context snippet it quotes.
    """
    cause = str(error.__cause__ or error.__context__ or "")
    found = _MISSING_FROM.search(cause)
    if found:
        offset = int(found.group(2))
    elif error.start is not None and error.start > 0:
        offset = error.start + 50
    else:
        offset = len(sql)
    offset = max(0, min(offset, len(sql)))
    line = sql.count("\n", 0, offset) + 1
    column = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    start = _statement_start(sql, offset, dialect)
    message = cause.split(" from ")[0] if found else "could not tokenize the SQL"
    return SqlParseError(message, sql[start:].strip(), line, column)


def _statement_start(sql: str, offset: int, dialect: Dialect) -> int:
    """Offset just after the last semicolon before `offset`, by the tokenizer's reading."""
    try:
        tokens = dialect.tokenize(sql[:offset])
    except Exception:  # the prefix may fail too; then the statement is all of it
        return 0
    ends = [token.end + 1 for token in tokens if token.token_type == TokenType.SEMICOLON]
    return ends[-1] if ends else 0


def _describe(error: BaseException) -> str:
    text = str(error).split("\n", 1)[0]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
