"""Schema drift: columns added, removed, retyped or renamed between two schema versions.

Type names are compared as families with a size (VARCHAR, TEXT and STRING are one type;
INT, INTEGER and INT4 are one type), so a producer spelling a type differently is no
change. Removing a column, renaming it and changing its type in a way that can lose values
break readers; adding a column and widening a type (INT to BIGINT, VARCHAR(50) to TEXT,
DECIMAL(10,2) to DECIMAL(12,2)) do not. A rename is a guess: one removed and one added
column of the same type, at the same position or with the same non-blank description,
neither of which could pair with another.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from detectors.model import Finding

KIND = "schema_drift"
ChangeKind = Literal["added", "removed", "type_changed", "renamed"]


@dataclass(frozen=True)
class Field:
    """One column of a schema version, as the schema facet gives it."""

    name: str
    type: str | None
    description: str | None = None


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    column: str  # the new name for a rename
    old_type: str | None
    new_type: str | None
    breaking: bool
    renamed_from: str | None = None


@dataclass(frozen=True)
class SqlType:
    """A type reduced to its family and size: what equality and widening are judged on."""

    family: str
    size: tuple[int, ...] | None = None  # bits, length, (precision, scale); None = unbounded
    text: str = ""  # the normalised spelling, for types outside the known families


_FAMILY: Final[dict[str, tuple[str, tuple[int, ...] | None]]] = {
    **dict.fromkeys(("TINYINT", "INT1", "BYTEINT", "INT8_T"), ("int", (8,))),
    **dict.fromkeys(("SMALLINT", "INT2", "SHORT", "SMALLSERIAL"), ("int", (16,))),
    **dict.fromkeys(("MEDIUMINT",), ("int", (24,))),
    **dict.fromkeys(("INT", "INTEGER", "INT4", "SERIAL", "INT32"), ("int", (32,))),
    **dict.fromkeys(("BIGINT", "INT8", "LONG", "BIGSERIAL", "INT64"), ("int", (64,))),
    **dict.fromkeys(("HUGEINT", "INT128"), ("int", (128,))),
    **dict.fromkeys(("REAL", "FLOAT4", "FLOAT32"), ("float", (32,))),
    **dict.fromkeys(("FLOAT", "DOUBLE", "DOUBLE PRECISION", "FLOAT8", "FLOAT64"), ("float", (64,))),
    **dict.fromkeys(("DECIMAL", "NUMERIC", "NUMBER", "BIGNUMERIC", "DEC"), ("decimal", None)),
    **dict.fromkeys(
        (
            "VARCHAR",
            "TEXT",
            "STRING",
            "CHARACTER VARYING",
            "NVARCHAR",
            "VARCHAR2",
            "NVARCHAR2",
            "CLOB",
            "STR",
            "UTF8",
        ),
        ("string", None),
    ),
    **dict.fromkeys(("CHAR", "CHARACTER", "NCHAR", "BPCHAR"), ("string", (1,))),
    **dict.fromkeys(("BOOLEAN", "BOOL", "LOGICAL"), ("bool", None)),
    "DATE": ("date", None),
    **dict.fromkeys(
        ("TIMESTAMP", "DATETIME", "TIMESTAMP WITHOUT TIME ZONE", "TIMESTAMP_NTZ", "DATETIME2"),
        ("timestamp", None),
    ),
    **dict.fromkeys(
        ("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_TZ", "TIMESTAMP_LTZ"),
        ("timestamptz", None),
    ),
    **dict.fromkeys(("TIME", "TIME WITHOUT TIME ZONE"), ("time", None)),
    **dict.fromkeys(("JSON", "JSONB", "VARIANT"), ("json", None)),
    **dict.fromkeys(("BYTES", "BYTEA", "BINARY", "VARBINARY", "BLOB"), ("binary", None)),
    "UUID": ("uuid", None),
}
_INT_DIGITS: Final = {8: 3, 16: 5, 24: 8, 32: 10, 64: 19, 128: 39}
_SIZED: Final = re.compile(r"^(?P<base>[A-Z_][A-Z0-9_ ]*?)\s*\((?P<args>[\d\s,]*)\)(?P<rest>.*)$")


def parse_type(spelling: str | None) -> SqlType:
    """The family and size of a type as a producer spelled it."""
    text = " ".join((spelling or "").upper().split())
    base, args, rest = text, "", ""
    sized = _SIZED.match(text)
    if sized:
        base, args, rest = sized["base"].strip(), sized["args"], sized["rest"].strip()
    if rest:  # e.g. TIMESTAMP(6) WITH TIME ZONE
        base = f"{base} {rest}"
    known = _FAMILY.get(base)
    if known is None:
        return SqlType("other", None, text)
    family, size = known
    numbers = tuple(int(a) for a in args.replace(" ", "").split(",") if a)
    if family == "string" and numbers:
        size = numbers[:1]
    elif family == "decimal" and numbers:
        size = (numbers[0], numbers[1] if len(numbers) > 1 else 0)
    return SqlType(family, size, text if family == "other" else "")


def same_type(old: str | None, new: str | None) -> bool:
    return parse_type(old) == parse_type(new)


def widens(old: str | None, new: str | None) -> bool:
    """True when every value of the old type fits the new one unchanged."""
    before, after = parse_type(old), parse_type(new)
    if before == after:
        return True
    if before.family == "int" and after.family == "int":
        return _bits(after) >= _bits(before)
    if before.family == "int" and after.family == "float":
        return _bits(before) <= 32 and _bits(after) == 64
    if before.family == "int" and after.family == "decimal":
        return after.size is None or after.size[0] - after.size[1] >= _INT_DIGITS[_bits(before)]
    if before.family == "float" and after.family == "float":
        return _bits(after) >= _bits(before)
    if before.family == "decimal" and after.family == "decimal":
        if after.size is None:
            return True
        if before.size is None:
            return False
        return after.size[0] - after.size[1] >= before.size[0] - before.size[1] and (
            after.size[1] >= before.size[1]
        )
    if before.family == "string" and after.family == "string":
        return after.size is None or (before.size is not None and after.size[0] >= before.size[0])
    return before.family == "date" and after.family in ("timestamp", "timestamptz")


def _bits(kind: SqlType) -> int:
    return kind.size[0] if kind.size else 64


def diff(old: Sequence[Field], new: Sequence[Field]) -> list[Change]:
    """The changes from `old` to `new`: in the old column order, then additions in the new."""
    new_by_name = {f.name: f for f in new}
    old_names = {f.name for f in old}
    removed = [(i, f) for i, f in enumerate(old) if f.name not in new_by_name]
    added = [(i, f) for i, f in enumerate(new) if f.name not in old_names]
    renames = _renames(removed, added)
    renamed_to = {r.name: a for r, a in renames.items()}
    paired = {a.name for a in renames.values()}
    changes: list[Change] = []
    for field in old:
        if field.name in renamed_to:
            target = renamed_to[field.name]
            changes.append(
                Change("renamed", target.name, field.type, target.type, True, field.name)
            )
        elif field.name not in new_by_name:
            changes.append(Change("removed", field.name, field.type, None, True))
        elif not same_type(field.type, new_by_name[field.name].type):
            after = new_by_name[field.name].type
            breaking = not widens(field.type, after)
            changes.append(Change("type_changed", field.name, field.type, after, breaking))
    changes.extend(
        Change("added", f.name, None, f.type, False) for _, f in added if f.name not in paired
    )
    return changes


def _renames(
    removed: Sequence[tuple[int, Field]], added: Sequence[tuple[int, Field]]
) -> dict[Field, Field]:
    """Pairs (removed, added) that can only be one column renamed."""

    def fits(gone: tuple[int, Field], came: tuple[int, Field]) -> bool:
        if not same_type(gone[1].type, came[1].type):
            return False
        described = bool(gone[1].description and gone[1].description.strip())
        return gone[0] == came[0] or (described and gone[1].description == came[1].description)

    pairs: dict[Field, Field] = {}
    for gone in removed:
        candidates = [came for came in added if fits(gone, came)]
        if len(candidates) != 1:
            continue
        rivals = [other for other in removed if fits(other, candidates[0])]
        if len(rivals) == 1:
            pairs[gone[1]] = candidates[0][1]
    return pairs


def findings(changes: Sequence[Change], at: datetime, run_id: str | None) -> list[Finding]:
    """One finding per change: critical when it breaks readers, info otherwise."""
    return [
        Finding(
            kind=KIND,
            run_id=run_id,
            at=at,
            severity="critical" if change.breaking else "info",
            observed=None,
            expected_low=None,
            expected_high=None,
            score=1.0 if change.breaking else 0.0,
            message=describe(change),
            subject=change.column,
        )
        for change in changes
    ]


def describe(change: Change) -> str:
    """ "column amount changed type from INT to VARCHAR, which breaks readers" """
    column = f"column {change.column}"
    if change.kind == "added":
        return f"{column} ({change.new_type or 'untyped'}) was added"
    if change.kind == "removed":
        return f"{column} ({change.old_type or 'untyped'}) was removed, which breaks its readers"
    if change.kind == "renamed":
        return (
            f"column {change.renamed_from} was renamed to {change.column} (same type, "
            f"{change.new_type or 'untyped'}), which breaks readers of the old name"
        )
    if change.breaking:
        return (
            f"{column} changed type from {change.old_type} to {change.new_type}, "
            "which can break its readers"
        )
    return f"{column} widened from {change.old_type} to {change.new_type}"
