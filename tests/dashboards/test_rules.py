"""The Prometheus rules pass the `promtool test rules` cases in rules.test.yaml."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from dashboards.rules import rule_groups, rules_yaml
from tests.prometheus import tool

TESTS = Path(__file__).with_name("rules.test.yaml")


def _rules_beside_their_tests(directory: Path) -> Path:
    (directory / "pipewarden.rules.yaml").write_text(rules_yaml())
    return Path(shutil.copy(TESTS, directory / TESTS.name))


def test_the_rule_unit_tests_pass(tmp_path: Path) -> None:
    tests = _rules_beside_their_tests(tmp_path)
    result = subprocess.run(
        [tool("promtool"), "test", "rules", tests.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_and_a_severity() -> None:
    alerts = {
        rule["alert"]: rule
        for group in rule_groups()["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    tested = {
        case["alertname"]
        for test in yaml.safe_load(TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    }
    assert tested == set(alerts)
    assert {rule["labels"]["severity"] for rule in alerts.values()} <= {"warning", "critical"}
    assert all(rule["annotations"]["summary"] for rule in alerts.values())
