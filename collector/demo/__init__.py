"""`pipewarden demo`: the whole story on an embedded collector (or a running one) in one go.

A small warehouse of seven jobs gets three weeks of history as OpenLineage events, then
today's runs: legacy scripts through the real shim (`pipewarden run`) and direct events from
"dbt" and "Airflow", with an incident of every kind pipewarden finds or stops. What ships
with it (package data in `assets/`): the demo's policy file, the legacy job scripts, their
SQL and a pandera schema.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def assets() -> Path:
    """The folder of the demo's policy, scripts, SQL and schema (installed with the package)."""
    return Path(str(resources.files("collector.demo") / "assets"))


def policy_path() -> Path:
    """The demo's policy file: `PIPEWARDEN_POLICY=<it> pipewarden serve` runs the demo's rules."""
    return assets() / "pipewarden.toml"


def jobs_dir() -> Path:
    """The legacy job scripts, their SQL and the pandera schema."""
    return assets() / "jobs"
