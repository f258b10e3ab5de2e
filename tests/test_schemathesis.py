"""Schemathesis against `/openapi.json`: no request it makes is answered with a 5xx.

Every operation of the OpenAPI document is exercised against a real `pipewarden serve`
from a fixed seed and a bounded number of examples, so a run is repeatable and short:
with data that fits the schema on SQLite and on PostgreSQL (where what is stored meets the
most limits), and with data that breaks it on SQLite (refused by validation before any
store is reached; generating it is slow). A response that does not arrive whole fails too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error

from collector.api.app import create_app
from collector.settings import Settings
from tests import postgres
from tests.shim_helpers import Collector, running_collector

# The document the server serves, built without starting anything.
SCHEMA = schemathesis.openapi.from_dict(create_app(Settings()).openapi())
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}
SEED = 20240501


def _breakable(operation: APIOperation) -> bool:
    """Whether data breaking the schema exists: a plain string in the path takes anything."""
    if "requestBody" in operation.definition.raw:
        return True
    constraints = {"minimum", "maximum", "minLength", "maxLength", "pattern", "enum", "format"}
    return any(
        parameter["in"] != "path"
        or parameter["schema"].get("type") != "string"
        or constraints & set(parameter["schema"])
        for parameter in operation.definition.raw.get("parameters", [])
    )


BREAKABLE = {label: op for label, op in OPERATIONS.items() if _breakable(op)}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Collector]:
    """A real collector on each backend, shared by this module's tests."""
    database_url = None
    if request.param == "postgresql":
        database_url = request.getfixturevalue("postgres_server")
        postgres.reset_database(database_url)
    with running_collector(tmp_path_factory.mktemp("schemathesis"), database_url) as collector:
        yield collector


def test_the_document_describes_every_route() -> None:
    """The ingest routes read their own bodies, yet their bodies are described."""
    assert "POST /api/v1/lineage" in OPERATIONS
    assert "POST /api/v1/lineage/batch" in OPERATIONS
    assert "GET /api/v1/namespaces/{namespace}/datasets/{dataset}" in OPERATIONS
    body = SCHEMA.raw_schema["paths"]["/api/v1/lineage"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["anyOf"][0] == {
        "$ref": "#/components/schemas/RunEvent"
    }


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_valid_requests_get_no_server_error(served: Collector, operation: APIOperation) -> None:
    exercise(served, operation, GenerationMode.POSITIVE, examples=12)


@pytest.mark.parametrize("served", ["sqlite"], indirect=True)
@pytest.mark.parametrize("operation", BREAKABLE.values(), ids=BREAKABLE.keys())
def test_invalid_requests_get_no_server_error(served: Collector, operation: APIOperation) -> None:
    exercise(served, operation, GenerationMode.NEGATIVE, examples=6)


def test_only_plain_path_names_cannot_be_broken() -> None:
    assert set(OPERATIONS) - set(BREAKABLE) == {
        "GET /healthz",
        "GET /api/v1/namespaces/{namespace}",
        "GET /api/v1/namespaces/{namespace}/jobs/{job}",
        "GET /api/v1/namespaces/{namespace}/datasets/{dataset}",
        "GET /api/v1/jobs/runs/{run_id}",
        "GET /api/v1/gates/{namespace}/{job}",
    }


def exercise(
    served: Collector, operation: APIOperation, mode: GenerationMode, examples: int
) -> None:
    """`examples` requests to the operation, each answered whole and without a 5xx."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @seed(SEED)
    def call(case: Case) -> None:
        case.call_and_validate(base_url=served.url, checks=[not_a_server_error], timeout=30)

    try:
        call()
    except BaseException:
        print(served.log.read_text()[-20_000:])  # the server's side of the failure
        raise
