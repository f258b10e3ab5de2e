"""The committed dashboards, provisioning files and rules: current with the code, and sound.

The committed copy in dashboards/generated/ must be what `pipewarden dashboards build`
writes now (regenerate with `pipewarden dashboards build --out dashboards/generated`). Every
dashboard passes the lint, every panel's PromQL passes `promtool check rules`, and every
series a panel reads is one the collector exposes.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from collector.api.app import create_app
from collector.settings import Settings
from dashboards import build
from tests.dashboards.lint import counter_problems, expressions, problems
from tests.prometheus import tool
from tests.settled import SettledClient

GENERATED = Path(__file__).parents[2] / "dashboards" / "generated"
# Links and bookmarks point at these: changing one breaks them, so it is a decision.
UIDS = {"pipewarden-overview", "pipewarden-job", "pipewarden-governance", "pipewarden-collector"}
REGENERATE = "run `pipewarden dashboards build --out dashboards/generated` and commit"


def committed_dashboards() -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(GENERATED.glob("grafana/*.json"))]


def test_committed_files_are_what_the_code_builds(tmp_path: Path) -> None:
    written = build.write(tmp_path)
    built = {path.relative_to(tmp_path).as_posix(): path.read_bytes() for path in written}
    committed = {
        path.relative_to(GENERATED).as_posix(): path.read_bytes()
        for path in GENERATED.rglob("*")
        if path.is_file()
    }
    assert sorted(committed) == sorted(built), REGENERATE
    stale = [name for name in built if committed[name] != built[name]]
    assert not stale, f"{stale} differ from the code: {REGENERATE}"


def test_building_twice_gives_the_same_bytes() -> None:
    assert build.files() == build.files()


def test_every_dashboard_passes_the_lint() -> None:
    dashboards = committed_dashboards()
    assert {d["uid"] for d in dashboards} == UIDS
    for dashboard in dashboards:
        assert problems(dashboard) == [], dashboard["uid"]
        assert dashboard["schemaVersion"] == 41  # Grafana 11.6
        path = GENERATED / "grafana" / f"{dashboard['uid']}.json"
        assert path.exists(), "each dashboard's file is named after its uid"


def test_the_job_variable_selects_the_pipeline_label() -> None:
    (job,) = [d for d in committed_dashboards() if d["uid"] == "pipewarden-job"]
    variables = {v["name"]: v for v in job["templating"]["list"]}
    assert variables["job"]["type"] == "query"
    assert re.fullmatch(
        r'label_values\(pipewarden_runs_total\{namespace=~"\$namespace"\}, pipeline\)',
        variables["job"]["query"],
    )
    for title, expr in expressions(job):
        if "$job" in expr:
            assert 'pipeline=~"$job"' in expr, title


@pytest.mark.parametrize(
    ("break_it", "complaint"),
    [
        (lambda d: d["templating"]["list"][0].update(label="DS"), '"Data source"'),
        (lambda d: d["templating"]["list"].pop(0), "`datasource` variable"),
        (lambda d: d.update(uid="x" * 41), "uid"),
        (lambda d: d["panels"][1].update(title=""), "no title"),
        (lambda d: d["panels"][1]["fieldConfig"]["defaults"].pop("unit"), "unit None"),
        (lambda d: d["panels"][1]["fieldConfig"]["defaults"].update(unit="seconds"), "unit"),
        (lambda d: d["panels"][1]["targets"][0].update(refId=""), "refIds"),
        (lambda d: d["panels"][1]["targets"][0].update(expr=""), "no expr"),
        (lambda d: d["panels"][1].update(datasource={"uid": "prometheus"}), "datasource"),
        (lambda d: d["panels"][2].update(id=d["panels"][1]["id"]), "panel ids"),
        (
            lambda d: d["panels"][1]["targets"][0].update(expr="sum(pipewarden_runs_total)"),
            "counter pipewarden_runs_total",
        ),
    ],
)
def test_the_lint_catches_each_broken_rule(break_it: Any, complaint: str) -> None:
    dashboard = copy.deepcopy(committed_dashboards()[0])
    assert problems(dashboard) == []
    break_it(dashboard)
    assert any(complaint in problem for problem in problems(dashboard)), problems(dashboard)


@pytest.mark.parametrize(
    ("expr", "ok"),
    [
        ("rate(x_total[$__rate_interval])", True),
        ('increase(x_total{a="b"}[$__rate_interval])', True),
        ("rate(x_bucket[$__rate_interval])", True),
        ("x_total", False),
        ("rate(x_total[5m])", False),
        ("max_over_time(x_total[$__rate_interval])", False),
        ("sum(x_count)", False),
        ("max_over_time(x[1h])", False),
    ],
)
def test_counters_only_inside_rate_over_the_rate_interval(expr: str, ok: bool) -> None:
    assert (counter_problems(expr) == []) is ok


def test_every_panel_expression_passes_promtool(tmp_path: Path) -> None:
    rules = [
        {"record": f"pipewarden:dashboard_panel_{i}", "expr": _offline(expr)}
        for i, (_, expr) in enumerate(
            e for dashboard in committed_dashboards() for e in expressions(dashboard)
        )
    ]
    assert len(rules) >= 40
    rule_file = tmp_path / "panels.rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    checked = subprocess.run(
        [tool("promtool"), "check", "rules", str(rule_file)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def test_the_rules_file_passes_promtool() -> None:
    rule_file = GENERATED / "prometheus" / "pipewarden.rules.yaml"
    checked = subprocess.run(
        [tool("promtool"), "check", "rules", str(rule_file)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.fixture
def exposed(tmp_path: Path) -> set[str]:
    """Every series name a fresh collector's /metrics declares."""
    policy = tmp_path / "pipewarden.toml"
    policy.write_text("")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'pipewarden.db'}",
        policy=str(policy),
        evaluator_interval=3600,
    )
    with SettledClient(create_app(settings)) as client:
        text = client.get("/metrics").text
    names = set()
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        names |= {family.name + suffix for suffix in suffixes.get(family.type, [""])}
    return names


def test_panels_read_only_series_the_collector_exposes(exposed: set[str]) -> None:
    assert "pipewarden_runs_total" in exposed
    used = {
        name
        for dashboard in committed_dashboards()
        for _, expr in expressions(dashboard)
        for name in re.findall(r"\bpipewarden_[a-z0-9_]+", expr)
    }
    assert used - exposed == set()
    assert len(used) >= 15


def test_provisioning_points_grafana_at_the_dashboards_and_prometheus() -> None:
    provider = yaml.safe_load((GENERATED / "provisioning/dashboards/pipewarden.yaml").read_text())
    (entry,) = provider["providers"]
    assert provider["apiVersion"] == 1
    assert (entry["type"], entry["folder"], entry["folderUid"]) == (
        "file",
        "pipewarden",
        "pipewarden",
    )
    assert entry["options"]["path"].startswith("/")
    sources = yaml.safe_load((GENERATED / "provisioning/datasources/prometheus.yaml").read_text())
    (source,) = sources["datasources"]
    assert (source["type"], source["uid"], source["url"]) == (
        "prometheus",
        "prometheus",
        "http://localhost:9090",
    )


def _offline(expr: str) -> str:
    """A panel's PromQL with Grafana's variables replaced, as Prometheus would receive it."""
    expr = expr.replace("$__rate_interval", "5m")
    return re.sub(r"\$\{?\w+\}?", ".*", expr)
