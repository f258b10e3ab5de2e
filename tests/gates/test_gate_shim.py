"""The gate with real parts: `pipewarden serve` with a policy file, the shim, `pipewarden gate`.

A producer wrapped by the shim writes a CSV that fails its pandera check; its consumer's gate
then blocks (enforce) or only records the would-block (monitor).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.shim_helpers import (
    NAMESPACE,
    Collector,
    by_type,
    closed_url,
    pipewarden,
    run_args,
    running_collector,
    shim_env,
    unique_job,
)

pytestmark = pytest.mark.e2e

SCHEMA = """\
schema_type: dataframe
version: 0.35.0
columns:
  id:
    dtype: int64
    nullable: false
    checks:
      greater_than_or_equal_to: 0
  email:
    dtype: str
    nullable: false
coerce: false
strict: false
"""


@pytest.fixture(params=["monitor", "enforce"])
def collector(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Collector, str]]:
    mode = request.param
    (tmp_path / "pipewarden.toml").write_text(
        f'[defaults]\nmode = "{mode}"\n\n[[job]]\nname = "*"\nowner = "data-eng"\n'
    )
    with running_collector(tmp_path) as running:
        yield running, mode


def _produce_bad_users(collector: Collector, tmp_path: Path, users: Path) -> None:
    """The producer writes users.csv with a negative id and checks it with pandera."""
    schema = tmp_path / "users.schema.yaml"
    schema.write_text(SCHEMA)
    command = ["sh", "-c", f"printf 'id,email\\n1,a@x\\n-2,b@x\\n' > {users}"]
    produced = pipewarden(
        run_args(
            unique_job("load_users"),
            command,
            "--output",
            str(users),
            "--check",
            f"{users}={schema}@{users}",
        ),
        shim_env(collector.url, tmp_path / "spool"),
    )
    assert produced.returncode == 0, produced.err


def test_a_failed_pandera_check_via_the_shim_gates_the_consumer(
    collector: tuple[Collector, str], tmp_path: Path
) -> None:
    running, mode = collector
    users = tmp_path / "users.csv"
    _produce_bad_users(running, tmp_path, users)
    marker = tmp_path / "consumer-ran"
    consumer = unique_job("export_users")
    result = pipewarden(
        run_args(consumer, ["touch", str(marker)], "--input", str(users)),
        shim_env(running.url, tmp_path / "spool"),
    )
    assert "greater_than_or_equal_to(0) failed on column id" in result.err
    events = running.events(consumer)
    if mode == "enforce":
        assert result.returncode == 1
        assert not marker.exists()
        assert "the gate blocked job" in result.err
        assert by_type(events) == ["ABORT"]
        gate = events[0]["run"]["facets"]["pipewarden_gate"]
        assert (gate["decision"], gate["mode"], gate["effective"]) == ("block", "enforce", "block")
    else:
        assert result.returncode == 0
        assert marker.exists()
        assert by_type(events) == ["START", "COMPLETE"]
        gate = events[0]["run"]["facets"]["pipewarden_gate"]
        assert (gate["decision"], gate["mode"], gate["effective"]) == ("block", "monitor", "allow")


def test_pipewarden_gate_prints_the_decision_and_exits_by_it(
    collector: tuple[Collector, str], tmp_path: Path
) -> None:
    running, mode = collector
    users = tmp_path / "users.csv"
    _produce_bad_users(running, tmp_path, users)
    consumer = unique_job("export_users")
    ran = pipewarden(
        run_args(consumer, ["true"], "--input", str(users)),
        shim_env(running.url, tmp_path / "spool"),
    )
    assert ran.returncode == (1 if mode == "enforce" else 0)

    result = pipewarden(["gate", NAMESPACE, consumer], shim_env(running.url, tmp_path / "spool"))
    assert result.returncode == (1 if mode == "enforce" else 0)
    headline = result.out.splitlines()[0]
    expected = "BLOCKED (enforce mode)" if mode == "enforce" else "would block (monitor mode"
    assert headline.startswith(f"{NAMESPACE}/{consumer}: {expected}")
    assert "failed_quality" in result.out


def test_pipewarden_gate_exits_3_when_the_collector_is_unreachable(tmp_path: Path) -> None:
    result = pipewarden(["gate", NAMESPACE, "anything"], shim_env(closed_url(), tmp_path / "s"))
    assert result.returncode == 3
    assert "the gate could not be asked" in result.err


def test_sighup_reloads_the_policy_and_keeps_the_old_one_when_the_new_is_invalid(
    tmp_path: Path,
) -> None:
    policy = tmp_path / "pipewarden.toml"
    policy.write_text('[defaults]\nmode = "monitor"\n')
    with running_collector(tmp_path) as running:
        assert running.get(f"/api/v1/gates/{NAMESPACE}/job")["mode"] == "monitor"
        policy.write_text('[defaults]\nmode = "enforce"\n')
        os.kill(running.pid, signal.SIGHUP)
        _until(lambda: running.get(f"/api/v1/gates/{NAMESPACE}/job")["mode"] == "enforce")
        policy.write_text('[defaults]\nmode = "sometimes"\n')
        os.kill(running.pid, signal.SIGHUP)
        _until(lambda: "policy not reloaded" in running.log.read_text())
        assert running.get(f"/api/v1/gates/{NAMESPACE}/job")["mode"] == "enforce"
        assert "pipewarden.toml:2: [defaults] mode must be" in running.log.read_text()


def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)
