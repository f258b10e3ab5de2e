"""examples/dagster and examples/prefect: a legacy step wrapped by the shim inside each.

Each framework runs from a venv of its own (tests/integrations/venvs.py), the example run as
its README says (`python shop_job.py`, `python shop_flow.py`), `pipewarden` on PATH from
this interpreter's venv. First run: the step runs and pipewarden has it. Then a failed
check lands on the step's input and the policy enforces the job: the shim exits 1 before
the step starts, so the op / task fails and the framework reports the run as failed.
"""

from __future__ import annotations

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

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CUSTOMERS = str(EXAMPLES / "legacy" / "customers.csv")
RUN_TIMEOUT_S = 300


@dataclass(frozen=True)
class Example:
    framework: str
    script: str
    namespace: str


EXAMPLE_RUNS = [
    Example("dagster", "shop_job.py", "shop_dagster"),
    Example("prefect", "shop_flow.py", "shop_prefect"),
]


@dataclass(frozen=True)
class Runs:
    example: Example
    collector: Collector
    out: Path
    first: subprocess.CompletedProcess[str]
    blocked: subprocess.CompletedProcess[str]
    wrote_after_block: bool


def fail_input_check(collector: Collector) -> None:
    """Someone reports the customers file broken."""
    checks = facet(
        "DataQualityAssertionsDatasetFacet",
        assertions=[{"assertion": "not_null", "column": "id", "success": False}],
    )
    source = {"namespace": "file", "name": CUSTOMERS, "facets": {"dataQualityAssertions": checks}}
    event = run_event("COMPLETE", namespace="crm", job="dump_customers", outputs=[source])
    assert httpx.post(collector.url + "/api/v1/lineage", json=event).status_code == 201


@pytest.fixture(scope="module", params=EXAMPLE_RUNS, ids=lambda example: example.framework)
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runs]:
    example: Example = request.param
    folder = EXAMPLES / example.framework
    venv = tool_venv(example.framework, folder / "requirements.txt")
    work = tmp_path_factory.mktemp(example.framework)
    (work / "pipewarden.toml").write_text(
        f'[[job]]\nnamespace = "{example.namespace}"\nname = "export_mailing_list"\n'
        'mode = "enforce"\n'
    )
    out = work / "out" / "mailing_list.csv"
    with running_collector(work) as collector:
        env = clean_env(
            PATH=f"{venv / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin",
            PIPEWARDEN_URL=collector.url,
            PIPEWARDEN_SPOOL_DIR=str(work / "spool"),
            SHOP_OUT_DIR=str(out.parent),
            DAGSTER_HOME=str(work / "dagster-home"),
            PREFECT_HOME=str(work / "prefect-home"),
            # Prefect starts a server of its own for the flow; its 20 s default was too short
            # once on a loaded CI machine ("Timed out ... ephemeral Prefect API server").
            PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        )
        (work / "dagster-home").mkdir()

        def run() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(venv / "bin" / "python"), str(folder / example.script)],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
                check=False,
            )

        first = run()
        out.unlink(missing_ok=True)
        fail_input_check(collector)
        blocked = run()
        yield Runs(example, collector, out, first, blocked, out.exists())


def test_the_wrapped_step_runs_and_is_reported(runs: Runs) -> None:
    assert runs.first.returncode == 0, runs.first.stdout + runs.first.stderr
    job = runs.collector.job("export_mailing_list", runs.example.namespace)
    assert job["inputs"] == [{"namespace": "file", "name": CUSTOMERS}]
    assert job["outputs"] == [{"namespace": "file", "name": str(runs.out)}]
    history = runs.collector.get(
        f"/api/v1/namespaces/{runs.example.namespace}/jobs/export_mailing_list/runs"
    )["runs"]
    first = history[-1]
    assert first["state"] == "COMPLETED"
    assert [v["rowCount"] for v in first["outputDatasetVersions"]] == [5]
    assert first["facets"]["pipewarden_shim"]["exitCode"] == 0


def test_an_enforcing_gate_fails_the_framework_run_before_the_step(runs: Runs) -> None:
    output = runs.blocked.stdout + runs.blocked.stderr
    assert runs.blocked.returncode != 0, output
    assert "quality check not_null failed on column id" in output
    assert not runs.wrote_after_block
    history = runs.collector.get(
        f"/api/v1/namespaces/{runs.example.namespace}/jobs/export_mailing_list/runs"
    )["runs"]
    assert [run["state"] for run in history] == ["ABORTED", "COMPLETED"]  # newest first
