"""Pydantic models of OpenLineage 2-0-2 events and of the facets pipewarden reads.

The models validate what the spec requires and type what the collector derives from;
everything else (unknown facets, unknown fields) is allowed through untouched, because
the raw event is stored as it came and read back as it came.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from itertools import islice
from typing import Annotated, Any
from uuid import UUID

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StrictBool,
    StrictInt,
    ValidationError,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S*$")  # as the OpenAPI document shows it
# `_URI` for pydantic-core's Rust regex engine, which checks it without a Python call per value:
# `_SPACE` is every character of Python's `\s` (`str.isspace()`, \x1C-\x1F included), and
# Python's `$` also matches before a final newline.
_SPACE = (
    r"\t\n\x0B\x0C\r\x1C-\x20\x85\xA0"
    r"\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"
)
_URI_IN_RUST = rf"^[A-Za-z][A-Za-z0-9+.\-]*:[^{_SPACE}]*\n?$"
_NOT_URI = "must be a URI with a scheme, such as https://…"


class _RequireUri:
    """A string matching `_URI`; one that does not gets the error a validator raising
    `ValueError(_NOT_URI)` would give, anything else the error `str` gives."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        matching = core_schema.str_schema(pattern=_URI_IN_RUST)
        problem = core_schema.custom_error_schema(
            matching, "value_error", custom_error_context={"error": _NOT_URI}
        )
        return core_schema.chain_schema([handler(source), problem])


def parse_datetime(value: object) -> datetime:
    """Accept an ISO-8601 date-time string only: no bare dates, no epoch numbers.

    A timestamp without an offset is read as UTC.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        if len(value) < 16 or value[10] not in "Tt ":
            raise ValueError("must be an ISO-8601 date-time such as 2024-05-01T02:00:00Z")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO-8601 date-time such as 2024-05-01T02:00:00Z") from None
    else:
        raise ValueError("must be an ISO-8601 date-time string")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-01:00 is past the last representable UTC time
        raise ValueError("must be a date-time between the years 1 and 9999 in UTC") from None


# Names are stored in indexed columns, and PostgreSQL refuses index entries much over 2.7 kB:
# two names of this size side by side (namespace and name) must still fit in one entry.
MAX_NAME_BYTES = 1024


def within_name_limit(value: str) -> str:
    """The name, when the store's indexes can hold it; ValueError saying its size otherwise."""
    if len(value) * 4 <= MAX_NAME_BYTES:  # no character takes more than 4 bytes
        return value
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        raise ValueError(f"must be at most {MAX_NAME_BYTES} bytes in UTF-8, not {size}")
    return value


def _upper_within(characters: int) -> AfterValidator:
    """A code stored upper-cased in a column of `characters` (upper-casing can lengthen it)."""

    def check(value: str) -> str:
        if len(value.upper()) > characters:
            raise ValueError(f"must be at most {characters} characters")
        return value

    return AfterValidator(check)


Uri = Annotated[str, _RequireUri(), Field(json_schema_extra={"pattern": _URI.pattern})]
DateTime = Annotated[datetime, BeforeValidator(parse_datetime)]
# A query parameter's time: parsed as FastAPI parses times (bare dates too), then made UTC.
QueryDateTime = Annotated[datetime, AfterValidator(parse_datetime)]
NonEmpty = Annotated[str, Field(min_length=1)]
Bounded = Annotated[str, AfterValidator(within_name_limit)]  # a name that may be empty
Name = Annotated[str, Field(min_length=1), AfterValidator(within_name_limit)]
MAX_COUNT = 2**63 - 1  # counts are stored as 64-bit signed integers


class _Open(BaseModel):
    """A spec object: extra fields are allowed and kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


MAX_FACETS = 1000


class _Facets(_Open):
    """The facets of a run, job or dataset: at most MAX_FACETS of them, checked before each is
    (a million bad facets would cost seconds of CPU to report)."""

    @model_validator(mode="before")
    @classmethod
    def _not_too_many(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) > MAX_FACETS:
            raise ValueError(f"at most {MAX_FACETS} facets, not {len(data)}")
        return data


def _none_given(facets: type[_Facets]) -> Any:
    """A facets field's default: one empty instance, shared (the models are frozen), instead of
    a new one validated for each event that leaves the field out."""
    empty = facets()
    return Field(default_factory=lambda: empty)


class Facet(_Open):
    """Every facet names its producer and its schema."""

    producer: Uri = Field(alias="_producer")
    schema_url: Uri = Field(alias="_schemaURL")
    deleted: StrictBool | None = Field(default=None, alias="_deleted")


# Numbers and booleans the collector reads are taken as JSON typed them: "10" is not a count.
# A list's validation stops at its first bad item (`fail_fast`): a million bad items would
# otherwise cost seconds of CPU to report.

# --- dataset facets -------------------------------------------------------------------


class SchemaField(_Open):
    name: Name
    type: str | None = None
    description: str | None = None
    ordinal_position: StrictInt | None = None
    fields: list[SchemaField] = Field(default_factory=list, fail_fast=True)


class SchemaDatasetFacet(Facet):
    fields: list[SchemaField] = Field(default_factory=list, fail_fast=True)


class Transformation(_Open):
    type: Annotated[NonEmpty, _upper_within(16)]
    subtype: Annotated[str, _upper_within(32)] | None = None
    description: str | None = None
    masking: StrictBool | None = None


class InputField(_Open):
    namespace: Name
    name: Name
    field: Name
    transformations: list[Transformation] = Field(default_factory=list, fail_fast=True)


class ColumnLineageField(_Open):
    inputFields: list[InputField] = Field(fail_fast=True)
    transformationDescription: str | None = None
    transformationType: str | None = None


class ColumnLineageDatasetFacet(Facet):
    fields: dict[Name, ColumnLineageField]
    dataset: list[InputField] = Field(default_factory=list, fail_fast=True)


class Assertion(_Open):
    assertion: Name
    success: StrictBool
    column: Bounded | None = None
    severity: Annotated[str, Field(max_length=16)] | None = None
    name: str | None = None
    description: str | None = None


class DataQualityAssertionsDatasetFacet(Facet):
    assertions: list[Assertion] = Field(fail_fast=True)


class DatasourceDatasetFacet(Facet):
    name: str | None = None
    uri: str | None = None


class DocumentationFacet(Facet):
    description: str


class DatasetFacets(_Facets):
    __pydantic_extra__: dict[str, Facet] = Field(init=False)

    schema_: SchemaDatasetFacet | None = Field(default=None, alias="schema")
    columnLineage: ColumnLineageDatasetFacet | None = None
    dataQualityAssertions: DataQualityAssertionsDatasetFacet | None = None
    dataSource: DatasourceDatasetFacet | None = None
    documentation: DocumentationFacet | None = None


class StatisticsFacet(Facet):
    rowCount: StrictInt | None = Field(default=None, ge=0, le=MAX_COUNT)
    size: StrictInt | None = Field(default=None, ge=0, le=MAX_COUNT)
    fileCount: StrictInt | None = Field(default=None, ge=0, le=MAX_COUNT)


class InputDatasetFacets(_Facets):
    __pydantic_extra__: dict[str, Facet] = Field(init=False)

    inputStatistics: StatisticsFacet | None = None
    dataQualityAssertions: DataQualityAssertionsDatasetFacet | None = None


class OutputDatasetFacets(_Facets):
    __pydantic_extra__: dict[str, Facet] = Field(init=False)

    outputStatistics: StatisticsFacet | None = None


class Dataset(_Open):
    namespace: Name
    name: Name
    facets: DatasetFacets = _none_given(DatasetFacets)


class InputDataset(Dataset):
    inputFacets: InputDatasetFacets = _none_given(InputDatasetFacets)


class OutputDataset(Dataset):
    outputFacets: OutputDatasetFacets = _none_given(OutputDatasetFacets)


# --- job facets -----------------------------------------------------------------------


class SQLJobFacet(Facet):
    query: str
    dialect: str | None = None


class JobTypeJobFacet(Facet):
    processingType: Annotated[NonEmpty, _upper_within(16)]
    integration: NonEmpty
    jobType: str | None = None


class SourceCodeLocationJobFacet(Facet):
    url: str


class JobFacets(_Facets):
    __pydantic_extra__: dict[str, Facet] = Field(init=False)

    sql: SQLJobFacet | None = None
    jobType: JobTypeJobFacet | None = None
    documentation: DocumentationFacet | None = None
    sourceCodeLocation: SourceCodeLocationJobFacet | None = None


class Job(_Open):
    namespace: Name
    name: Name
    facets: JobFacets = _none_given(JobFacets)


# --- run facets -----------------------------------------------------------------------


class ParentRun(_Open):
    runId: UUID


class ParentJob(_Open):
    namespace: Name
    name: Name


class ParentRunFacet(Facet):
    run: ParentRun
    job: ParentJob


class NominalTimeRunFacet(Facet):
    nominalStartTime: DateTime
    nominalEndTime: DateTime | None = None


class ErrorMessageRunFacet(Facet):
    message: str
    programmingLanguage: str
    stackTrace: str | None = None


class RunFacets(_Facets):
    __pydantic_extra__: dict[str, Facet] = Field(init=False)

    parent: ParentRunFacet | None = None
    nominalTime: NominalTimeRunFacet | None = None
    errorMessage: ErrorMessageRunFacet | None = None


class Run(_Open):
    runId: UUID
    facets: RunFacets = _none_given(RunFacets)


# --- events ---------------------------------------------------------------------------


class EventType(StrEnum):
    START = "START"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    ABORT = "ABORT"
    FAIL = "FAIL"
    OTHER = "OTHER"


class BaseEvent(_Open):
    eventTime: DateTime
    producer: Uri
    schemaURL: Uri


class RunEvent(BaseEvent):
    eventType: EventType | None = None
    run: Run
    job: Job
    inputs: list[InputDataset] = Field(default_factory=list, fail_fast=True)
    outputs: list[OutputDataset] = Field(default_factory=list, fail_fast=True)


def _schema_url_of(event_type: str) -> Any:
    """`schemaURL` as the OpenAPI document shows it for an event told apart by its fragment."""
    return Field(json_schema_extra={"pattern": _URI.pattern.removesuffix("$") + f"/{event_type}$"})


class DatasetEvent(BaseEvent):
    schemaURL: Annotated[Uri, _schema_url_of("DatasetEvent")]
    dataset: Dataset


class JobEvent(BaseEvent):
    schemaURL: Annotated[Uri, _schema_url_of("JobEvent")]
    job: Job
    inputs: list[InputDataset] = Field(default_factory=list, fail_fast=True)
    outputs: list[OutputDataset] = Field(default_factory=list, fail_fast=True)


Event = RunEvent | DatasetEvent | JobEvent

_EVENT_MODELS: dict[str, type[RunEvent] | type[DatasetEvent] | type[JobEvent]] = {
    "RunEvent": RunEvent,
    "DatasetEvent": DatasetEvent,
    "JobEvent": JobEvent,
}


class FieldProblem(BaseModel):
    """One reason an event was refused: where in the event, and what is wrong."""

    field: str
    problem: str


class InvalidEvent(Exception):
    """The event breaks the OpenLineage spec; `problems` says where and why."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.problem}" for p in problems))


def event_model_for(schema_url: object) -> type[RunEvent] | type[DatasetEvent] | type[JobEvent]:
    """The event type named by the fragment of `schemaURL`; RunEvent when it names none."""
    if isinstance(schema_url, str):
        fragment = schema_url.rsplit("/", 1)[-1]
        return _EVENT_MODELS.get(fragment, RunEvent)
    return RunEvent


def parse_event(document: Any) -> Event:
    """Validate one decoded JSON document as an OpenLineage event, or raise InvalidEvent."""
    return _parse(document, 0)[0]


def parse_canonical(document: Any) -> tuple[Event, bytes]:
    """`parse_event`, and the document's JSON with its keys sorted (what its content hash is
    taken of): the document is serialised once for both."""
    return _parse(document, orjson.OPT_SORT_KEYS)


def _parse(document: Any, option: int) -> tuple[Event, bytes]:
    if not isinstance(document, dict):
        raise InvalidEvent(
            [
                FieldProblem(
                    field="$", problem=f"an event is a JSON object, not {json_type(document)}"
                )
            ]
        )
    serialised = orjson.dumps(document, option=option)
    nul = _nul_problems(document) if b"\\u0000" in serialised else []
    model = event_model_for(document.get("schemaURL"))
    try:
        event = model.__pydantic_validator__.validate_python(document)  # model_validate, direct
    except ValidationError as error:
        raise InvalidEvent(nul + _problems(error)) from None
    if nul:
        raise InvalidEvent(nul)
    return event, serialised


_NUL_PROBLEM = "must not contain the NUL character (\\u0000), which the store cannot keep"


def refuse_nul(value: str) -> str:
    """A string that can be stored (for models other than events, whose NULs are found in
    `parse_event` wherever they are)."""
    if "\x00" in value:
        raise ValueError(_NUL_PROBLEM)
    return value


def _nul_problems(document: Any) -> list[FieldProblem]:
    """The first places, values or keys, holding a NUL character.

    NUL is valid JSON (`\\u0000`) but PostgreSQL text cannot hold it, so it is refused
    on every store alike.
    """
    return [FieldProblem(field=f, problem=p) for f, p in islice(_nul_places(document, ""), 10)]


def _nul_places(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        if "\x00" in value:
            yield path or "$", _NUL_PROBLEM
    elif isinstance(value, dict):
        for key, item in value.items():
            shown = key.replace("\x00", "\\u0000")
            child = f"{path}.{shown}" if path else shown
            if "\x00" in key:
                yield child, f"the key {_NUL_PROBLEM}"
            yield from _nul_places(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_places(item, f"{path}[{index}]")


# Problems named in one answer: a small event can break the spec a million times over, and
# the answer must not be a hundred times larger than what was sent.
MAX_PROBLEMS = 100


def _problems(error: ValidationError) -> list[FieldProblem]:
    items = error.errors(include_url=False, include_input=False)
    problems = [
        FieldProblem(
            field=_location(item["loc"]) or "$",
            problem=item["msg"].removeprefix("Value error, "),
        )
        for item in items[:MAX_PROBLEMS]
    ]
    if len(items) > MAX_PROBLEMS:
        unnamed = len(items) - MAX_PROBLEMS
        problems.append(FieldProblem(field="$", problem=f"and {unnamed} more problems"))
    return problems


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def json_type(value: object) -> str:
    """How a JSON value is called in an error message: "an array", "a number", …"""
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
