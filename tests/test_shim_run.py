"""What `pipewarden run` reports about a run: facets, datasets, checks, retries.

The shim runs as a real subprocess against a real collector; the events it sent are read back
through the collector's API (raw events, the job, the run).
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.shim_helpers import (
    NAMESPACE,
    Collector,
    by_type,
    finish,
    pipewarden,
    read_until,
    run_args,
    shim_env,
    shim_facet,
    start_pipewarden,
    unique_job,
)

pytestmark = pytest.mark.e2e


def test_a_run_is_a_start_and_a_complete_with_the_shim_and_resource_facets(
    collector: Collector, env: dict[str, str]
) -> None:
    job = unique_job("basic")
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    result = pipewarden(run_args(job, [sys.executable, "-c", burn]), env)
    assert result.returncode == 0, result.err
    start, end = collector.events(job)
    assert (start["eventType"], end["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == end["run"]["runId"]
    assert start["eventTime"] < end["eventTime"]
    assert end["job"] == start["job"]
    assert end["job"]["namespace"] == NAMESPACE
    assert end["job"]["facets"]["jobType"]["jobType"] == "COMMAND"
    shim = shim_facet(end)
    assert shim["command"] == [sys.executable, "-c", burn]
    assert shim["attempt"] == 1
    assert shim["exitCode"] == 0
    resources = end["run"]["facets"]["pipewarden_resources"]
    assert resources["cpuUserSeconds"] + resources["cpuSystemSeconds"] >= 0.25
    assert resources["wallSeconds"] >= 0.25
    assert resources["maxRssBytes"] > 1024 * 1024  # a Python interpreter, in bytes not KiB
    run = collector.run(end["run"]["runId"])
    assert run["state"] == "COMPLETED"
    assert collector.job(job)["latestRun"]["id"] == end["run"]["runId"]


def test_openlineage_url_is_used_when_pipewarden_url_is_not_set(
    collector: Collector, tmp_path: Path
) -> None:
    job = unique_job("olurl")
    env = shim_env(collector.url, tmp_path / "spool")
    del env["PIPEWARDEN_URL"]
    env["OPENLINEAGE_URL"] = collector.url
    result = pipewarden(run_args(job, ["true"]), env)
    assert result.returncode == 0
    assert by_type(collector.events(job)) == ["START", "COMPLETE"]


# --- retries ----------------------------------------------------------------------------

FAILS_TWICE = (
    'n=$(cat "$1" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$1"; '
    'echo "try $n"; [ "$n" -ge 3 ]'
)


def test_retries_rerun_a_failing_command_each_try_linked_to_the_first(
    collector: Collector, env: dict[str, str], tmp_path: Path
) -> None:
    job = unique_job("retries")
    counter = tmp_path / "tries"
    result = pipewarden(
        run_args(
            job,
            ["sh", "-c", FAILS_TWICE, "sh", str(counter)],
            "--retries",
            "2",
            "--retry-delay",
            "0.1",
        ),
        env,
    )
    assert result.returncode == 0, result.err
    assert counter.read_text() == "3\n"
    assert result.out == "try 1\ntry 2\ntry 3\n"
    assert result.err.count("retrying") == 2
    events = collector.events(job)
    assert by_type(events) == ["START", "FAIL", "START", "FAIL", "START", "COMPLETE"]
    run_ids = [event["run"]["runId"] for event in events]
    assert run_ids[0] == run_ids[1]
    assert run_ids[2] == run_ids[3]
    assert run_ids[4] == run_ids[5]
    first, second, third = run_ids[0], run_ids[2], run_ids[4]
    assert len({first, second, third}) == 3, "each try is its own run"
    assert "parent" not in events[0]["run"]["facets"]
    assert "parent" not in events[1]["run"]["facets"]
    for event in events[2:]:
        parent = event["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == first
        assert parent["job"] == {"namespace": NAMESPACE, "name": job}
    assert [shim_facet(e)["attempt"] for e in events] == [1, 1, 2, 2, 3, 3]
    states = [collector.run(run_id)["state"] for run_id in (first, second, third)]
    assert states == ["FAILED", "FAILED", "COMPLETED"]


def test_retries_exhausted_exit_with_the_last_tries_code(
    collector: Collector, env: dict[str, str]
) -> None:
    job = unique_job("exhausted")
    result = pipewarden(
        run_args(job, ["sh", "-c", "exit 5"], "--retries", "1", "--retry-delay", "0.1"), env
    )
    assert result.returncode == 5
    assert by_type(collector.events(job)) == ["START", "FAIL", "START", "FAIL"]


def test_retry_delay_doubles_for_each_further_try(
    collector: Collector, env: dict[str, str]
) -> None:
    job = unique_job("backoff")
    result = pipewarden(
        run_args(job, ["sh", "-c", "exit 1"], "--retries", "2", "--retry-delay", "0.5"), env
    )
    assert result.returncode == 1
    assert "retrying in 0.5s" in result.err
    assert "retrying in 1s" in result.err
    starts = [e for e in collector.events(job) if e["eventType"] == "START"]
    assert len(starts) == 3


def test_sigterm_during_the_retry_delay_stops_retrying(
    collector: Collector, env: dict[str, str]
) -> None:
    job = unique_job("retrystop")
    shim = start_pipewarden(
        run_args(job, ["sh", "-c", "exit 7"], "--retries", "3", "--retry-delay", "30"), env
    )
    try:
        read_until(shim.stderr, b"retrying in 30s", timeout=15)
        time.sleep(0.5)
        sent = time.monotonic()
        shim.send_signal(signal.SIGTERM)
    finally:
        finish(shim)
    assert time.monotonic() - sent < 5
    assert shim.returncode == 7
    assert by_type(collector.events(job)) == ["START", "FAIL"]


def test_a_run_stopped_by_a_forwarded_signal_is_not_retried(
    collector: Collector, env: dict[str, str]
) -> None:
    job = unique_job("noretryabort")
    shim = start_pipewarden(
        run_args(job, ["sh", "-c", "echo ready; sleep 30"], "--retries", "3", "--retry-delay", "0"),
        env,
    )
    try:
        read_until(shim.stdout, b"ready\n", timeout=15)
        shim.send_signal(signal.SIGTERM)
    finally:
        finish(shim)
    assert shim.returncode == 143
    assert by_type(collector.events(job)) == ["START", "ABORT"]


# --- datasets ---------------------------------------------------------------------------


def _output(event: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [item for item in event["outputs"] if item["name"] == name]
    assert len(matches) == 1, event["outputs"]
    return matches[0]


def test_a_local_csv_output_gets_its_row_count_and_size(
    collector: Collector, env: dict[str, str], tmp_path: Path
) -> None:
    job = unique_job("outstats")
    write = "printf 'id,amount\\n1,10\\n2,20\\n3,30\\n' > out/daily.csv"
    (tmp_path / "out").mkdir()
    result = pipewarden(
        run_args(
            job,
            ["sh", "-c", write],
            "--input",
            "public.orders",
            "--output",
            "./out/daily.csv",
            "--dataset-namespace",
            "postgres://db:5432",
        ),
        env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.err
    csv = tmp_path / "out" / "daily.csv"
    start, end = collector.events(job)
    assert start["inputs"] == [{"namespace": "postgres://db:5432", "name": "public.orders"}]
    assert start["outputs"] == [{"namespace": "file", "name": str(csv)}]
    output = _output(end, str(csv))
    assert output["namespace"] == "file"
    statistics = output["outputFacets"]["outputStatistics"]
    assert statistics["rowCount"] == 3
    assert statistics["size"] == csv.stat().st_size == 25
    run = collector.run(end["run"]["runId"])
    [written] = run["outputDatasetVersions"]
    assert written["datasetVersionId"]["name"] == str(csv)
    assert (written["rowCount"], written["bytes"]) == (3, 25)
    [read] = run["inputDatasetVersions"]
    assert read["datasetVersionId"]["name"] == "public.orders"


def test_a_local_parquet_output_gets_its_row_count_from_the_footer(
    collector: Collector, env: dict[str, str], tmp_path: Path
) -> None:
    job = unique_job("parquet")
    write = (
        "import pyarrow as pa, pyarrow.parquet as pq\n"
        "pq.write_table(pa.table({'id': list(range(1234))}), 'out.parquet')\n"
    )
    result = pipewarden(
        run_args(job, [sys.executable, "-c", write], "--output", "out.parquet"), env, cwd=tmp_path
    )
    assert result.returncode == 0, result.err
    parquet = tmp_path / "out.parquet"
    statistics = _output(collector.events(job)[1], str(parquet))["outputFacets"]["outputStatistics"]
    assert statistics["rowCount"] == 1234
    assert statistics["size"] == parquet.stat().st_size


def test_an_output_the_command_did_not_write_gets_no_statistics(
    collector: Collector, env: dict[str, str], tmp_path: Path
) -> None:
    job = unique_job("nooutput")
    result = pipewarden(run_args(job, ["true"], "--output", "./missing.csv"), env, cwd=tmp_path)
    assert result.returncode == 0
    end = collector.events(job)[1]
    output = _output(end, str(tmp_path / "missing.csv"))
    assert "outputStatistics" not in output.get("outputFacets", {})


def test_sql_files_are_sent_as_the_sql_job_facet(
    collector: Collector, env: dict[str, str], tmp_path: Path
) -> None:
    job = unique_job("sql")
    first = tmp_path / "load.sql"
    first.write_text("INSERT INTO daily SELECT * FROM orders;\n")
    second = tmp_path / "clean.sql"
    second.write_text("DELETE FROM staging\n")
    result = pipewarden(
        run_args(job, ["true"], "--sql", str(first), "--sql", str(second), "--dialect", "postgres"),
        env,
    )
    assert result.returncode == 0, result.err
    events = collector.events(job)
    assert by_type(events) == ["START", "COMPLETE"]
    for event in events:
        sql = event["job"]["facets"]["sql"]
        assert sql["query"] == "INSERT INTO daily SELECT * FROM orders\n;\nDELETE FROM staging"
        assert sql["dialect"] == "postgres"
    assert "INSERT INTO daily" in collector.job(job)["facets"]["sql"]["query"]


def test_an_unreadable_sql_file_is_reported_without_it(
    collector: Collector, env: dict[str, str], tmp_path: Path
) -> None:
    job = unique_job("sqlmissing")
    result = pipewarden(run_args(job, ["true"], "--sql", str(tmp_path / "absent.sql")), env)
    assert result.returncode == 0
    assert "absent.sql" in result.err
    events = collector.events(job)
    assert by_type(events) == ["START", "COMPLETE"]
    assert "sql" not in events[1]["job"]["facets"]


# --- quality checks ---------------------------------------------------------------------


def _write_schema(path: Path) -> None:
    import pandera.pandas as pa

    schema = pa.DataFrameSchema(
        {
            "id": pa.Column(int, unique=True),
            "amount": pa.Column(float, pa.Check.ge(0)),
            "status": pa.Column(str, pa.Check.isin(["new", "paid"])),
        }
    )
    schema.to_yaml(path)


def _assertion(assertions: list[dict[str, Any]], column: str, prefix: str) -> dict[str, Any]:
    found = [
        a for a in assertions if a.get("column") == column and a["assertion"].startswith(prefix)
    ]
    assert len(found) == 1, assertions
    return found[0]


def test_a_failing_pandera_check_is_reported_as_assertions_and_keeps_the_exit_code(
    collector: Collector, env: dict[str, str], tmp_path: Path
) -> None:
    schema = tmp_path / "orders.yaml"
    _write_schema(schema)
    data = tmp_path / "orders.csv"
    data.write_text("id,amount,status\n1,10.5,new\n2,-5.0,paid\n2,3.0,weird\n4,-1.0,new\n")
    job = unique_job("check")
    result = pipewarden(
        run_args(
            job,
            ["true"],
            "--output",
            "public.orders",
            "--check",
            f"public.orders={schema}@{data}",
        ),
        env,
    )
    assert result.returncode == 0, result.err
    events = collector.events(job)
    assert by_type(events) == ["START", "COMPLETE"]
    assert "dataQualityAssertions" not in str(events[0])  # checked after the run, not before
    output = _output(events[1], "public.orders")
    assertions = output["facets"]["dataQualityAssertions"]["assertions"]
    negative = _assertion(assertions, "amount", "greater_than_or_equal_to")
    assert (negative["success"], negative["failingCount"]) == (False, 2)
    status = _assertion(assertions, "status", "isin")
    assert (status["success"], status["failingCount"]) == (False, 1)
    unique = _assertion(assertions, "id", "field_uniqueness")
    assert (unique["success"], unique["failingCount"]) == (False, 2)
    dtype = _assertion(assertions, "amount", "dtype")
    assert (dtype["success"], dtype["failingCount"]) == (True, 0)
    assert all(a["success"] is False for a in assertions if a["failingCount"] > 0)
    dataset = collector.get(f"/api/v1/namespaces/{NAMESPACE}/datasets/public.orders")
    stored = dataset["facets"]["dataQualityAssertions"]["assertions"]
    assert any(a.get("column") == "amount" and a["success"] is False for a in stored)


def test_a_passing_pandera_check_reports_every_assertion_successful(
    collector: Collector, env: dict[str, str], tmp_path: Path
) -> None:
    schema = tmp_path / "orders.yaml"
    _write_schema(schema)
    data = tmp_path / "orders.csv"
    data.write_text("id,amount,status\n1,10.5,new\n2,5.0,paid\n")
    job = unique_job("checkok")
    result = pipewarden(
        run_args(
            job, ["sh", "-c", "exit 3"], "--input", str(data), "--check", f"{data}={schema}@{data}"
        ),
        env,
    )
    assert result.returncode == 3
    end = collector.events(job)[1]
    assert end["eventType"] == "FAIL"
    [checked] = end["inputs"]
    assert (checked["namespace"], checked["name"]) == ("file", str(data))
    assertions = checked["facets"]["dataQualityAssertions"]["assertions"]
    assert len(assertions) >= 3
    assert all(a["success"] is True and a["failingCount"] == 0 for a in assertions)


def test_a_check_whose_schema_cannot_be_read_is_a_failed_assertion_not_a_crash(
    collector: Collector, env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "orders.csv"
    data.write_text("id\n1\n")
    job = unique_job("checkbad")
    result = pipewarden(
        run_args(job, ["true"], "--check", f"public.orders={tmp_path / 'absent.yaml'}@{data}"), env
    )
    assert result.returncode == 0
    assert "internal error" not in result.err
    end = collector.events(job)[1]
    assert end["eventType"] == "COMPLETE"
    [assertion] = _output(end, "public.orders")["facets"]["dataQualityAssertions"]["assertions"]
    assert assertion["success"] is False
    assert "absent.yaml" in assertion["description"]
