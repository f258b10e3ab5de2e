"""Schema drift: column changes, type synonyms, widening, renames."""

from __future__ import annotations

import pytest

from detectors import schema
from detectors.schema import Change, Field
from tests.detectors.series import MONDAY

BASE = [
    Field("id", "INTEGER", "the order"),
    Field("customer", "VARCHAR(100)", "who bought"),
    Field("amount", "DECIMAL(10,2)", None),
    Field("placed_at", "TIMESTAMP", ""),
]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("VARCHAR", "TEXT"),
        ("text", "STRING"),
        ("INT", "INTEGER"),
        ("int4", "INT"),
        ("BIGINT", "INT8"),
        ("DOUBLE PRECISION", "FLOAT8"),
        ("BOOL", "boolean"),
        ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"),
        ("decimal(10, 2)", "NUMERIC(10,2)"),
        ("STRUCT<a INT>", "struct<a  int>"),
    ],
)
def test_synonyms_are_no_change(old: str, new: str) -> None:
    assert schema.diff([Field("c", old)], [Field("c", new)]) == []


def test_added_column_is_not_breaking() -> None:
    changes = schema.diff(BASE, [*BASE, Field("channel", "TEXT")])
    assert changes == [Change("added", "channel", None, "TEXT", False)]


def test_removed_column_is_breaking() -> None:
    changes = schema.diff(BASE, [f for f in BASE if f.name != "amount"])
    assert changes == [Change("removed", "amount", "DECIMAL(10,2)", None, True)]


@pytest.mark.parametrize(
    ("old", "new", "breaking"),
    [
        ("INT", "BIGINT", False),
        ("SMALLINT", "INT", False),
        ("INT", "DOUBLE", False),
        ("INT", "DECIMAL(12,0)", False),
        ("REAL", "DOUBLE", False),
        ("VARCHAR(50)", "VARCHAR(200)", False),
        ("VARCHAR(50)", "TEXT", False),
        ("DECIMAL(10,2)", "DECIMAL(12,2)", False),
        ("DATE", "TIMESTAMP", False),
        ("BIGINT", "INT", True),
        ("BIGINT", "DOUBLE", True),
        ("TEXT", "VARCHAR(50)", True),
        ("DECIMAL(10,2)", "DECIMAL(10,4)", True),
        ("INT", "VARCHAR", True),
        ("TIMESTAMP", "TIMESTAMPTZ", True),
        ("DOUBLE", "INT", True),
        ("VARCHAR", "MYTYPE", True),
    ],
)
def test_type_changes_break_unless_they_widen(old: str, new: str, breaking: bool) -> None:
    changes = schema.diff([Field("c", old)], [Field("c", new)])
    assert changes == [Change("type_changed", "c", old, new, breaking)]


def test_rename_at_the_same_position() -> None:
    new = [BASE[0], Field("client", "TEXT", "someone else"), BASE[2], BASE[3]]
    changes = schema.diff(BASE, new)
    assert changes == [Change("renamed", "client", "VARCHAR(100)", "TEXT", True, "customer")] or (
        # VARCHAR(100) and TEXT differ in size: not the same type, so no rename
        changes
        == [
            Change("removed", "customer", "VARCHAR(100)", None, True),
            Change("added", "client", None, "TEXT", False),
        ]
    )
    same_type = [BASE[0], Field("client", "VARCHAR(100)"), BASE[2], BASE[3]]
    assert schema.diff(BASE, same_type) == [
        Change("renamed", "client", "VARCHAR(100)", "VARCHAR(100)", True, "customer")
    ]


def test_rename_by_description_when_the_position_moved() -> None:
    new = [Field("order_id", "INT", "the order"), *BASE[1:]]
    new = [*new[1:], new[0]]
    assert schema.diff(BASE, new) == [Change("renamed", "order_id", "INTEGER", "INT", True, "id")]


def test_no_rename_when_types_differ_or_the_pairing_is_ambiguous() -> None:
    retyped = [Field("key", "TEXT"), *BASE[1:]]
    kinds = [c.kind for c in schema.diff(BASE, retyped)]
    assert kinds == ["removed", "added"]
    old = [Field("a", "INT"), Field("b", "INT")]
    new = [Field("b", "INT"), Field("c", "INT"), Field("d", "INT")]
    # a left, c and d came: a's position (0) now holds b, and no description helps.
    assert [c.kind for c in schema.diff(old, new)] == ["removed", "added", "added"]


def test_blank_descriptions_do_not_pair_columns() -> None:
    old = [Field("x", "INT", " "), Field("keep", "INT")]
    new = [Field("keep", "INT"), Field("y", "INT", " ")]
    assert [c.kind for c in schema.diff(old, new)] == ["removed", "added"]


def test_findings_state_each_change_in_a_sentence() -> None:
    changes = schema.diff(
        [Field("id", "INT"), Field("email", "TEXT"), Field("n", "INT")],
        [Field("id", "BIGINT"), Field("n", "VARCHAR"), Field("note", "TEXT")],
    )
    findings = schema.findings(changes, MONDAY, "run-1")
    assert [(f.subject, f.severity) for f in findings] == [
        ("id", "info"),
        ("email", "critical"),
        ("n", "critical"),
        ("note", "info"),
    ]
    assert [f.message for f in findings] == [
        "column id widened from INT to BIGINT",
        "column email (TEXT) was removed, which breaks its readers",
        "column n changed type from INT to VARCHAR, which can break its readers",
        "column note (TEXT) was added",
    ]
    assert all(f.kind == "schema_drift" and f.run_id == "run-1" for f in findings)
