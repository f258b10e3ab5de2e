"""A Dagster job whose op runs a legacy step through `pipewarden run`.

    python shop_job.py                      # or: dagster job execute -f shop_job.py -j shop_job

The op runs the shim as a subprocess: pipewarden reports the step (START, COMPLETE or FAIL,
row counts, the pandera check) and asks its gate first. The shim passes the step's exit code
through, and exits 1 when an enforcing gate blocks, so the op fails exactly when the step
would have failed or was stopped. PIPEWARDEN_URL says where the collector is.
"""

# No `from __future__ import annotations`: Dagster reads the op's annotations at run time.
import os
import subprocess
import sys
from pathlib import Path

from dagster import OpExecutionContext, job, op

LEGACY = Path(__file__).resolve().parent.parent / "legacy"
NAMESPACE = "shop_dagster"


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


@op
def export_mailing_list(context: OpExecutionContext) -> str:
    out = Path(os.environ.get("SHOP_OUT_DIR", "/tmp/shop_dagster")) / "mailing_list.csv"
    done = subprocess.run(shim_command(out), capture_output=True, text=True, check=False)
    context.log.info(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"the legacy export exited {done.returncode}: {done.stderr}")
    return str(out)


@job
def shop_job() -> None:
    export_mailing_list()


if __name__ == "__main__":
    result = shop_job.execute_in_process()
    sys.exit(0 if result.success else 1)
