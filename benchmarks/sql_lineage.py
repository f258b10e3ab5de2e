"""SQL lineage speed: pipewarden's `parse` against sqllineage on the TPC bench corpus.

    .venv/bin/python benchmarks/sql_lineage.py [--rounds 5] [--sqllineage metadata]

The corpus is `../shared/bench/` (50 statements, TPC-H q1-22 and TPC-DS q1-28, each
`INSERT INTO bench.out_qNN <query>`, with their schemas). Both tools get the schemas:
pipewarden as `parse(sql, schema=…)`, sqllineage as a DummyMetaDataProvider
(`--sqllineage metadata`, its sqlfluff parser, the default); `non-validating` runs
sqllineage's older sqlparse mode instead, which takes no schema; `none` skips it.
pipewarden runs with full column lineage and classification; its rate is the best of
`--rounds` rounds after a warm-up, sqllineage's is one round (it is slow). The goal is
at least 10x sqllineage's rate.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collector.lineage.sql import parse  # noqa: E402  (the repository on sys.path first)

DEFAULT_CORPUS = ROOT.parent / "shared" / "bench"
GOAL = 10.0

Schema = dict[str, dict[str, str]]


@dataclass(frozen=True)
class Statement:
    id: str
    sql: str
    schema: Schema


@dataclass(frozen=True)
class Run:
    """One tool over the corpus: how many statements it handled, and how fast."""

    tool: str
    parsed: int
    total: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.total / self.seconds if self.seconds else float("inf")


def load(corpus: Path) -> list[Statement]:
    statements = json.loads((corpus / "tpc_statements.json").read_text(encoding="utf-8"))
    schemas = json.loads((corpus / "tpc_schemas.json").read_text(encoding="utf-8"))
    return [
        Statement(
            item["id"],
            item["sql"],
            schemas["TPCH_SCHEMA" if item["id"].startswith("tpch") else "TPCDS_SCHEMA"],
        )
        for item in statements
    ]


def time_pipewarden(statements: list[Statement], rounds: int) -> tuple[Run, int, int]:
    """Best of `rounds` after one warm-up; also the edges found and columns unresolved."""
    edges = unresolved = 0
    for statement in statements:  # warm-up: imports, sqlglot's dialect caches
        result = parse(statement.sql, None, statement.schema)
        edges += len(result.edges)
        unresolved += len(result.unresolved)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for statement in statements:
            parse(statement.sql, None, statement.schema)
        best = min(best, time.perf_counter() - started)
    return Run("pipewarden", len(statements), len(statements), best), edges, unresolved


def time_sqllineage(statements: list[Statement], mode: str) -> Run:
    """sqllineage's column lineage of each statement, one round; failures counted."""
    from sqllineage.core.metadata.dummy import DummyMetaDataProvider
    from sqllineage.runner import LineageRunner

    logging.disable(logging.WARNING)  # sqlfluff and sqllineage are chatty
    warnings.simplefilter("ignore")  # the non-validating mode is deprecated
    dialect = "non-validating" if mode == "non-validating" else "ansi"
    runs: list[Callable[[], object]] = []
    for statement in statements:
        if mode == "metadata":
            metadata = {f"<default>.{t}": list(c) for t, c in statement.schema.items()}
            provider = DummyMetaDataProvider(metadata)
        else:
            provider = DummyMetaDataProvider()
        runner = LineageRunner(
            statement.sql, dialect=dialect, metadata_provider=provider, silent_mode=True
        )
        runs.append(runner.get_column_lineage)
    parsed = 0
    started = time.perf_counter()
    for run in runs:
        try:
            run()
        except Exception:  # sqllineage rejects some statements; they count, as failures
            continue
        parsed += 1
    return Run(f"sqllineage ({mode})", parsed, len(statements), time.perf_counter() - started)


def describe_sqlglot() -> str:
    from importlib.metadata import version

    import sqlglot.parser

    compiled = not str(sqlglot.parser.__file__).endswith(".py")
    kind = "compiled, sqlglotc" if compiled else "pure Python"
    return f"sqlglot {version('sqlglot')} ({kind})"


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("--rounds", type=int, default=5, help="pipewarden rounds (best kept)")
    arguments.add_argument(
        "--sqllineage",
        choices=["metadata", "non-validating", "none"],
        default="metadata",
        help="how to run sqllineage: with the schemas (sqlfluff), without (sqlparse), or not",
    )
    arguments.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    options = arguments.parse_args()

    statements = load(options.corpus)
    print(f"corpus: {len(statements)} statements from {options.corpus}")
    print(f"engine: {describe_sqlglot()}")
    ours, edges, unresolved = time_pipewarden(statements, options.rounds)
    print(
        f"{ours.tool:32} {ours.parsed}/{ours.total} parsed  {ours.rate:8.1f} statements/s"
        f"  ({edges} classified edges, {unresolved} unresolved columns)"
    )
    if options.sqllineage == "none":
        return 0
    theirs = time_sqllineage(statements, options.sqllineage)
    print(
        f"{theirs.tool:32} {theirs.parsed}/{theirs.total} parsed  "
        f"{theirs.rate:8.1f} statements/s  (no classification, no masking)"
    )
    ratio = ours.rate / theirs.rate
    verdict = "meets" if ratio >= GOAL else "misses"
    print(f"ratio: {ratio:.1f}x sqllineage ({options.sqllineage}); {verdict} the {GOAL:.0f}x goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
