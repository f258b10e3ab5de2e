"""The cron-style jobs of examples/legacy, wrapped by `pipewarden run`, end to end.

The commands are the ones in examples/legacy/README.md: a shell script running `psql -f` on
the session's real PostgreSQL server, and a Python ETL writing a CSV checked by a pandera
schema. A real `pipewarden serve` receives what the shim reports; it is read back over HTTP.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.shim_helpers import Collector, closed_url, pipewarden, running_collector, shim_env

pytestmark = pytest.mark.e2e

LEGACY = Path(__file__).resolve().parents[2] / "examples" / "legacy"
NAMESPACE = "shop"
JUDGED_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    with running_collector(tmp_path_factory.mktemp("legacy")) as running:
        yield running


@pytest.fixture(scope="module")
def shop_database(postgres_server: str) -> tuple[str, str]:
    """The example's tables on the test PostgreSQL server: (libpq URL, dataset namespace)."""
    url = make_url(postgres_server).set(drivername="postgresql")
    libpq = url.render_as_string(hide_password=False)
    psql(libpq, "-f", str(LEGACY / "seed.sql"))
    return libpq, f"postgres://{url.host}:{url.port}"


def psql(url: str, *args: str) -> str:
    done = subprocess.run(
        ["psql", url, "--no-psqlrc", "-qAt", "-v", "ON_ERROR_STOP=1", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_for(read: Callable[[], Any], check: Callable[[Any], bool]) -> Any:
    deadline = time.monotonic() + JUDGED_TIMEOUT_S
    while True:
        value = read()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def daily_revenue(dataset_namespace: str) -> list[str]:
    """The crontab's psql line, for the shim."""
    return [
        "run", "--job", "daily_revenue", "--namespace", NAMESPACE,
        "--dataset-namespace", dataset_namespace,
        "--input", "raw.orders", "--output", "mart.daily_revenue",
        "--sql", str(LEGACY / "daily_revenue.sql"),
        "--", str(LEGACY / "daily_revenue.sh"),
    ]  # fmt: skip


def test_the_psql_job_runs_and_reports_its_sql_and_lineage(
    collector: Collector, shop_database: tuple[str, str], tmp_path: Path
) -> None:
    libpq, datasets = shop_database
    env = shim_env(collector.url, tmp_path / "spool", SHOP_DATABASE_URL=libpq)
    result = pipewarden(daily_revenue(datasets), env)
    assert result.returncode == 0, result.err
    assert psql(
        libpq, "-c", "SELECT day, orders, revenue FROM mart.daily_revenue ORDER BY day"
    ).splitlines() == ["2024-05-01|2|200.50", "2024-05-02|1|310.25", "2024-05-03|1|15.00"]

    job = collector.job("daily_revenue", NAMESPACE)
    assert job["latestRun"]["state"] == "COMPLETED"
    sql = (LEGACY / "daily_revenue.sql").read_text()
    assert job["facets"]["sql"]["query"] == sql.strip().removesuffix(";")
    assert job["inputs"] == [{"namespace": datasets, "name": "raw.orders"}]
    assert job["outputs"] == [{"namespace": datasets, "name": "mart.daily_revenue"}]
    node = quote(f"datasetField:{datasets}:mart.daily_revenue:revenue", safe="")
    graph = wait_for(
        lambda: httpx.get(f"{collector.url}/api/v1/column-lineage?nodeId={node}&depth=1"),
        lambda response: response.status_code == 200,
    ).json()["graph"]
    revenue = next(n for n in graph if n["id"].endswith(":mart.daily_revenue:revenue"))
    assert sorted(
        (i["dataset"], i["field"], t["type"], t["subtype"])
        for i in revenue["data"]["inputFields"]
        for t in i["transformations"]
    ) == [
        ("raw.orders", "amount", "DIRECT", "AGGREGATION"),
        ("raw.orders", "ordered_at", "INDIRECT", "GROUP_BY"),
        ("raw.orders", "status", "INDIRECT", "FILTER"),
    ]


def test_a_failing_psql_job_fails_with_its_exit_code_reported(
    collector: Collector, shop_database: tuple[str, str], tmp_path: Path
) -> None:
    _, datasets = shop_database
    unreachable = closed_url().replace("http://", "postgresql://postgres@") + "/shop"
    env = shim_env(collector.url, tmp_path / "spool", SHOP_DATABASE_URL=unreachable)
    result = pipewarden(daily_revenue(datasets), env)
    assert result.returncode == 2, result.err  # psql's own exit code for a lost connection
    assert "connection" in result.err
    run = collector.job("daily_revenue", NAMESPACE)["latestRun"]
    assert run["state"] == "FAILED"
    assert run["facets"]["pipewarden_shim"]["exitCode"] == 2
    assert "connection" in run["facets"]["pipewarden_shim"]["stderrTail"]


def test_the_python_export_reports_its_rows_and_its_failed_check(
    collector: Collector, tmp_path: Path
) -> None:
    out = tmp_path / "mailing_list.csv"
    schema = LEGACY / "mailing_list.schema.yaml"
    export = [
        "run", "--job", "export_mailing_list", "--namespace", NAMESPACE,
        "--input", str(LEGACY / "customers.csv"), "--output", str(out),
        "--check", f"{out}={schema}@{out}",
        "--", sys.executable, str(LEGACY / "export_customers.py"),
        str(LEGACY / "customers.csv"), str(out),
    ]  # fmt: skip
    result = pipewarden(export, shim_env(collector.url, tmp_path / "spool"))
    assert result.returncode == 0, result.err  # a failed check never fails the job
    assert "wrote 5 customers" in result.out
    assert out.read_text().splitlines()[1] == "1,Ada Lovelace,ada@example.com,GB"

    run = collector.job("export_mailing_list", NAMESPACE)["latestRun"]
    assert run["state"] == "COMPLETED"
    [written] = run["outputDatasetVersions"]
    assert (written["datasetVersionId"]["name"], written["rowCount"]) == (str(out), 5)
    findings = wait_for(
        lambda: collector.get("/api/v1/findings?kind=quality&job=export_mailing_list")["findings"],
        lambda found: len(found) > 0,
    )
    assert [(f["subject"], f["message"]) for f in findings] == [
        ("email", "quality check not_nullable failed on column email")
    ]
    # a job that reads the list is told by its gate
    answer = httpx.post(
        f"{collector.url}/api/v1/gates/{NAMESPACE}/send_mailing",
        json={"inputs": [{"namespace": "file", "name": str(out)}]},
    ).json()
    assert [(r["rule"], r["column"]) for r in answer["reasons"] if r["rule"] != "governance"] == [
        ("failed_quality", "email")
    ]
