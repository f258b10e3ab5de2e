"""`pipewarden demo`: the story's incidents, gates, spool and metrics, read back from the API.

The embedded demo runs as a real `pipewarden demo` subprocess, serving until it is sent
Ctrl-C; the --url demo goes to a real `pipewarden serve` started with the demo policy.
"""

from __future__ import annotations

import re
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from collector.cli import main
from collector.demo import policy_path
from collector.demo.cast import CRM_SCHEDULE
from collector.demo.client import Api
from collector.demo.history import CRM_GRACE
from collector.demo.runner import free_namespace
from gates.policy import parse_policy
from tests.shim_helpers import (
    clean_env,
    collector_told_the_demo,
    finish,
    get_json,
    read_until,
    start_pipewarden,
)

README = Path(__file__).resolve().parent.parent / "README.md"
WAREHOUSE = "postgres://{namespace}-warehouse:5432"
# What the story tells, as a newcomer reads it: kind of finding -> the job it is about.
STORY_FINDINGS = {
    ("runtime", "stage_orders"),
    ("failure", "load_orders"),
    ("freshness", "crm_sync"),
    ("overrun", "crm_sync"),
    ("schema_drift", "stage_orders"),
    ("quality", "daily_revenue"),
    ("volume", "load_orders"),
}


@pytest.mark.e2e
def test_the_embedded_demo_tells_the_whole_story_and_serves_until_ctrl_c(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    process = start_pipewarden(["demo", "--port", "0", "--dir", str(directory)], clean_env())
    try:
        told = read_until(process.stdout, b"until Ctrl-C", timeout=240).decode()
        url = _serving_url(told)
        _assert_story(url, "demo", directory)
        kpis = get_json(url + "/api/v1/kpis?window=7d")
        numbers = ("taskSuccessRate", "meanTimeToDetectSeconds", "timeToDetectSchemaDriftSeconds")
        numbers += ("meanTimeToRecoverSeconds", "slaAdherence", "lineageCoverage")
        assert {name: kpis[name] for name in numbers if kpis[name] is None} == {}
        assert kpis["blockedRuns"] >= 2
        assert kpis["wouldBlockRuns"] >= 2
        samples = _sample_names(url)
        missing = [name for name in readme_metric_families() if not _has(samples, name)]
        assert missing == [], f"README metric families without a sample after the demo: {missing}"
        assert "!!" not in told, told
        for link in _links(told):  # last: asking a gate records one more decision
            with urllib.request.urlopen(link, timeout=30) as response:
                assert response.status == 200, link
    finally:
        process.send_signal(signal.SIGINT)
        rest, errors = finish(process, timeout=60)
    assert process.returncode == 0, errors.decode()
    assert b"Stopped." in rest
    assert (directory / "pipewarden.db").is_file()


@pytest.mark.e2e
def test_the_demo_tells_the_story_to_a_running_collector_again_and_again(tmp_path: Path) -> None:
    with collector_told_the_demo(tmp_path, policy_path()) as (collector, done):
        assert "(namespace demo)" in done.out
        _assert_story(collector.url, "demo", tmp_path / "files")
        # A second demo there would tell its story in a namespace of its own.
        assert free_namespace(Api(collector.url)) == "demo-2"


def test_the_demo_refuses_a_folder_that_holds_something(tmp_path: Path) -> None:
    (tmp_path / "pipewarden.db").write_text("an earlier demo")
    result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path), "--no-serve"])
    assert result.exit_code == 1
    assert f"{tmp_path} is not empty" in result.output
    assert (tmp_path / "pipewarden.db").read_text() == "an earlier demo"


def test_the_demo_says_when_its_port_is_taken(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            main, ["demo", "--port", str(port), "--dir", str(tmp_path / "d"), "--no-serve"]
        )
    assert result.exit_code == 1
    assert f"port {port} is taken" in result.output
    assert "--port 0" in result.output


def test_the_demo_policy_is_the_one_its_history_was_written_for() -> None:
    printed = CliRunner().invoke(main, ["demo", "--print-policy"])
    assert printed.exit_code == 0
    assert printed.output.strip() == str(policy_path())
    policy = parse_policy(policy_path().read_text(), str(policy_path()))
    for namespace in ("demo", "demo-2"):
        crm = policy.for_job(namespace, "crm_sync")
        assert (crm.schedule, crm.grace) == (CRM_SCHEDULE, CRM_GRACE)
        assert crm.sla is not None
        assert policy.for_job(namespace, "daily_revenue").mode == "enforce"
        assert policy.for_job(namespace, "share_top_customers").mode == "enforce"
        assert policy.for_job(namespace, "customer_orders").mode == "monitor"
        warehouse = WAREHOUSE.format(namespace=namespace)
        assert "email" in policy.for_dataset(warehouse, "crm.users").pii
        assert policy.for_dataset(warehouse, "public_share.top_customers").public
    assert policy.for_job("shop", "daily_revenue").mode == "monitor"


def readme_metric_families() -> list[str]:
    """Every metric the README's "Metrics and KPIs" section names, `…_x` spelled out.

    `…_x` after a name on its line changes that name's last parts; alone on its line (the
    KPI table), it is a `pipewarden_kpi_` gauge.
    """
    section = README.read_text().split("## Metrics and KPIs", 1)[1].split("\n## ", 1)[0]
    names: list[str] = []
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        previous = None
        for token in re.findall(r"`((?:pipewarden|…)_[a-z_*]+)", line):
            if "*" in token:
                continue
            if token.startswith("…_"):  # the KPI table's gauges: `…` is pipewarden_kpi
                token = _spelled_out(previous or "pipewarden_kpi_x", token[2:])
            names.append(token)
            previous = token
    assert len(names) > 20, names
    return list(dict.fromkeys(names))


def _spelled_out(previous: str, suffix: str) -> str:
    if previous.startswith("pipewarden_kpi_"):
        return "pipewarden_kpi_" + suffix
    parts = previous.split("_")
    return "_".join([*parts[: len(parts) - len(suffix.split("_"))], suffix])


def test_readme_metric_names_are_spelled_out_as_exposed() -> None:
    families = readme_metric_families()
    assert "pipewarden_job_duration_expected_high_seconds" in families
    assert "pipewarden_dataset_rows_written_expected_high" in families
    assert "pipewarden_kpi_mean_time_to_detect_seconds" in families
    assert "pipewarden_kpi_job_task_success_ratio" in families


# --- what both demos must have left in the collector ------------------------------------


def _assert_story(url: str, namespace: str, directory: Path) -> None:
    warehouse = WAREHOUSE.format(namespace=namespace)
    found = get_json(f"{url}/api/v1/findings?namespace={namespace}&limit=10000")["findings"]
    assert {(f["kind"], f["job"]) for f in found} == STORY_FINDINGS
    by_kind = {f["kind"]: f for f in found}
    assert by_kind["volume"]["dataset"] == {
        "namespace": "file",
        "name": str((directory / "landing/orders.csv").absolute()),
    }
    assert by_kind["volume"]["observed"] == 60
    assert by_kind["schema_drift"]["subject"] == "customer_id"
    assert by_kind["schema_drift"]["dataset"]["name"] == "staging.orders"
    assert by_kind["quality"]["dataset"] == {"namespace": warehouse, "name": "mart.daily_revenue"}
    assert sum(f["kind"] == "freshness" for f in found) >= 2

    # The dropped column stops the enforced consumer before it starts ...
    blocked = _runs(url, namespace, "daily_revenue")[0]
    assert blocked["state"] == "ABORTED"
    gate = blocked["facets"]["pipewarden_gate"]
    assert (gate["decision"], gate["mode"], gate["effective"]) == ("block", "enforce", "block")
    assert [(r["rule"], r["column"]) for r in gate["reasons"]] == [
        ("breaking_schema_change", "customer_id")
    ]
    assert "pipewarden_resources" not in blocked["facets"]  # the command never ran
    # ... and is a would-block for the monitored one, which runs.
    monitored = _runs(url, namespace, "customer_orders")[0]
    assert monitored["state"] == "COMPLETED"
    gate = monitored["facets"]["pipewarden_gate"]
    assert (gate["decision"], gate["mode"], gate["effective"]) == ("block", "monitor", "allow")
    assert gate["reasons"][0]["rule"] == "breaking_schema_change"

    # PII is caught before it reaches the public table: the job never ran.
    (leak,) = _runs(url, namespace, "share_top_customers")
    assert leak["state"] == "ABORTED"
    gate = leak["facets"]["pipewarden_gate"]
    assert (gate["decision"], gate["effective"]) == ("block", "block")
    (reason,) = gate["reasons"]
    assert (reason["rule"], reason["column"]) == ("pii_to_public", "email")
    assert reason["dataset"].endswith("public_share.top_customers")
    assert not (directory / "share/top_customers.csv").exists()

    # The failed pandera check reaches the consumer's gate as a failed_quality reason.
    table = get_json(
        f"{url}/api/v1/namespaces/{quote(warehouse, safe='')}/datasets/mart.daily_revenue"
    )
    failed = [a for a in table["facets"]["dataQualityAssertions"]["assertions"] if not a["success"]]
    assert [(a["column"], a["failingCount"]) for a in failed] == [("revenue", 1)]
    share_runs = _runs(url, namespace, "export_revenue_share")
    gated = [(run["state"], run["facets"].get("pipewarden_gate", {})) for run in share_runs]
    reasons = [
        (state, reason["rule"], gate.get("mode"))
        for state, gate in gated
        for reason in gate.get("reasons", [])
    ]
    assert ("COMPLETED", "failed_quality", "monitor") in reasons

    # The run made while the collector was down came in through the spool.
    spooled = share_runs[0]
    assert spooled["state"] == "COMPLETED"
    assert spooled["facets"]["pipewarden_gate"]["status"] == "unavailable"
    assert list((directory / "spool").glob("*.json")) == []

    # The retried extract: a failed try and its successful retry, linked as parent and child.
    first_try, retry = _runs(url, namespace, "load_orders")[1:3][::-1]
    assert (first_try["state"], retry["state"]) == ("FAILED", "COMPLETED")
    assert retry["facets"]["parent"]["run"]["runId"] == first_try["id"]

    decisions = {
        labels["decision"]
        for labels in _samples(url, "pipewarden_gate_decisions_total")
        if labels["namespace"] == namespace
    }
    assert decisions == {"allow", "warn", "block", "would_block"}
    active = _samples(url, "pipewarden_runs_active")
    assert {"namespace": namespace, "pipeline": "crm_sync", "state": "running"} in active


def _runs(url: str, namespace: str, job: str) -> list[dict[str, Any]]:
    """The job's runs, newest first."""
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}/jobs/{job}/runs?limit=100"
    runs: list[dict[str, Any]] = get_json(url + path)["runs"]
    return runs


def _serving_url(told: str) -> str:
    match = re.search(r"Serving (http://\S+) until Ctrl-C", told)
    assert match is not None, told
    return match[1]


def _links(told: str) -> list[str]:
    """The API links under "Where to look next"."""
    section = told.split("Where to look next", 1)[1].split("\n==", 1)[0]
    links = re.findall(r"^ +[a-zA-Z ]+ (http://\S+)$", section, re.MULTILINE)
    assert len(links) >= 6, section
    return links


def _metrics(url: str) -> Iterator[Any]:
    with urllib.request.urlopen(url + "/metrics", timeout=30) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        yield from family.samples


def _sample_names(url: str) -> set[str]:
    return {sample.name for sample in _metrics(url)}


def _samples(url: str, name: str) -> list[dict[str, str]]:
    return [dict(sample.labels) for sample in _metrics(url) if sample.name == name]


def _has(samples: set[str], family: str) -> bool:
    return family in samples or f"{family}_count" in samples
