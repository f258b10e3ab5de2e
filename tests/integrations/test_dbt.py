"""`dbt-ol build` on examples/dbt_shop reporting to a real `pipewarden serve`.

dbt-core, dbt-duckdb and openlineage-dbt run from a venv of their own (tests/integrations/
venvs.py), exactly as a user runs them: configured by `OPENLINEAGE_URL`, talking to the
collector over HTTP. The project builds into a DuckDB file in a temporary directory; its
`not_null` test on `customers.email` fails on purpose, so dbt skips `country_revenue`.
Everything is read back through the collector's HTTP API. Both of dbt-ol's modes are run:
the default (events sent once dbt is done) and `--consume-structured-logs` (a run per node).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.integrations.venvs import tool_venv
from tests.shim_helpers import Collector, clean_env, pipewarden, running_collector, shim_env

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dbt_shop"
NAMESPACE = "dbt_shop"  # OPENLINEAGE_NAMESPACE: where dbt-ol puts its jobs
PARENT_JOB = "dbt-run-dbt_shop"
STAGING, MARTS = "shop.main_staging", "shop.main_marts"
DBT_TIMEOUT_S = 300
JUDGED_TIMEOUT_S = 30


@dataclass(frozen=True)
class Build:
    collector: Collector
    returncode: int
    output: str
    datasets: str  # the dataset namespace: duckdb://<path of the DuckDB file>

    def get(self, path: str) -> Any:
        return self.collector.get(path)

    def job(self, name: str) -> dict[str, Any]:
        return self.collector.job(name, NAMESPACE)

    def dataset(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get(
            f"/api/v1/namespaces/{quote(self.datasets, safe='')}/datasets/{quote(name, safe='')}"
        )
        return found


def model_job(schema: str, model: str, kind: str = "run") -> str:
    """dbt-ol's job name for a model's build step (`run`) or its tests (`test`)."""
    return f"{schema}.dbt_shop.{model}.build.{kind}"


@contextlib.contextmanager
def dbt_ol_build(work: Path, *options: str) -> Iterator[Build]:
    """`dbt-ol build OPTIONS` of a fresh copy of the example against a fresh collector."""
    venv = tool_venv("dbt", EXAMPLE / "requirements.txt")
    project = work / "dbt_shop"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    database = work / "shop.duckdb"
    with running_collector(work) as collector:
        env = clean_env(
            PATH=f"{venv / 'bin'}:/usr/bin:/bin",
            OPENLINEAGE_URL=collector.url,
            OPENLINEAGE_NAMESPACE=NAMESPACE,
            DBT_SHOP_DB=str(database),
            DBT_PROFILES_DIR=str(project),
            DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        )
        done = subprocess.run(
            [str(venv / "bin" / "dbt-ol"), "build", *options],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=DBT_TIMEOUT_S,
            check=False,
        )
        yield Build(collector, done.returncode, done.stdout + done.stderr, f"duckdb://{database}")


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    """`dbt-ol build` as the README says: events sent once dbt is done."""
    with dbt_ol_build(tmp_path_factory.mktemp("dbt")) as done:
        yield done


@pytest.fixture(scope="module")
def streamed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    """`dbt-ol build --consume-structured-logs`: events sent as dbt goes, a run per node."""
    with dbt_ol_build(tmp_path_factory.mktemp("dbt-logs"), "--consume-structured-logs") as done:
        yield done


def wait_for(read: Callable[[], Any], check: Callable[[Any], bool]) -> Any:
    """Read until `check` holds: the evaluator judges finished runs just after they arrive."""
    deadline = time.monotonic() + JUDGED_TIMEOUT_S
    while True:
        value = read()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_dbt_ol_runs_the_build_and_reports_every_event(build: Build) -> None:
    # dbt exits 1 because of the failing test; dbt-ol passes that on after reporting
    assert build.returncode == 1, build.output
    assert "FAIL 1 not_null_customers_email" in build.output
    assert "SKIP relation main_marts.country_revenue" in build.output
    emitted = re.search(r"Emitted (\d+) OpenLineage events", build.output)
    assert emitted is not None, build.output
    # START and COMPLETE/FAIL for the dbt run, each model that ran and each model's tests
    assert int(emitted[1]) == 2 * (1 + 3 + 4) == 16
    assert build.get("/api/v1/events/lineage?limit=100")["totalCount"] == int(emitted[1])


def test_each_model_is_a_job_whose_run_is_a_child_of_the_dbt_run(build: Build) -> None:
    parent = build.job(PARENT_JOB)["latestRun"]
    assert parent["state"] == "FAILED"
    for schema, model in (
        (STAGING, "stg_customers"),
        (STAGING, "stg_orders"),
        (MARTS, "customers"),
    ):
        job = build.job(model_job(schema, model))
        run = job["latestRun"]
        assert run["state"] == "COMPLETED", (model, run)
        assert run["facets"]["parent"]["run"]["runId"] == parent["id"]
        assert run["facets"]["parent"]["job"] == {"namespace": NAMESPACE, "name": PARENT_JOB}
        assert job["facets"]["jobType"]["integration"] == "DBT"
        assert job["outputs"] == [{"namespace": build.datasets, "name": f"{schema}.{model}"}]
    mart = build.job(model_job(MARTS, "customers"))
    assert {d["name"] for d in mart["inputs"]} == {
        f"{STAGING}.stg_customers",
        f"{STAGING}.stg_orders",
    }
    assert "c.first_name || ' ' || c.last_name" in mart["facets"]["sql"]["query"]


def test_datasets_carry_the_schemas_dbt_knows(build: Build) -> None:
    customers = build.dataset(f"{MARTS}.customers")
    assert [(f["name"], f["type"]) for f in customers["fields"]] == [
        ("customer_id", "integer"),
        ("full_name", "varchar"),
        ("email", "varchar"),
        ("country", "varchar"),
        ("order_count", "bigint"),
        ("lifetime_value", "double"),
    ]
    assert customers["description"].startswith("One row per customer")
    assert customers["lastModifiedAt"] is not None


def test_full_name_is_traced_to_first_and_last_name_through_staging(build: Build) -> None:
    node = f"datasetField:{build.datasets}:{MARTS}.customers:full_name"
    graph = build.get(f"/api/v1/column-lineage?nodeId={quote(node, safe='')}&depth=20")["graph"]
    fields = {(n["data"]["dataset"], n["data"]["field"]): n["data"] for n in graph}
    full_name = fields[(f"{MARTS}.customers", "full_name")]
    assert {(i["dataset"], i["field"]) for i in full_name["inputFields"]} == {
        (f"{STAGING}.stg_customers", "first_name"),
        (f"{STAGING}.stg_customers", "last_name"),
    }
    # one more hop: the staging view copies them from the seed
    first = fields[(f"{STAGING}.stg_customers", "first_name")]
    assert [(i["dataset"], i["field"]) for i in first["inputFields"]] == [
        ("shop.main.raw_customers", "first_name")
    ]


def test_the_failing_dbt_test_is_a_quality_finding(build: Build) -> None:
    findings = wait_for(
        lambda: build.get(f"/api/v1/findings?kind=quality&namespace={NAMESPACE}")["findings"],
        lambda found: len(found) > 0,
    )
    assert [(f["job"], f["subject"], f["status"], f["severity"]) for f in findings] == [
        (model_job(MARTS, "customers", "test"), "email", "open", "critical")
    ]
    assert "not_null failed on column email" in findings[0]["message"]


def test_the_tests_of_a_skipped_model_are_skipped_not_failed(build: Build) -> None:
    skipped = build.job(model_job(MARTS, "country_revenue", "test"))["latestRun"]
    assert skipped["state"] == "ABORTED"
    tested = build.job(model_job(MARTS, "customers", "test"))["latestRun"]
    assert tested["state"] == "FAILED"
    # the skipped model sent no run of its own: dbt-ol reports only what ran
    response = httpx.get(
        build.collector.url
        + f"/api/v1/namespaces/{NAMESPACE}/jobs/{quote(model_job(MARTS, 'country_revenue'))}"
    )
    assert response.status_code == 404
    # its unevaluated `unique` test is no finding and no failure
    everything = wait_for(
        lambda: build.get(f"/api/v1/findings?namespace={NAMESPACE}")["findings"],
        lambda found: len(found) > 0,
    )
    assert {f["job"] for f in everything} == {model_job(MARTS, "customers", "test")}


def test_a_consumer_of_the_mart_is_warned_by_its_gate(build: Build, tmp_path: Path) -> None:
    answer = httpx.post(
        build.collector.url + f"/api/v1/gates/{NAMESPACE}/{model_job(MARTS, 'country_revenue')}",
        json={"inputs": [{"namespace": build.datasets, "name": f"{MARTS}.customers"}]},
    ).json()
    assert (answer["decision"], answer["mode"], answer["effective"]) == (
        "block",
        "monitor",
        "allow",
    )
    quality = [r for r in answer["reasons"] if r["rule"] == "failed_quality"]
    assert [(r["dataset"], r["column"], r["severity"]) for r in quality] == [
        (f"{build.datasets}/{MARTS}.customers", "email", "block")
    ]
    # a legacy job reading the mart through the shim runs, with the warning on stderr
    export = [
        "run", "--job", "export_customers", "--namespace", "legacy",
        "--dataset-namespace", build.datasets, "--input", f"{MARTS}.customers",
        "--", "true",
    ]  # fmt: skip
    result = pipewarden(export, shim_env(build.collector.url, tmp_path / "spool"))
    assert result.returncode == 0, result.err
    assert "quality check not_null failed on column email" in result.err
    assert "monitor" in result.err


# --- the structured-log mode: one run per node, skipped nodes as ABORT ---------------------


def test_structured_logs_report_a_skipped_model_as_an_aborted_run(streamed: Build) -> None:
    assert streamed.returncode == 1, streamed.output
    parent = streamed.job(PARENT_JOB)["latestRun"]
    skipped = streamed.job("model.dbt_shop.country_revenue")["latestRun"]
    assert skipped["state"] == "ABORTED"
    assert skipped["facets"]["parent"]["run"]["runId"] == parent["id"]
    assert streamed.job("model.dbt_shop.customers")["latestRun"]["state"] == "COMPLETED"


def test_structured_logs_checks_of_one_build_are_judged_together(streamed: Build) -> None:
    # each dbt test is its own run; the failing one is not the model's newest
    answer = httpx.post(
        streamed.collector.url + f"/api/v1/gates/{NAMESPACE}/model.dbt_shop.country_revenue",
        json={"inputs": [{"namespace": streamed.datasets, "name": f"{MARTS}.customers"}]},
    ).json()
    quality = [(r["rule"], r["column"]) for r in answer["reasons"] if r["rule"] == "failed_quality"]
    assert quality == [("failed_quality", "email")]
    findings = wait_for(
        lambda: streamed.get(f"/api/v1/findings?kind=quality&namespace={NAMESPACE}")["findings"],
        lambda found: len(found) > 0,
    )
    assert [(f["subject"], f["job"].split(".")[2]) for f in findings] == [
        ("email", "not_null_customers_email")
    ]
