"""The demo's closing report: findings, gate decisions, KPIs, and where to look next."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from collector.demo.client import Api
from collector.demo.story import GateSeen, Narrator


def findings(say: Narrator, found: list[dict[str, Any]], url: str, namespace: str) -> None:
    say.act("5. What pipewarden found")
    for finding in sorted(found, key=lambda f: (f["kind"], f["job"], str(f["eventTime"]))):
        say.detail(
            f"{finding['kind']:<13} {finding['job']:<21} {finding['severity']:<8} "
            f"{finding['message']}"
        )
    say.detail(f"→ {url}/api/v1/findings?namespace={quote(namespace, safe='')}")


def gates(say: Narrator, seen: list[GateSeen], url: str, namespace: str) -> None:
    say.step("Gate decisions, as each run recorded them")
    for gate in seen:
        shown = (
            "would_block" if gate.decision == "block" and gate.mode != "enforce" else gate.decision
        )
        rule = gate.reasons[0].split(" ", 1)[0] if gate.reasons else ""
        say.detail(f"{gate.job:<21} {shown:<12} {gate.mode:<8} {rule}")
    say.detail(f"→ {url}/api/v1/maturity?namespace={quote(namespace, safe='')} (readiness)")


def kpis(say: Narrator, api: Api) -> dict[str, Any]:
    values: dict[str, Any] = api.get("/api/v1/kpis?window=7d")
    say.step("KPIs over the last 7 days")
    rows = [
        ("task success rate", _ratio(values["taskSuccessRate"])),
        ("mean time to detect", _span(values["meanTimeToDetectSeconds"])),
        ("time to detect schema drift", _span(values["timeToDetectSchemaDriftSeconds"])),
        ("mean time to recover", _span(values["meanTimeToRecoverSeconds"])),
        ("SLA adherence", _ratio(values["slaAdherence"])),
        ("lineage coverage", _ratio(values["lineageCoverage"])),
        ("column lineage coverage", _ratio(values["columnLineageCoverage"])),
        ("blocked runs", f"{values['blockedRuns']} (and {values['wouldBlockRuns']} would-block)"),
    ]
    for name, value in rows:
        say.detail(f"{name:<28} {value}")
    say.detail("(the history loaded today counts as detected today: it weighs on time to detect)")
    say.detail(f"→ {api.url}/api/v1/kpis")
    return values


def links(say: Narrator, url: str, namespace: str, warehouse: str) -> None:
    say.step("Where to look next")
    ns = quote(namespace, safe="")
    field = quote(f"datasetField:{warehouse}:public_share.revenue:revenue", safe="")
    rows = [
        ("runs of a job", f"{url}/api/v1/namespaces/{ns}/jobs/daily_revenue/runs"),
        ("ask a gate now", f"{url}/api/v1/gates/{ns}/daily_revenue"),
        ("lineage", f"{url}/api/v1/lineage?nodeId={quote(f'job:{namespace}:daily_revenue')}"),
        ("column lineage", f"{url}/api/v1/column-lineage?nodeId={field}"),
        ("maturity", f"{url}/api/v1/maturity?namespace={ns}"),
        ("KPIs", f"{url}/api/v1/kpis"),
        ("metrics", f"{url}/metrics"),
        ("API docs", f"{url}/docs"),
    ]
    for name, link in rows:
        say.detail(f"{name:<16} {link}")


def monitoring(say: Narrator, url: str) -> None:
    say.act("6. Prometheus and Grafana")
    target = urlsplit(url).netloc
    say.text("Scrape the collector with Prometheus (prometheus.yml):\n")
    for line in (
        "scrape_configs:",
        "  - job_name: pipewarden",
        "    scrape_interval: 15s",
        "    static_configs:",
        f"      - targets: ['{target}']",
    ):
        say.detail(line)
    say.text(
        "\nthen `pipewarden dashboards build` writes the Grafana dashboards and provisioning\n"
        "files: point their Prometheus data source at that Prometheus, and every panel shows\n"
        "the demo's jobs."
    )


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"
