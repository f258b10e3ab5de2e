"""examples/airflow: `airflow dags test` with the OpenLineage provider reporting to pipewarden.

Airflow and its provider run from a venv of their own (tests/integrations/venvs.py); the
provider is configured with the `[openlineage]` section of examples/airflow/airflow.cfg.example
(its URL pointed at the test's collector). The DAG runs twice: first everything runs and is
reported; then, after a failed quality check lands on the export's input and with the
export enforced by the policy, the gate task fails and the export does not run.
"""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.events import facet, run_event
from tests.integrations.venvs import tool_venv
from tests.shim_helpers import Collector, clean_env, running_collector

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "airflow"
DAG = "shop_daily"
ORDERS = {"namespace": "postgres://db:5432", "name": "shop.public.orders"}
AIRFLOW_TIMEOUT_S = 300
POLICY = """
[[job]]
namespace = "shop_airflow"
name = "shop_daily.export_paid_orders"
mode = "enforce"
"""


@dataclass(frozen=True)
class DagRun:
    returncode: int
    output: str


@dataclass(frozen=True)
class Runs:
    collector: Collector
    namespace: str
    export: Path
    allowed: DagRun
    blocked: DagRun


def provider_config(collector_url: str) -> dict[str, str]:
    """The example's `[openlineage]` settings as Airflow variables, aimed at `collector_url`."""
    parser = configparser.ConfigParser()
    parser.read(EXAMPLE / "airflow.cfg.example")
    section = parser["openlineage"]
    transport = json.loads(section["transport"])
    assert transport == {
        "type": "http",
        "url": "http://127.0.0.1:5000",
        "endpoint": "api/v1/lineage",
    }, "the documented transport must point at pipewarden's lineage endpoint"
    transport["url"] = collector_url
    return {
        "AIRFLOW__OPENLINEAGE__NAMESPACE": section["namespace"],
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
    }


def airflow(venv: Path, env: dict[str, str], *args: str) -> DagRun:
    done = subprocess.run(
        [str(venv / "bin" / "airflow"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=AIRFLOW_TIMEOUT_S,
        check=False,
    )
    return DagRun(done.returncode, done.stdout + done.stderr)


def fail_quality_of_orders(collector: Collector) -> None:
    """A loader reports a failed check on the orders the export reads."""
    checks = facet(
        "DataQualityAssertionsDatasetFacet",
        assertions=[{"assertion": "not_null", "column": "amount", "success": False}],
    )
    orders = {**ORDERS, "facets": {"dataQualityAssertions": checks}}
    event = run_event("COMPLETE", namespace="loaders", job="load_orders", outputs=[orders])
    assert httpx.post(collector.url + "/api/v1/lineage", json=event).status_code == 201


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    venv = tool_venv("airflow", EXAMPLE / "requirements.txt")
    work = tmp_path_factory.mktemp("airflow")
    (work / "pipewarden.toml").write_text(POLICY)
    dags = work / "dags"
    shutil.copytree(EXAMPLE / "dags", dags)
    with running_collector(work) as collector:
        config = provider_config(collector.url)
        env = clean_env(
            # pipewarden (for the gate task) from this interpreter's venv, after Airflow's
            PATH=f"{venv / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin",
            AIRFLOW_HOME=str(work / "airflow-home"),
            AIRFLOW__CORE__DAGS_FOLDER=str(dags),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            PIPEWARDEN_URL=collector.url,
            SHOP_OUT_DIR=str(work / "out"),
            **config,
        )
        migrated = airflow(venv, env, "db", "migrate")
        assert migrated.returncode == 0, migrated.output
        allowed = airflow(venv, env, "dags", "test", DAG, "2024-05-01")
        export = work / "out" / "paid_orders.csv"
        ran = export.exists()
        export.unlink(missing_ok=True)
        fail_quality_of_orders(collector)
        blocked = airflow(venv, env, "dags", "test", DAG, "2024-05-02")
        assert ran, allowed.output
        yield Runs(collector, config["AIRFLOW__OPENLINEAGE__NAMESPACE"], export, allowed, blocked)


def test_every_task_is_reported_with_its_datasets_and_its_dag(runs: Runs) -> None:
    assert runs.allowed.returncode == 0, runs.allowed.output
    export = runs.collector.job(f"{DAG}.export_paid_orders", runs.namespace)
    first = runs.collector.get(
        f"/api/v1/namespaces/{runs.namespace}/jobs/{DAG}.export_paid_orders/runs"
    )["runs"]
    assert [run["state"] for run in first] == ["COMPLETED"]
    assert export["inputs"] == [ORDERS]
    assert export["outputs"] == [{"namespace": "file", "name": str(runs.export)}]
    assert first[0]["facets"]["parent"]["job"]["name"] == DAG
    assert export["facets"]["jobType"]["integration"] == "AIRFLOW"
    gate = runs.collector.get(f"/api/v1/namespaces/{runs.namespace}/jobs/{DAG}.gate/runs")["runs"]
    assert [run["state"] for run in gate] == ["FAILED", "COMPLETED"]  # newest first


def test_an_enforcing_block_fails_the_gate_task_and_the_export_does_not_run(runs: Runs) -> None:
    assert runs.blocked.returncode != 0
    assert "BLOCKED (enforce mode)" in runs.blocked.output
    assert "quality check not_null failed on column amount" in runs.blocked.output
    assert not runs.export.exists()
    export_runs = runs.collector.get(
        f"/api/v1/namespaces/{runs.namespace}/jobs/{DAG}.export_paid_orders/runs"
    )["runs"]
    assert len(export_runs) == 1, "the export ran although its gate blocked"
