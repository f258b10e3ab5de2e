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
    side; each job reached brings all its datasets. One indexed query per hop: every job
    next to the datasets the last hop reached, with all its datasets.
    """
    graph = Graph(job_ids=set(job_ids), dataset_ids=set(dataset_ids))
    links = list(reads.job_links(connection, graph.job_ids))
    frontier = set(dataset_ids)
    for _ in range(depth + 1):
        links += reads.links_near(connection, frontier)
        frontier = set()
        for job_id, dataset_id, direction in links:
            graph.job_ids.add(job_id)
            graph.edges.add((job_id, dataset_id, direction))
            if dataset_id not in graph.dataset_ids:
                graph.dataset_ids.add(dataset_id)
                frontier.add(dataset_id)
        if not frontier:
            break
        links = []
    return graph
