"""What the shim can tell about the datasets a command declares: names and local counts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_FILE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".json", ".jsonl", ".ndjson", ".txt")


@dataclass(frozen=True)
class DatasetRef:
    """A declared input or output: an OpenLineage (namespace, name), and a local path if any."""

    namespace: str
    name: str
    path: Path | None

    def as_json(self) -> dict[str, str]:
        return {"namespace": self.namespace, "name": self.name}


def resolve(declared: str, namespace: str) -> DatasetRef:
    """Local files are named as OpenLineage names them (namespace `file`, absolute path).

    Anything else (a table name such as `public.orders`) is in `namespace`.
    """
    looks_like_path = declared.startswith(("/", "./", "../", "~")) or declared.lower().endswith(
        _FILE_SUFFIXES
    )
    if looks_like_path or os.path.exists(declared):
        path = Path(declared).expanduser().absolute()
        return DatasetRef(namespace="file", name=str(path), path=path)
    return DatasetRef(namespace=namespace, name=declared, path=None)


def output_statistics(path: Path) -> dict[str, Any] | None:
    """Rows (CSV/TSV/JSON lines/Parquet), bytes and files of a local output; None if absent."""
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file()]
        return {"size": sum(p.stat().st_size for p in files), "fileCount": len(files)}
    if not path.is_file():
        return None
    statistics: dict[str, Any] = {"size": path.stat().st_size, "fileCount": 1}
    rows = _count_rows(path)
    if rows is not None:
        statistics["rowCount"] = rows
    return statistics


def _count_rows(path: Path) -> int | None:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return _parquet_rows(path)
    if suffix in (".csv", ".tsv"):
        return max(0, _count_lines(path) - 1)  # less the header
    if suffix in (".jsonl", ".ndjson"):
        return _count_lines(path)
    return None


def _count_lines(path: Path) -> int:
    """Lines in the file, counting a last line without a newline, by 1 MiB blocks."""
    lines = 0
    last = b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (0 if last == b"\n" else 1)


def _parquet_rows(path: Path) -> int | None:
    try:
        import pyarrow.parquet as parquet  # only when a Parquet output is declared
    except ImportError:
        return None
    try:
        return int(parquet.ParquetFile(path).metadata.num_rows)
    except Exception:  # not a readable Parquet file: report its size only
        return None
