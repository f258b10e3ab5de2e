"""`--check DS=SCHEMA.yaml@DATAFILE`: a pandera schema run over a local file, as assertions.

pandas and pandera are imported only here, only when a check is asked for. A failed check
never changes the job's exit code: it is reported, and judging it is the gate's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CheckSpec:
    dataset: str
    schema: Path
    data: Path

    @classmethod
    def parse(cls, text: str) -> CheckSpec:
        """`DS=SCHEMA.yaml@DATAFILE`, or ValueError saying what is missing."""
        dataset, equals, rest = text.partition("=")
        schema, at, data = rest.rpartition("@")
        if not equals or not at or not dataset or not schema or not data:
            raise ValueError(f"--check {text!r}: expected DATASET=SCHEMA.yaml@DATAFILE")
        return cls(dataset=dataset, schema=Path(schema), data=Path(data))


def run_check(spec: CheckSpec) -> list[dict[str, Any]]:
    """Every check of the schema as an assertion (success, failing count); never raises."""
    try:
        import pandera.pandas as pa
        from pandera.errors import SchemaErrors
    except ImportError:
        return [_problem("pandera", "pandera is not installed: pip install 'pandera[pandas]'")]
    try:
        schema = pa.DataFrameSchema.from_yaml(spec.schema)
    except Exception as error:
        return [_problem("schema", f"cannot read {spec.schema}: {error}")]
    try:
        frame = _read(spec.data)
    except Exception as error:
        return [_problem("data", f"cannot read {spec.data}: {error}")]
    failures: dict[tuple[str, str], int] = {}
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as errors:
        for row in errors.failure_cases.itertuples(index=False):
            column = "" if _missing(row.column) else str(row.column)
            key = (column, str(row.check))
            failures[key] = failures.get(key, 0) + 1
    except Exception as error:
        return [_problem("validate", f"pandera could not validate {spec.data}: {error}")]
    return _assertions(schema, failures)


def _assertions(schema: Any, failures: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    declared: list[tuple[str, str]] = []
    for name, column in schema.columns.items():
        declared.append((str(name), f"dtype('{column.dtype}')"))
        declared.extend((str(name), str(check.error or check.name)) for check in column.checks)
        if not column.nullable:
            declared.append((str(name), "not_nullable"))
        if column.unique:
            declared.append((str(name), "field_uniqueness"))
    declared.extend(("", str(check.error or check.name)) for check in schema.checks)
    assertions = []
    for column, check in dict.fromkeys(declared + list(failures)):
        failing = failures.get((column, check), 0)
        assertion: dict[str, Any] = {
            "assertion": check,
            "success": failing == 0,
            "failingCount": failing,
        }
        if column:
            assertion["column"] = column
        assertions.append(assertion)
    return assertions


def _read(path: Path) -> Any:
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    # Read "N/A" and the like as text: a type drift must not hide as a null.
    return pd.read_csv(
        path, sep="\t" if suffix == ".tsv" else ",", keep_default_na=False, na_values=[""]
    )


def _missing(value: Any) -> bool:
    return value is None or value != value  # NaN is the only value not equal to itself


def _problem(assertion: str, message: str) -> dict[str, Any]:
    return {"assertion": assertion, "success": False, "description": message}
