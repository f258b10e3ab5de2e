"""A dashboard lint after grafana/dashboard-linter's rules, on Grafana's JSON model.

`problems(dashboard)` lists what breaks a rule; an empty list means the dashboard passes.
"""

from __future__ import annotations

import re
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Grafana unit ids the dashboards may use.
UNITS = {"s", "ms", "dateTimeFromNow", "short", "none", "percentunit", "ops", "opm", "reqps"}
UID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
# A counter series: `_total` by convention, and a histogram's `_bucket`, `_count`, `_sum`.
COUNTER = re.compile(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*_(?:total|bucket|count|sum)\b")
COUNTER_CALL = re.compile(r"\b(?:rate|irate|increase)\(\s*$")
RATE_WINDOW = re.compile(r"^(?:\{[^}]*\})?\[\$__rate_interval\]\)")
RANGE = re.compile(r"\[([^\]]*)\]")


def problems(dashboard: dict[str, Any]) -> list[str]:
    """Every rule the dashboard breaks, each naming where."""
    found = _uid(dashboard) + _variables(dashboard)
    ids = [panel.get("id") for panel in dashboard.get("panels", [])]
    if len(set(ids)) != len(ids) or not all(isinstance(i, int) and i > 0 for i in ids):
        found.append(f"panel ids must be distinct positive integers: {ids}")
    for panel in dashboard.get("panels", []):
        if panel.get("type") != "row":
            found += [f"panel {panel.get('id')} {panel.get('title')!r}: {p}" for p in _panel(panel)]
    return found


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard.get("panels", [])
        for target in panel.get("targets", [])
    ]


def counter_problems(expr: str) -> list[str]:
    """Counters outside rate/irate/increase over $__rate_interval, and other range windows."""
    found = []
    for match in COUNTER.finditer(expr):
        before, after = expr[: match.start()], expr[match.end() :]
        if not (COUNTER_CALL.search(before) and RATE_WINDOW.match(after)):
            found.append(f"counter {match.group()} outside rate/increase over $__rate_interval")
    for window in RANGE.findall(expr):
        if window != "$__rate_interval":
            found.append(f"range [{window}] is not [$__rate_interval]")
    return found


def _uid(dashboard: dict[str, Any]) -> list[str]:
    uid = dashboard.get("uid")
    if not isinstance(uid, str) or not UID.fullmatch(uid):
        return [f"uid {uid!r} must be 1-40 characters of a-z, 0-9 and -"]
    return []


def _variables(dashboard: dict[str, Any]) -> list[str]:
    variables = dashboard.get("templating", {}).get("list", [])
    source = [v for v in variables if v.get("name") == "datasource"]
    found = []
    if (
        not source
        or source[0].get("type") != "datasource"
        or source[0].get("query") != "prometheus"
    ):
        found.append("needs a `datasource` variable of type datasource, query prometheus")
    elif source[0].get("label") != "Data source":
        found.append('the datasource variable must be labelled "Data source"')
    for variable in variables:
        if variable.get("type") == "query" and variable.get("datasource") != DATASOURCE:
            found.append(f"variable {variable.get('name')} must query ${{datasource}}")
    return found


def _panel(panel: dict[str, Any]) -> list[str]:
    found = []
    if not panel.get("title"):
        found.append("no title")
    unit = (panel.get("fieldConfig") or {}).get("defaults", {}).get("unit")
    if unit not in UNITS:
        found.append(f"unit {unit!r} is not one of {sorted(UNITS)}")
    if panel.get("datasource") != DATASOURCE:
        found.append(f"datasource {panel.get('datasource')} is not ${{datasource}}")
    targets = panel.get("targets") or []
    if not targets:
        found.append("no targets")
    ref_ids = [target.get("refId") for target in targets]
    if not all(ref_ids) or len(set(ref_ids)) != len(ref_ids):
        found.append(f"refIds must be set and distinct: {ref_ids}")
    for target in targets:
        if target.get("datasource") != DATASOURCE:
            found.append(f"target {target.get('refId')} datasource is not ${{datasource}}")
        expr = target.get("expr")
        if not expr:
            found.append(f"target {target.get('refId')} has no expr")
        else:
            found += counter_problems(expr)
    return found
