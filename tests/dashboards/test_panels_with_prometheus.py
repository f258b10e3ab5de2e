"""Every panel of every generated dashboard shows data, and the alerts fire, on a real stack.

A real `pipewarden serve` (the demo policy) is told the demo's story (`pipewarden demo
--url`); a real Prometheus scrapes it with the generated rules loaded; each panel's PromQL,
with Grafana's variables replaced as Grafana would, must return series through Prometheus's
HTTP API, and the alerts the story calls for must fire.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.demo import policy_path
from tests.dashboards.lint import expressions
from tests.prometheus import DEADLINE, poll, running_prometheus
from tests.shim_helpers import Collector, collector_told_the_demo

GENERATED = Path(__file__).parents[2] / "dashboards" / "generated"
# The scrape interval is 1 s: a window of 30 s holds enough samples for rate and increase.
RATE_INTERVAL = "30s"


def as_grafana_sends(expr: str) -> str:
    """A panel's PromQL with `$__rate_interval` set and every variable meaning "All"."""
    return re.sub(r"\$\{?\w+\}?", ".*", expr.replace("$__rate_interval", RATE_INTERVAL))


def panel_queries() -> list[tuple[str, str]]:
    """(dashboard / panel title, PromQL) of every committed dashboard."""
    found = []
    for path in sorted(GENERATED.glob("grafana/*.json")):
        dashboard = json.loads(path.read_text())
        for title, expr in expressions(dashboard):
            found.append((f"{dashboard['title']} / {title}", as_grafana_sends(expr)))
    return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Collector, str]]:
    directory = tmp_path_factory.mktemp("stack")
    with collector_told_the_demo(directory, policy_path()) as (collector, _):
        rules = [GENERATED / "prometheus" / "pipewarden.rules.yaml"]
        target = collector.url.removeprefix("http://")
        with running_prometheus(directory, target, rules) as prometheus:
            yield collector, prometheus


@pytest.mark.e2e
def test_every_panel_query_returns_data(stack: tuple[Collector, str]) -> None:
    _, prometheus = stack
    queries = panel_queries()
    assert len(queries) > 40
    deadline = time.monotonic() + DEADLINE
    empty = [title for title, expr in queries if not poll(prometheus, expr, deadline)]
    assert empty == [], f"panels without data: {empty}"


@pytest.mark.e2e
def test_the_story_fires_the_alerts_it_should(stack: tuple[Collector, str]) -> None:
    collector, prometheus = stack
    # A run of the enforced consumer blocked again while Prometheus watches.
    gate = urllib.request.Request(collector.url + "/api/v1/gates/demo/daily_revenue")
    with urllib.request.urlopen(gate, timeout=10) as answer:
        assert json.loads(answer.read())["effective"] == "block"
    expected = {
        ("PipewardenRunBlocked", "daily_revenue"),
        ("PipewardenMissedRun", "crm_sync"),
        ("PipewardenHighSeverityFinding", "load_orders"),
    }
    deadline = time.monotonic() + DEADLINE
    while True:
        firing = {
            (a["labels"]["alertname"], a["labels"].get("pipeline")) for a in _alerts(prometheus)
        }
        if expected <= firing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert expected <= firing
    assert ("PipewardenCollectorDown", None) not in firing
    # The failure streak of load_orders ended with a success: it is not failing.
    assert ("PipewardenJobFailing", "load_orders") not in firing


def _alerts(prometheus: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(prometheus + "/api/v1/alerts", timeout=5) as response:
        answer = json.loads(response.read())
    return [alert for alert in answer["data"]["alerts"] if alert["state"] == "firing"]
