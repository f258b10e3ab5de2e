"""Golden files for the SQL lineage engine: `golden/NAME.sql` beside `golden/NAME.json`.

A `.sql` file starts with `-- dialect: NAME` and any number of `-- schema: {JSON}` lines
(merged); the rest of the file is the script. The `.json` file is what `parse` must
return, edges as one readable line each, grouped by output table:

    "<output field or (rows)> <- <input table>.<field> TYPE/SUBTYPE [masking] [| description]"

`PIPEWARDEN_UPDATE_GOLDEN=1 pytest tests/lineage` rewrites the `.json` files from what
the code returns; every rewritten file is then reviewed by hand before it is committed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.lineage.sql import SqlLineage

GOLDEN = Path(__file__).parent / "golden"
_HEADER = re.compile(r"^--\s*(dialect|schema):\s*(.*)$")


@dataclass(frozen=True)
class Case:
    """One golden case: the script, how to read it, and where its expectation lives."""

    name: str
    sql: str
    dialect: str | None
    schema: dict[str, dict[str, str]]
    expected_path: Path


def cases() -> list[Case]:
    """Every `golden/*.sql`, sorted by name."""
    return [read_case(path) for path in sorted(GOLDEN.glob("*.sql"))]


def read_case(path: Path) -> Case:
    sql = path.read_text(encoding="utf-8")
    dialect: str | None = None
    schema: dict[str, dict[str, str]] = {}
    for line in sql.splitlines():
        header = _HEADER.match(line.strip())
        if header is None:
            continue
        key, value = header.groups()
        if key == "dialect":
            dialect = value.strip() or None
        else:
            schema.update(json.loads(value))
    return Case(path.stem, sql, dialect, schema, path.with_suffix(".json"))


def render(lineage: SqlLineage) -> dict[str, Any]:
    """A lineage as the golden files hold it: stable order, one line per edge."""
    edges: dict[str, list[str]] = {}
    for edge in lineage.edges:
        line = (
            f"{edge.output_field or '(rows)'} <- {edge.input}.{edge.input_field} "
            f"{edge.type}/{edge.subtype}"
        )
        if edge.masking:
            line += " masking"
        if edge.description:
            line += f" | {edge.description}"
        edges.setdefault(edge.output, []).append(line)
    return {
        "statements": lineage.statements,
        "inputs": list(lineage.inputs),
        "outputs": list(lineage.outputs),
        "unresolved": list(lineage.unresolved),
        "edges": edges,
    }


def dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
