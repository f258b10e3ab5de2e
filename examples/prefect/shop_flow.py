"""A Prefect flow whose task runs a legacy step through `pipewarden run`.

    python shop_flow.py

The task runs the shim as a subprocess: pipewarden reports the step (START, COMPLETE or
FAIL, row counts, the pandera check) and asks its gate first. The shim passes the step's
exit code through, and exits 1 when an enforcing gate blocks, so the task fails exactly
when the step would have failed or was stopped. PIPEWARDEN_URL says where the collector is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task

LEGACY = Path(__file__).resolve().parent.parent / "legacy"
NAMESPACE = "shop_prefect"


def shim_command(out: Path) -> list[str]:
    """The legacy export, wrapped: declared input and output, the pandera check."""
    schema = LEGACY / "mailing_list.schema.yaml"
    return [
        "pipewarden", "run", "--job", "export_mailing_list", "--namespace", NAMESPACE,
        "--input", str(LEGACY / "customers.csv"), "--output", str(out),
        "--check", f"{out}={schema}@{out}",
        "--", sys.executable, str(LEGACY / "export_customers.py"),
        str(LEGACY / "customers.csv"), str(out),
    ]  # fmt: skip


@task
def export_mailing_list() -> str:
    out = Path(os.environ.get("SHOP_OUT_DIR", "/tmp/shop_prefect")) / "mailing_list.csv"
    done = subprocess.run(shim_command(out), capture_output=True, text=True, check=False)
    get_run_logger().info(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"the legacy export exited {done.returncode}: {done.stderr}")
    return str(out)


@flow(name="shop-flow")
def shop_flow() -> str:
    return export_mailing_list()


if __name__ == "__main__":
    shop_flow()
