"""Shared pieces of the dashboards: the data source, the variables and one-line panels.

Every panel gets what the dashboard lint asks for (a stable id, a title, a unit, the
`${datasource}` data source, targets with refIds), so a dashboard module only says what to
show. Expressions name raw series from collector/metrics.py; counters appear only inside
`rate`/`increase` over `$__rate_interval`.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DatasourceVariable,
    QueryVariable,
    Row,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["pipewarden"]
# A job's runs are the series that name every job: the variables list their labels.
RUNS = "pipewarden_runs_total"
# NS: the selector of the `namespace` variable every dashboard has.
NS = 'namespace=~"$namespace"'
# Where a panel sits: full width is 24 grid units.
QUARTER, HALF, FULL = 6, 12, 24


@dataclass(frozen=True)
class Query:
    """One PromQL expression and how its series are named in the legend."""

    expr: str
    legend: str = ""


class _Panel(Protocol):
    """The builder methods every panel kind shares."""

    def id(self, id_val: int) -> Self: ...
    def title(self, title: str) -> Self: ...
    def description(self, description: str) -> Self: ...
    def unit(self, unit: str) -> Self: ...
    def datasource(self, datasource: DataSourceRef) -> Self: ...
    def height(self, h: int) -> Self: ...
    def span(self, w: int) -> Self: ...
    def with_target(self, target: Builder[cogvariants.Dataquery]) -> Self: ...


P = TypeVar("P", bound=_Panel)


def dashboard(uid: str, title: str, description: str) -> Dashboard:
    """A dashboard with its stable uid and the `datasource` variable every dashboard has."""
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .time("now-24h", "now")
        .refresh("1m")
        .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )


def label_variable(name: str, label: str, query: str, *, include_all: bool) -> QueryVariable:
    """A variable listing a label's values (`label_values(...)`), refreshed with the range."""
    variable = (
        QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
    )
    if include_all:
        variable = variable.include_all(True).all_value(".*")
    return variable


def namespace_variable(*, include_all: bool) -> QueryVariable:
    """The `namespace` variable: the namespaces of the jobs that reported runs."""
    return label_variable(
        "namespace", "Namespace", f"label_values({RUNS}, namespace)", include_all=include_all
    )


def row(panel_id: int, title: str) -> Row:
    return Row(title).id(panel_id)


def stat_panel(
    panel_id: int, title: str, unit: str, *queries: Query, width: int = QUARTER, info: str = ""
) -> stat.Panel:
    """A big number: the latest value of each query, instant."""
    panel = stat.Panel().reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
    return _fill(panel, panel_id, title, unit, queries, width, 4, info, instant=True)


def series_panel(
    panel_id: int, title: str, unit: str, *queries: Query, width: int = HALF, info: str = ""
) -> timeseries.Panel:
    """A graph of each query over the dashboard's time range."""
    return _fill(timeseries.Panel(), panel_id, title, unit, queries, width, 8, info, instant=False)


def shade_band(panel: timeseries.Panel, low: str, high: str) -> timeseries.Panel:
    """Fills between the series named `low` and `high` (legends), drawing the expected band."""
    return panel.override_by_name(
        high,
        [
            DynamicConfigValue(id_val="custom.fillBelowTo", value=low),
            DynamicConfigValue(id_val="custom.fillOpacity", value=15),
            DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [6, 4]}),
        ],
    ).override_by_name(
        low,
        [DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [6, 4]})],
    )


def bars_panel(
    panel_id: int, title: str, unit: str, *queries: Query, width: int = HALF, info: str = ""
) -> bargauge.Panel:
    """One bar per series, the latest value, instant."""
    panel = bargauge.Panel().reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
    return _fill(panel, panel_id, title, unit, queries, width, 8, info, instant=True)


def table_panel(
    panel_id: int, title: str, unit: str, *queries: Query, width: int = HALF, info: str = ""
) -> table.Panel:
    """The latest value of each series as a row, its labels as columns (the time hidden)."""
    panel = table.Panel().with_transformation(
        DataTransformerConfig(id_val="organize", options={"excludeByName": {"Time": True}})
    )
    return _fill(panel, panel_id, title, unit, queries, width, 8, info, instant=True, rows=True)


def _fill(
    panel: P,
    panel_id: int,
    title: str,
    unit: str,
    queries: tuple[Query, ...],
    width: int,
    height: int,
    info: str,
    *,
    instant: bool,
    rows: bool = False,
) -> P:
    panel = (
        panel.id(panel_id).title(title).unit(unit).datasource(DATASOURCE).span(width).height(height)
    )
    if info:
        panel = panel.description(info)
    for ref_id, query in zip(string.ascii_uppercase, queries, strict=False):
        panel = panel.with_target(_target(ref_id, query, instant=instant, rows=rows))
    return panel


def _target(ref_id: str, query: Query, *, instant: bool, rows: bool) -> Dataquery:
    target = Dataquery().expr(query.expr).ref_id(ref_id).datasource(DATASOURCE)
    if query.legend:
        target = target.legend_format(query.legend)
    if instant:
        target = target.instant()
    if rows:
        target = target.format(PromQueryFormat.TABLE)
    return target
