"""What a gate judges and what it answers: plain frozen data, built by the collector.

The rules never see the store: the collector gathers, for one job about to run, the state
of its inputs and outputs into a GateContext, and the rules read only that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

Severity = Literal["block", "warn"]


@dataclass(frozen=True)
class SchemaChange:
    """A change between two schema versions of an input, since the job last ran well."""

    kind: str  # added | removed | type_changed | renamed
    column: str  # for a rename, the old name: the one readers use
    breaking: bool
    at: datetime
    old_type: str | None = None
    new_type: str | None = None
    renamed_to: str | None = None


@dataclass(frozen=True)
class Assertion:
    """One data-quality result from the latest run that checked the dataset."""

    assertion: str
    column: str  # '' for the whole dataset
    success: bool
    severity: str | None  # as the producer sent it: error, warn, …; None is error
    at: datetime


@dataclass(frozen=True)
class ProducerRun:
    """The latest run of a job that writes an input, and its last success."""

    namespace: str
    job: str
    state: str  # COMPLETED | FAILED | ABORTED | RUNNING | NEW
    at: datetime
    last_success: datetime | None


@dataclass(frozen=True)
class PiiFlow:
    """A PII-tagged column reaching an output column with no masking step on the way."""

    output_column: str
    source_dataset: str
    source_column: str


@dataclass(frozen=True)
class InputState:
    namespace: str
    name: str
    # Columns the job reads, directly or to join/filter on; None when no lineage says.
    columns_read: frozenset[str] | None = None
    schema_changes: tuple[SchemaChange, ...] = ()
    assertions: tuple[Assertion, ...] = ()
    producers: tuple[ProducerRun, ...] = ()
    last_modified: datetime | None = None
    freshness: timedelta | None = None
    open_anomalies: tuple[str, ...] = ()  # one sentence each

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class OutputState:
    namespace: str
    name: str
    public: bool = False
    has_lineage: bool = True
    pii_flows: tuple[PiiFlow, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class GateContext:
    """Everything the rules may know about a job about to run."""

    namespace: str
    job: str
    now: datetime
    owner: str | None = None
    block_on_upstream_failure: bool = False
    inputs: tuple[InputState, ...] = ()
    outputs: tuple[OutputState, ...] = ()


@dataclass(frozen=True)
class Reason:
    """Why a gate warns or blocks: which rule, which dataset and column, in one sentence."""

    rule: str
    severity: Severity
    message: str
    dataset: str | None = None
    column: str | None = None


@dataclass(frozen=True)
class Decision:
    decision: Literal["allow", "warn", "block"]
    reasons: tuple[Reason, ...] = field(default_factory=tuple)


class Rule(Protocol):
    """A gate rule: a pure function from what is known to the reasons it finds."""

    __name__: str

    def __call__(self, context: GateContext) -> list[Reason]: ...
