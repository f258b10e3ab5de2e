"""Who is in the demo: its jobs, their datasets and columns, and where their files go.

    load_orders (shim) ─► landing/orders.csv ─► stage_orders (dbt) ─► staging.orders
    staging.orders ─► daily_revenue (shim, enforced) ─► mart.daily_revenue
    staging.orders ─► customer_orders (shim) ─► mart.customer_orders
    mart.daily_revenue ─► export_revenue_share (shim) ─► public_share.revenue (public)
    crm.accounts ─► crm_sync (Airflow) ─► crm.users (PII: email, phone)
    crm.users, staging.orders ─► share_top_customers (shim, new) ─► public_share.top_customers

Every name derives from one job namespace (`demo`, or `demo-2`… on a collector that already
holds a demo), so a second run against the same collector tells its own story.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from collector.demo import jobs_dir
from collector.demo.events import Columns, Dataset, JobRef, Lineage

LANDING_COLUMNS: Columns = (
    ("order_id", "string"),
    ("customer_id", "string"),
    ("amount", "string"),
    ("currency", "string"),
    ("status", "string"),
    ("ordered_at", "string"),
)
STAGING_COLUMNS: Columns = (
    ("order_id", "bigint"),
    ("customer_id", "bigint"),
    ("amount", "numeric(12,2)"),
    ("status", "varchar"),
    ("ordered_at", "timestamp"),
)
DROPPED_COLUMN = "customer_id"  # what a developer drops from staging.orders today
ACCOUNT_COLUMNS: Columns = (
    ("id", "bigint"),
    ("email", "varchar"),
    ("full_name", "varchar"),
    ("phone", "varchar"),
    ("country", "char(2)"),
    ("created_at", "timestamp"),
)
USER_COLUMNS: Columns = (
    ("id", "bigint"),
    ("email", "varchar"),
    ("name", "varchar"),
    ("phone", "varchar"),
    ("country", "char(2)"),
    ("created_at", "timestamp"),
)
REVENUE_CHECKS = (
    ("day", "dtype('string[pyarrow]')"),
    ("day", r"str_matches('^\d{4}-\d{2}-\d{2}$')"),
    ("day", "not_nullable"),
    ("day", "field_uniqueness"),
    ("revenue", "dtype('float64')"),
    ("revenue", "greater_than_or_equal_to(0)"),
    ("revenue", "not_nullable"),
    ("orders", "dtype('int64')"),
    ("orders", "greater_than_or_equal_to(0)"),
    ("customers", "dtype('int64')"),
    ("customers", "greater_than_or_equal_to(0)"),
)
CRM_SCHEDULE = "0 */4 * * *"  # as the demo policy says for crm_sync


@dataclass(frozen=True)
class Cast:
    """The demo's names, from its job namespace, and its files, in `directory`."""

    namespace: str
    directory: Path

    @property
    def warehouse(self) -> str:
        return f"postgres://{self.namespace}-warehouse:5432"

    @property
    def crm_source(self) -> str:
        return f"mysql://{self.namespace}-crm:3306"

    def file(self, relative: str) -> Path:
        return (self.directory / relative).absolute()

    @property
    def landing_orders(self) -> Path:
        return self.file("landing/orders.csv")

    @property
    def spool(self) -> Path:
        return self.directory / "spool"

    # --- jobs -------------------------------------------------------------------------

    def shim_job(self, name: str, with_sql: bool = True) -> JobRef:
        sql = (jobs_dir() / f"{name}.sql").read_text() if with_sql else None
        return JobRef(self.namespace, name, "PIPEWARDEN", "COMMAND", sql)

    @property
    def stage_orders(self) -> JobRef:
        return JobRef(self.namespace, "stage_orders", "DBT", "MODEL")

    @property
    def crm_sync(self) -> JobRef:
        return JobRef(self.namespace, "crm_sync", "AIRFLOW", "TASK")

    # --- datasets ---------------------------------------------------------------------

    def table(
        self,
        name: str,
        columns: Columns | None = None,
        lineage: Lineage | None = None,
        rows: int | None = None,
    ) -> Dataset:
        return Dataset(self.warehouse, name, columns=columns, lineage=lineage, rows=rows)

    def landing(self, rows: int | None = None) -> Dataset:
        return Dataset("file", str(self.landing_orders), rows=rows, size=_csv_size(rows))

    def staging_orders(self, rows: int | None = None, dropped: bool = False) -> Dataset:
        columns = tuple(c for c in STAGING_COLUMNS if not (dropped and c[0] == DROPPED_COLUMN))
        source = ("file", str(self.landing_orders))
        lineage: Lineage = {
            name: [(*source, name, "IDENTITY" if kind != "timestamp" else "TRANSFORMATION", "")]
            for name, kind in columns
        }
        lineage["amount"] = [
            (*source, "amount", "TRANSFORMATION", "amount * fx_rate(currency)"),
            (*source, "currency", "TRANSFORMATION", "amount * fx_rate(currency)"),
        ]
        return self.table("staging.orders", columns=columns, lineage=lineage, rows=rows)

    def accounts(self) -> Dataset:
        return Dataset(self.crm_source, "crm.accounts", columns=ACCOUNT_COLUMNS)

    def users(self, rows: int | None = None) -> Dataset:
        source = (self.crm_source, "crm.accounts")
        lineage: Lineage = {
            name: [(*source, "full_name" if name == "name" else name, "IDENTITY", "")]
            for name, _ in USER_COLUMNS
        }
        return self.table("crm.users", columns=USER_COLUMNS, lineage=lineage, rows=rows)

    def daily_revenue(self, checked: bool = False) -> Dataset:
        assertions = tuple((column, check, True) for column, check in REVENUE_CHECKS)
        return Dataset(
            self.warehouse, "mart.daily_revenue", assertions=assertions if checked else ()
        )


def _csv_size(rows: int | None) -> int | None:
    return None if rows is None else 58 + rows * 61
