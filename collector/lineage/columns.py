"""Walking column lineage: from dataset fields to the fields they are made from, and on.

A node is a field `(dataset id, column)`. Its inputs are the column edges into it plus the
dataset-wide edges into its dataset (the facet's `dataset` list: joins, filters, grouping,
which decide every column's rows). Upstream follows inputs; downstream follows the edges
that read a field, a dataset-wide one reaching every field of the dataset written. Each
hop is one indexed query for all its fields, on (out_dataset_id, out_field) or
(in_dataset_id, in_field), that answers each distinct transformation once however many
jobs stored it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row

from collector.store import reads

Field = tuple[int, str]  # (dataset id, column name)
WHOLE_DATASET = ""  # out_field of a dataset-wide edge


@dataclass
class ColumnGraph:
    """The fields reached, each with its input edges, and the datasets and types they name."""

    fields: set[Field] = field(default_factory=set)
    inputs: dict[Field, list[Row[Any]]] = field(default_factory=dict)
    datasets: dict[int, Row[Any]] = field(default_factory=dict)
    types: dict[Field, str | None] = field(default_factory=dict)

    def edges(self) -> set[tuple[Field, Field]]:
        """(input field, output field) for every edge between two fields of the graph."""
        return {
            ((edge.in_dataset_id, edge.in_field), node)
            for node, inputs in self.inputs.items()
            for edge in inputs
            if (edge.in_dataset_id, edge.in_field) in self.fields
        }


def dataset_fields(connection: Connection, dataset_id: int) -> set[str]:
    """A dataset's known columns: its latest schema and every column lineage names."""
    return datasets_fields(connection, [dataset_id]).get(dataset_id, set())


def datasets_fields(connection: Connection, dataset_ids: Collection[int]) -> dict[int, set[str]]:
    """`dataset_fields` of several datasets, by dataset (one without any is left out)."""
    found: dict[int, set[str]] = {}
    for dataset_id, fields in reads.current_schemas(connection, dataset_ids).items():
        found.setdefault(dataset_id, set()).update(_types(fields))
    for row in reads.edge_fields(connection, dataset_ids):
        if row.field != WHOLE_DATASET:
            found.setdefault(row.dataset_id, set()).add(row.field)
    return found


def job_fields(connection: Connection, job_id: int) -> set[Field]:
    """The fields a job writes, by its column lineage (all of an output it writes as a whole)."""
    found: set[Field] = set()
    whole: set[int] = set()
    for edge in reads.job_output_fields(connection, job_id):
        if edge.out_field == WHOLE_DATASET:
            whole.add(edge.out_dataset_id)
        else:
            found.add((edge.out_dataset_id, edge.out_field))
    whole -= {dataset for dataset, _ in found}
    for dataset_id, names in datasets_fields(connection, whole).items():
        found.update((dataset_id, name) for name in names)
    return found


def walk(
    connection: Connection, start: Collection[Field], *, depth: int, downstream: bool = False
) -> ColumnGraph:
    """The fields within `depth` hops upstream of `start` (and downstream, when asked)."""
    graph = ColumnGraph(fields=set(start))
    level = set(start)
    for hop in range(depth + 1):
        _fetch_inputs(connection, graph, level)
        if hop == depth:
            break
        level = {
            (edge.in_dataset_id, edge.in_field)
            for node in level
            for edge in graph.inputs[node]
            if edge.in_field
        } - graph.fields
        if not level:
            break
        graph.fields |= level
    if downstream:
        level = set(start)
        for _ in range(depth):
            level = _readers(connection, level) - graph.fields
            if not level:
                break
            graph.fields |= level
        _fetch_inputs(connection, graph, graph.fields - graph.inputs.keys())
    _describe(connection, graph)
    return graph


def _by_dataset(nodes: Iterable[Field]) -> dict[int, set[str]]:
    grouped: dict[int, set[str]] = {}
    for dataset_id, name in nodes:
        grouped.setdefault(dataset_id, set()).add(name)
    return grouped


def _fetch_inputs(connection: Connection, graph: ColumnGraph, nodes: Iterable[Field]) -> None:
    """Each node's input edges: its own, and those into its whole dataset (one query)."""
    grouped = _by_dataset(nodes)
    for dataset_id, names in grouped.items():
        for name in names:
            graph.inputs.setdefault((dataset_id, name), [])
    wanted = {WHOLE_DATASET}.union(*grouped.values())
    for edge in reads.field_inputs(connection, grouped.keys(), wanted):
        names = grouped[edge.out_dataset_id]
        if edge.out_field == WHOLE_DATASET:
            for name in names:
                graph.inputs[(edge.out_dataset_id, name)].append(edge)
        elif edge.out_field in names:
            graph.inputs[(edge.out_dataset_id, edge.out_field)].append(edge)


def _readers(connection: Connection, nodes: Iterable[Field]) -> set[Field]:
    """The fields made from these (a dataset-wide edge: every field of the dataset written)."""
    grouped = _by_dataset(nodes)
    wanted = set().union(*grouped.values())
    found: set[Field] = set()
    whole: set[int] = set()
    for edge in reads.field_readers(connection, grouped.keys(), wanted):
        if edge.in_field not in grouped[edge.in_dataset_id]:
            continue
        if edge.out_field == WHOLE_DATASET:
            whole.add(edge.out_dataset_id)
        else:
            found.add((edge.out_dataset_id, edge.out_field))
    for dataset_id, names in datasets_fields(connection, whole).items():
        found.update((dataset_id, name) for name in names)
    return found


def _describe(connection: Connection, graph: ColumnGraph) -> None:
    """The names of every dataset the graph names, and its fields' types from their schemas."""
    grouped = _by_dataset(graph.fields)
    named = set(grouped)
    named.update(edge.in_dataset_id for inputs in graph.inputs.values() for edge in inputs)
    graph.datasets = reads.dataset_names(connection, named)
    schemas = reads.current_schemas(connection, grouped.keys())
    for dataset_id, names in grouped.items():
        types = _types(schemas.get(dataset_id, []))
        for name in names:
            graph.types[(dataset_id, name)] = types.get(name)


def _types(fields: list[Any]) -> dict[str, str | None]:
    """{column: type} of a schema version's fields."""
    return {
        str(item["name"]): item.get("type")
        for item in fields
        if isinstance(item, dict) and item.get("name")
    }
