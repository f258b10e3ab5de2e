"""OpenLineage 2-0-2 events as the demo sends them directly (history, "dbt" and "Airflow")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from collector import __version__

PRODUCER = f"https://github.com/pipewarden/pipewarden/tree/{__version__}/collector/demo"
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
_FACETS = "https://openlineage.io/spec/facets"
SCHEMA_URLS = {
    "schema": f"{_FACETS}/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "columnLineage": f"{_FACETS}/1-2-0/ColumnLineageDatasetFacet.json"
    "#/$defs/ColumnLineageDatasetFacet",
    "outputStatistics": f"{_FACETS}/1-0-2/OutputStatisticsOutputDatasetFacet.json"
    "#/$defs/OutputStatisticsOutputDatasetFacet",
    "dataQualityAssertions": f"{_FACETS}/1-0-1/DataQualityAssertionsDatasetFacet.json"
    "#/$defs/DataQualityAssertionsDatasetFacet",
    "sql": f"{_FACETS}/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet",
    "jobType": f"{_FACETS}/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    "nominalTime": f"{_FACETS}/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet",
    "errorMessage": f"{_FACETS}/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
}

Columns = tuple[tuple[str, str], ...]
# output column <- (input namespace, input name, input column, subtype, description)
Lineage = dict[str, list[tuple[str, str, str, str, str]]]


def facet(key: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": SCHEMA_URLS[key], **fields}


def timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Dataset:
    """A dataset as a run used it: its schema, where its columns came from, what was written."""

    namespace: str
    name: str
    columns: Columns | None = None
    lineage: Lineage | None = None
    rows: int | None = None
    size: int | None = None
    assertions: tuple[tuple[str, str, bool], ...] = ()  # (column, assertion, success)

    def as_input(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "name": self.name, "facets": self._facets()}

    def as_output(self, finished: bool) -> dict[str, Any]:
        """The output; its schema, lineage, counts and checks only once the run has written it."""
        item: dict[str, Any] = {"namespace": self.namespace, "name": self.name}
        if not finished:
            return item
        item["facets"] = self._facets()
        if self.rows is not None:
            statistics = {"rowCount": self.rows, "size": self.size or self.rows * 64}
            item["outputFacets"] = {"outputStatistics": facet("outputStatistics", **statistics)}
        return item

    def _facets(self) -> dict[str, Any]:
        facets: dict[str, Any] = {}
        if self.columns is not None:
            fields = [{"name": name, "type": kind} for name, kind in self.columns]
            facets["schema"] = facet("schema", fields=fields)
        if self.lineage:
            facets["columnLineage"] = facet("columnLineage", fields=_lineage_fields(self.lineage))
        if self.assertions:
            facets["dataQualityAssertions"] = facet(
                "dataQualityAssertions",
                assertions=[
                    {"assertion": check, "column": column, "success": ok}
                    for column, check, ok in self.assertions
                ],
            )
        return facets


def _lineage_fields(lineage: Lineage) -> dict[str, Any]:
    return {
        column: {
            "inputFields": [
                {
                    "namespace": namespace,
                    "name": name,
                    "field": source,
                    "transformations": [
                        {
                            "type": "DIRECT",
                            "subtype": subtype,
                            "description": description,
                            "masking": False,
                        }
                    ],
                }
                for namespace, name, source, subtype, description in sources
            ]
        }
        for column, sources in lineage.items()
    }


@dataclass(frozen=True)
class JobRef:
    """A job and how it reports: `integration` is DBT, AIRFLOW or PIPEWARDEN (the shim)."""

    namespace: str
    name: str
    integration: str
    job_type: str
    sql: str | None = None

    def facets(self) -> dict[str, Any]:
        facets: dict[str, Any] = {
            "jobType": facet(
                "jobType",
                processingType="BATCH",
                integration=self.integration,
                jobType=self.job_type,
            )
        }
        if self.sql:
            facets["sql"] = facet("sql", query=self.sql, dialect="postgres")
        return facets


@dataclass(frozen=True)
class Run:
    """One run of a job, from its start to its end (None: still running)."""

    job: JobRef
    run_id: str
    started: datetime
    ended: datetime | None
    state: str = "COMPLETE"  # COMPLETE | FAIL
    inputs: tuple[Dataset, ...] = ()
    outputs: tuple[Dataset, ...] = ()
    nominal: datetime | None = None
    error: str | None = None
    run_facets: dict[str, Any] = field(default_factory=dict)

    def events(self) -> list[dict[str, Any]]:
        """START, then COMPLETE or FAIL when the run has ended."""
        found = [self._event("START", self.started, finished=False)]
        if self.ended is not None:
            found.append(self._event(self.state, self.ended, finished=True))
        return found

    def _event(self, kind: str, at: datetime, finished: bool) -> dict[str, Any]:
        run_facets = dict(self.run_facets)
        if self.nominal is not None:
            run_facets["nominalTime"] = facet(
                "nominalTime", nominalStartTime=timestamp(self.nominal)
            )
        if finished and self.error:
            run_facets["errorMessage"] = facet(
                "errorMessage", message=self.error, programmingLanguage="python"
            )
        return {
            "eventType": kind,
            "eventTime": timestamp(at),
            "producer": PRODUCER,
            "schemaURL": SPEC,
            "run": {"runId": self.run_id, "facets": run_facets},
            "job": {
                "namespace": self.job.namespace,
                "name": self.job.name,
                "facets": self.job.facets(),
            },
            "inputs": [dataset.as_input() for dataset in self.inputs],
            "outputs": [
                dataset.as_output(finished and self.state == "COMPLETE") for dataset in self.outputs
            ],
        }
