"""Tokens end to end: a real `pipewarden serve` with a token file, and the real shim.

The shim reports with a write token (`PIPEWARDEN_API_KEY`); with a wrong one the job still
runs and its events wait in the spool until `pipewarden replay` has the right one; a token
revoked with `pipewarden token revoke` is refused once the collector got SIGHUP.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.auth import create_token
from tests.shim_helpers import (
    NAMESPACE,
    Collector,
    by_type,
    clean_env,
    pipewarden,
    run_args,
    running_collector,
    shim_env,
    shim_facet,
    spooled,
    unique_job,
)

pytestmark = pytest.mark.e2e


def call(url: str, token: str | None = None) -> tuple[int, Any]:
    """GET `url` with the token as Bearer: the status and the JSON answer."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def stored_events(collector: Collector, token: str, job: str) -> list[dict[str, Any]]:
    status, answer = call(
        f"{collector.url}/api/v1/events/lineage?limit=10000&sortDirection=asc", token
    )
    assert status == 200, answer
    return [event for event in answer["events"] if event["job"]["name"] == job]


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Collector, Path, dict[str, str]]]:
    directory = tmp_path_factory.mktemp("secured")
    file = directory / "tokens.toml"
    made = {
        "shim": create_token(file, "shim", "write", [NAMESPACE])[0],
        "viewer": create_token(file, "viewer", "read", ["*"])[0],
    }
    with running_collector(directory, PIPEWARDEN_AUTH_FILE=str(file)) as running:
        yield running, file, made


def test_the_shim_reports_with_a_write_token(
    secured: tuple[Collector, Path, dict[str, str]], tmp_path: Path
) -> None:
    collector, _, made = secured
    assert "API tokens: 2 loaded from" in collector.log.read_text()
    job = unique_job("authed")
    env = shim_env(collector.url, tmp_path / "spool", PIPEWARDEN_API_KEY=made["shim"])
    result = pipewarden(run_args(job, ["true"]), env)
    assert result.returncode == 0, result.err
    assert "refused" not in result.err
    assert "unreachable" not in result.err
    assert "gate warn (monitor mode)" in result.err  # the gate answered the token's call
    stored = stored_events(collector, made["viewer"], job)
    assert by_type(stored) == ["START", "COMPLETE"]
    assert shim_facet(stored[0])  # the shim's own facet made it through
    assert stored[0]["run"]["facets"]["pipewarden_gate"]["status"] == "answered"
    assert spooled(tmp_path / "spool") == []
    status, answer = call(f"{collector.url}/api/v1/events/lineage")
    assert status == 401
    assert answer["code"] == 401


def test_with_a_wrong_token_the_job_runs_and_its_events_wait_for_the_right_one(
    secured: tuple[Collector, Path, dict[str, str]], tmp_path: Path
) -> None:
    collector, _, made = secured
    job = unique_job("wrongkey")
    spool = tmp_path / "spool"
    wrong = shim_env(collector.url, spool, OPENLINEAGE_API_KEY="pw_wrong")
    result = pipewarden(run_args(job, ["sh", "-c", "echo ran; exit 3"]), wrong)
    assert result.returncode == 3
    assert result.out == "ran\n"
    assert "HTTP 401, the collector refused the token" in result.err
    assert len(spooled(spool)) == 2
    assert not (spool / "rejected").exists()
    assert stored_events(collector, made["viewer"], job) == []
    right = shim_env(collector.url, spool, PIPEWARDEN_API_KEY=made["shim"])
    replayed = pipewarden(["replay"], right)
    assert replayed.returncode == 0, replayed.err
    assert "delivered 2" in replayed.out
    assert by_type(stored_events(collector, made["viewer"], job)) == ["START", "FAIL"]


def test_a_revoked_token_is_refused_after_sighup(
    secured: tuple[Collector, Path, dict[str, str]], tmp_path: Path
) -> None:
    collector, file, made = secured
    url = f"{collector.url}/api/v1/namespaces"
    assert call(url, made["shim"])[0] == 200
    revoked = pipewarden(["token", "revoke", "shim", "--file", str(file)], clean_env())
    assert revoked.returncode == 0, revoked.err
    os.kill(collector.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while call(url, made["shim"])[0] != 401:
        assert time.monotonic() < deadline, "the revoked token was still accepted"
        time.sleep(0.1)
    assert call(url, made["viewer"])[0] == 200


def test_without_a_token_file_serve_says_it_is_open_on_loopback(collector: Collector) -> None:
    log = collector.log.read_text()
    assert "API unauthenticated (no PIPEWARDEN_AUTH_FILE)" in log
    assert "listening on loopback (127.0.0.1) only" in log
