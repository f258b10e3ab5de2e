"""`pipewarden run` and the wrapped command: exit codes, output, signals, timeout.

The shim runs as a real subprocess against a real collector; the events it sent are read back
through the collector's API.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from tests.shim_helpers import (
    TAIL_LIMIT,
    Collector,
    by_type,
    finish,
    group_members,
    kill_group,
    pipewarden,
    read_until,
    run_args,
    shim_facet,
    start_pipewarden,
    unique_job,
)

pytestmark = pytest.mark.e2e


# --- exit codes -------------------------------------------------------------------------


def test_exit_code_0_is_passed_through_and_reported_complete(
    collector: Collector, env: dict[str, str]
) -> None:
    job = unique_job("exit0")
    result = pipewarden(run_args(job, ["sh", "-c", "exit 0"]), env)
    assert result.returncode == 0, result.err
    events = collector.events(job)
    assert by_type(events) == ["START", "COMPLETE"]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"]
    end = events[1]
    assert "errorMessage" not in end["run"]["facets"]
    assert shim_facet(end)["exitCode"] == 0
    assert collector.run(end["run"]["runId"])["state"] == "COMPLETED"


def test_exit_code_3_is_passed_through_and_reported_fail(
    collector: Collector, env: dict[str, str]
) -> None:
    job = unique_job("exit3")
    result = pipewarden(run_args(job, ["sh", "-c", "echo broken >&2; exit 3"]), env)
    assert result.returncode == 3
    events = collector.events(job)
    assert by_type(events) == ["START", "FAIL"]
    error = events[1]["run"]["facets"]["errorMessage"]
    assert error["message"] == "exit code 3"
    assert error["stackTrace"] == "broken\n"
    assert shim_facet(events[1])["exitCode"] == 3
    assert collector.run(events[1]["run"]["runId"])["state"] == "FAILED"


def test_child_killed_by_sigkill_exits_137_and_is_reported_fail(
    collector: Collector, env: dict[str, str]
) -> None:
    job = unique_job("exit137")
    result = pipewarden(run_args(job, ["sh", "-c", "kill -9 $$"]), env)
    assert result.returncode == 137
    events = collector.events(job)
    assert by_type(events) == ["START", "FAIL"]
    assert events[1]["run"]["facets"]["errorMessage"]["message"] == "exit code 137"
    assert shim_facet(events[1])["exitCode"] == 137


def test_child_killed_by_sigterm_exits_143_and_is_reported_fail(
    collector: Collector, env: dict[str, str]
) -> None:
    job = unique_job("exit143")
    result = pipewarden(run_args(job, ["sh", "-c", "kill -TERM $$"]), env)
    assert result.returncode == 143
    events = collector.events(job)
    # the child killed itself: nothing was forwarded by the shim, so FAIL rather than ABORT
    assert by_type(events) == ["START", "FAIL"]
    assert events[1]["run"]["facets"]["errorMessage"]["message"] == "exit code 143"


def test_command_not_found_exits_127_and_is_reported_fail(
    collector: Collector, env: dict[str, str]
) -> None:
    job = unique_job("notfound")
    result = pipewarden(run_args(job, ["no-such-command-pipewarden-test", "--x"]), env)
    assert result.returncode == 127
    assert "no-such-command-pipewarden-test" in result.err
    events = collector.events(job)
    assert by_type(events) == ["START", "FAIL"]
    message = events[1]["run"]["facets"]["errorMessage"]["message"]
    assert "cannot start" in message
    assert "no-such-command-pipewarden-test" in message
    assert shim_facet(events[1])["exitCode"] == 127


def test_command_that_is_not_executable_exits_126(
    collector: Collector, env: dict[str, str], tmp_path: Path
) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho never\n")
    script.chmod(0o644)
    job = unique_job("noexec")
    result = pipewarden(run_args(job, [str(script)]), env)
    assert result.returncode == 126
    assert b"never" not in result.stdout
    assert by_type(collector.events(job)) == ["START", "FAIL"]


# --- output -----------------------------------------------------------------------------


def test_output_passes_through_and_the_tails_are_the_last_8_kib(
    collector: Collector, env: dict[str, str]
) -> None:
    job = unique_job("tail")
    # 100 000 bytes on each stream, every line numbered, so the tail's position is checkable
    writer = (
        "import sys\n"
        "sys.stdout.write(''.join(f'out{i:07d}\\n' for i in range(10000)))\n"
        "sys.stderr.write(''.join(f'err{i:07d}\\n' for i in range(10000)))\n"
        "sys.exit(1)\n"
    )
    expected_out = "".join(f"out{i:07d}\n" for i in range(10000))
    expected_err = "".join(f"err{i:07d}\n" for i in range(10000))
    assert len(expected_out) == len(expected_err) == 110_000
    result = pipewarden(run_args(job, [sys.executable, "-c", writer]), env)
    assert result.returncode == 1
    assert result.out == expected_out  # the shim itself writes nothing on stdout
    assert expected_err in result.err
    events = collector.events(job)
    assert by_type(events) == ["START", "FAIL"]
    facet = shim_facet(events[1])
    for tail, full in ((facet["stdoutTail"], expected_out), (facet["stderrTail"], expected_err)):
        assert 4096 < len(tail.encode()) <= TAIL_LIMIT
        assert full.endswith(tail)
    assert facet["stdoutTail"].endswith("out0009999\n")
    trace = events[1]["run"]["facets"]["errorMessage"]["stackTrace"]
    assert 4096 < len(trace.encode()) <= TAIL_LIMIT
    assert expected_err.endswith(trace)


def test_output_is_passed_through_live(collector: Collector, env: dict[str, str]) -> None:
    job = unique_job("live")
    shim = start_pipewarden(
        run_args(job, ["sh", "-c", "echo first; echo first-err >&2; sleep 2; echo second"]), env
    )
    try:
        seen = read_until(shim.stdout, b"first\n", timeout=10)
        err_seen = read_until(shim.stderr, b"first-err\n", timeout=10)
        assert shim.poll() is None, "the first line arrived only once the command had ended"
        assert b"second" not in seen
    finally:
        out, err = finish(shim)
    assert shim.returncode == 0
    assert seen + out == b"first\nsecond\n"
    assert b"first-err" in err_seen + err
    assert by_type(collector.events(job)) == ["START", "COMPLETE"]


def test_stdin_is_passed_through(collector: Collector, env: dict[str, str]) -> None:
    job = unique_job("stdin")
    result = pipewarden(
        run_args(job, ["sh", "-c", "read line; echo got:$line"]), env, stdin=b"hello there\n"
    )
    assert result.returncode == 0
    assert result.out == "got:hello there\n"


def test_background_grandchild_holding_the_pipe_does_not_hang_the_shim(
    collector: Collector, env: dict[str, str]
) -> None:
    job = unique_job("grandchild")
    result = pipewarden(run_args(job, ["sh", "-c", "echo $$; sleep 30 &"]), env, timeout=20)
    group = int(result.out.split()[0])
    try:
        assert result.returncode == 0
        assert result.seconds < 6
        assert by_type(collector.events(job)) == ["START", "COMPLETE"]
    finally:
        kill_group(group)


# --- signals ----------------------------------------------------------------------------

# Short sleeps, not one `sleep 30`: a signal that reaches the shell between `echo ready` and
# the fork of a long sleep would wait for that sleep to end before the trap runs.
TRAPPING_CHILD = "trap 'echo trapped; exit 42' {name}; echo ready; while :; do sleep 0.1; done"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_to_the_shim_is_forwarded_to_the_child_and_its_trap_runs(
    collector: Collector, env: dict[str, str], signum: signal.Signals
) -> None:
    job = unique_job(f"forward-{signum.name.lower()}")
    name = signum.name.removeprefix("SIG")
    shim = start_pipewarden(run_args(job, ["sh", "-c", TRAPPING_CHILD.format(name=name)]), env)
    try:
        seen = read_until(shim.stdout, b"ready\n", timeout=15)
        sent = time.monotonic()
        shim.send_signal(signum)
    finally:
        out, _ = finish(shim)
    assert time.monotonic() - sent < 5, "the child did not stop on the forwarded signal"
    assert b"trapped" in seen + out
    assert shim.returncode == 42
    events = collector.events(job)
    assert by_type(events) == ["START", "ABORT"]
    end = events[1]
    assert shim_facet(end)["exitCode"] == 42
    assert "trapped" in shim_facet(end)["stdoutTail"]
    message = end["run"]["facets"]["errorMessage"]["message"]
    assert signum.name in message
    assert "42" in message


def test_child_without_a_trap_dies_of_the_forwarded_signal_and_the_shim_exits_143(
    collector: Collector, env: dict[str, str]
) -> None:
    job = unique_job("forward-untrapped")
    shim = start_pipewarden(run_args(job, ["sh", "-c", "echo ready; sleep 30"]), env)
    try:
        read_until(shim.stdout, b"ready\n", timeout=15)
        shim.send_signal(signal.SIGTERM)
    finally:
        finish(shim)
    assert shim.returncode == 128 + signal.SIGTERM
    assert by_type(collector.events(job)) == ["START", "ABORT"]


# --- timeout ----------------------------------------------------------------------------


def test_timeout_stops_the_command_exits_124_and_reports_fail(
    collector: Collector, env: dict[str, str]
) -> None:
    job = unique_job("timeout")
    result = pipewarden(run_args(job, ["sleep", "30"], "--timeout", "1"), env)
    assert result.returncode == 124
    # TERM was enough: the default 10 s grace before KILL was not needed
    assert result.seconds < 6
    events = collector.events(job)
    assert by_type(events) == ["START", "FAIL"]
    end = events[1]
    assert "timed out" in end["run"]["facets"]["errorMessage"]["message"]
    assert shim_facet(end)["exitCode"] == 124
    assert 0.9 < end["run"]["facets"]["pipewarden_resources"]["wallSeconds"] < 5


def test_child_ignoring_term_is_killed_after_the_grace(
    collector: Collector, env: dict[str, str]
) -> None:
    job = unique_job("killgrace")
    child = "trap '' TERM; echo $$; sleep 30"
    result = pipewarden(
        run_args(job, ["sh", "-c", child], "--timeout", "1", "--kill-grace", "1"), env, timeout=25
    )
    group = int(result.out.split()[0])
    try:
        assert result.returncode == 124
        assert 1.9 < result.seconds < 8  # timeout 1 s + grace 1 s, far below the sleep's 30 s
        assert group_members(group) == [], "something of the command survived the KILL"
        events = collector.events(job)
        assert by_type(events) == ["START", "FAIL"]
        assert "timed out" in events[1]["run"]["facets"]["errorMessage"]["message"]
    finally:
        kill_group(group)
