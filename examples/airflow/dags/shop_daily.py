"""A daily DAG that reports to pipewarden through Airflow's OpenLineage provider.

Nothing here names pipewarden: the provider sends each task's START/COMPLETE/FAIL to the
URL in `[openlineage] transport` (see airflow.cfg beside this folder, or the
AIRFLOW__OPENLINEAGE__TRANSPORT variable). The first task asks pipewarden's gate whether the
export may run: `pipewarden gate` exits 1 when an enforcing gate blocks, which fails the
task and so stops the export after it; any other answer, or a collector that cannot be
reached (exit 3), lets the export run, as the shim does.
"""

from __future__ import annotations

import csv
import os
from datetime import datetime
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG
from openlineage.client.event_v2 import Dataset

OUT = Path(os.environ.get("SHOP_OUT_DIR", "/tmp/shop_airflow"))
NAMESPACE = os.environ.get("AIRFLOW__OPENLINEAGE__NAMESPACE", "shop_airflow")
ORDERS = Dataset(namespace="postgres://db:5432", name="shop.public.orders")
EXPORT = Dataset(namespace="file", name=str(OUT / "paid_orders.csv"))


def export_paid_orders() -> None:
    """Write the paid orders as CSV (a stand-in for a real extract)."""
    OUT.mkdir(parents=True, exist_ok=True)
    rows = [("101", "1", "120.00"), ("102", "1", "80.50"), ("104", "3", "310.25")]
    with open(OUT / "paid_orders.csv", "w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(("order_id", "customer_id", "amount"))
        writer.writerows(rows)


with DAG(
    dag_id="shop_daily",
    schedule="0 2 * * *",
    start_date=datetime(2024, 5, 1),
    catchup=False,
    tags=["pipewarden-example"],
) as dag:
    gate = BashOperator(
        task_id="gate",
        bash_command=f"pipewarden gate {NAMESPACE} shop_daily.export_paid_orders || [ $? -ne 1 ]",
    )
    export = PythonOperator(
        task_id="export_paid_orders",
        python_callable=export_paid_orders,
        inlets=[ORDERS],
        outlets=[EXPORT],
    )
    gate >> export
