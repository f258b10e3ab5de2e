"""Walking column lineage: from dataset fields to the fields they are made from, and on.

A node is a field `(dataset id, column)`. Its inputs are the column edges into it plus the
dataset-wide edges into its dataset (the facet's `dataset` list: joins, filters, grouping,
which decide every column's rows). Upstream follows inputs; downstream follows the edges
that read a field, a dataset-wide one reaching every field of the dataset written. Each
hop is one indexed query per dataset, on (out_dataset_id, out_field) or
(in_dataset_id, in_field).
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
    names = set(_schema_types(connection, dataset_id))
    names.update(edge.out_field for edge in reads.edges_into(connection, dataset_id))
    names.update(edge.in_field for edge in reads.edges_from(connection, dataset_id))
    names.discard(WHOLE_DATASET)
    return names


def job_fields(connection: Connection, job_id: int) -> set[Field]:
    """The fields a job writes, by its column lineage (all of an output it writes as a whole)."""
    found: set[Field] = set()
    whole: set[int] = set()
    for edge in reads.edges_of_job(connection, job_id):
        if edge.out_field == WHOLE_DATASET:
            whole.add(edge.out_dataset_id)
        else:
            found.add((edge.out_dataset_id, edge.out_field))
    for dataset_id in whole - {dataset for dataset, _ in found}:
        found.update((dataset_id, name) for name in dataset_fields(connection, dataset_id))
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
        graph.fields |= level
    if downstream:
        level = set(start)
        for _ in range(depth):
            level = _readers(connection, level) - graph.fields
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
    """Each node's input edges: its own, and those into its whole dataset."""
    for dataset_id, names in _by_dataset(nodes).items():
        for name in names:
            graph.inputs.setdefault((dataset_id, name), [])
        for edge in reads.edges_into(connection, dataset_id, [*names, WHOLE_DATASET]):
            targets = names if edge.out_field == WHOLE_DATASET else [edge.out_field]
            for name in targets:
                graph.inputs[(dataset_id, name)].append(edge)


def _readers(connection: Connection, nodes: Iterable[Field]) -> set[Field]:
    """The fields made from these (a dataset-wide edge: every field of the dataset written)."""
    found: set[Field] = set()
    whole: set[int] = set()
    for dataset_id, names in _by_dataset(nodes).items():
        for edge in reads.edges_from(connection, dataset_id, names):
            if edge.out_field == WHOLE_DATASET:
                whole.add(edge.out_dataset_id)
            else:
                found.add((edge.out_dataset_id, edge.out_field))
    for dataset_id in whole:
        found.update((dataset_id, name) for name in dataset_fields(connection, dataset_id))
    return found


def _describe(connection: Connection, graph: ColumnGraph) -> None:
    """The rows of every dataset the graph names, and its fields' types from their schemas."""
    named = {dataset_id for dataset_id, _ in graph.fields}
    named.update(edge.in_dataset_id for inputs in graph.inputs.values() for edge in inputs)
    graph.datasets = reads.datasets_by_id(connection, named)
    for dataset_id, names in _by_dataset(graph.fields).items():
        types = _schema_types(connection, dataset_id)
        for name in names:
            graph.types[(dataset_id, name)] = types.get(name)


def _schema_types(connection: Connection, dataset_id: int) -> dict[str, str | None]:
    version = reads.current_schema(connection, dataset_id)
    if version is None:
        return {}
    return {
        str(item["name"]): item.get("type")
        for item in version.fields
        if isinstance(item, dict) and item.get("name")
    }
