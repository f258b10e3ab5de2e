"""Walking the job ↔ dataset graph, upstream and downstream, a bounded number of job hops."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import Connection

from collector.store import reads


@dataclass
class Graph:
    """Jobs and datasets reached, and the edges between them as (job, dataset, direction)."""

    job_ids: set[int] = field(default_factory=set)
    dataset_ids: set[int] = field(default_factory=set)
    edges: set[tuple[int, int, str]] = field(default_factory=set)


def walk(
    connection: Connection,
    *,
    job_ids: Collection[int] = (),
    dataset_ids: Collection[int] = (),
    depth: int,
) -> Graph:
    """Everything connected to the start nodes within `depth` job hops.

    A hop goes from a job through a dataset it reads or writes to the jobs on the other
    side; each job reached brings all its datasets. One query per hop, all indexed.
    """
    graph = Graph(job_ids=set(job_ids), dataset_ids=set(dataset_ids))
    frontier_datasets = set(dataset_ids)
    frontier_jobs = set(job_ids)
    for _ in range(depth + 1):
        for link in reads.dataset_jobs(connection, frontier_datasets):
            graph.edges.add((link.job_id, link.dataset_id, link.direction))
            if link.job_id not in graph.job_ids:
                graph.job_ids.add(link.job_id)
                frontier_jobs.add(link.job_id)
        frontier_datasets = set()
        for link in reads.job_datasets(connection, frontier_jobs):
            graph.edges.add((link.job_id, link.dataset_id, link.direction))
            if link.dataset_id not in graph.dataset_ids:
                graph.dataset_ids.add(link.dataset_id)
                frontier_datasets.add(link.dataset_id)
        frontier_jobs = set()
        if not frontier_datasets:
            break
    return graph
