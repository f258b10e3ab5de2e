"""The shim's spool: every event on disk before it is sent, delivered once, in order.

Unit tests drive `Spool` with a fake `send`; the end-to-end tests run `pipewarden run` with
the collector down, then `pipewarden replay` against a real collector.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collector.shim.spool import Delivery, Spool
from tests.shim_helpers import (
    Collector,
    by_type,
    closed_url,
    pipewarden,
    run_args,
    shim_env,
    spooled,
    unique_job,
)

# --- the spool alone, with a fake `send` ------------------------------------------------


def _event(number: int) -> dict[str, Any]:
    return {"eventType": "START", "run": {"runId": f"run-{number}"}, "number": number}


class FakeSend:
    """Answers each event with the outcome a test chose for it; records what it was sent."""

    def __init__(self, outcome: Callable[[dict[str, Any]], Delivery] | None = None) -> None:
        self.sent: list[int] = []
        self._outcome = outcome or (lambda _event: Delivery.ACKNOWLEDGED)

    def __call__(self, event: dict[str, Any]) -> Delivery:
        self.sent.append(int(event["number"]))
        return self._outcome(event)


def test_append_writes_one_json_file_per_event_and_leaves_no_temporary(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    path = spool.append(_event(1))
    assert path.parent == tmp_path / "spool"
    assert json.loads(path.read_bytes()) == _event(1)
    assert list((tmp_path / "spool").iterdir()) == [path]  # the temporary file was renamed
    assert spool.pending() == [path]


def test_pending_lists_events_in_the_order_they_were_appended(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    paths = [spool.append(_event(number)) for number in range(50)]
    assert spool.pending() == paths
    assert [json.loads(p.read_bytes())["number"] for p in spool.pending()] == list(range(50))


def test_half_written_temporary_files_and_other_files_are_not_events(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    (tmp_path / ".00000000000000000001-0000001-000000.json.tmp").write_bytes(b'{"half')
    (tmp_path / "notes.txt").write_text("not an event")
    kept = spool.append(_event(1))
    assert spool.pending() == [kept]
    send = FakeSend()
    report = spool.replay(send)
    assert (report.delivered, report.corrupt) == (1, 0)
    assert (tmp_path / ".00000000000000000001-0000001-000000.json.tmp").exists()


def test_a_missing_spool_directory_has_nothing_pending(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "never-made")
    assert spool.pending() == []
    report = spool.replay(FakeSend())
    assert (report.delivered, report.rejected, report.corrupt, report.remaining) == (0, 0, 0, 0)


def test_replay_sends_in_order_and_removes_what_was_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for number in range(5):
        spool.append(_event(number))
    send = FakeSend()
    report = spool.replay(send)
    assert send.sent == [0, 1, 2, 3, 4]
    assert (report.delivered, report.rejected, report.corrupt, report.remaining) == (5, 0, 0, 0)
    assert spool.pending() == []
    again = FakeSend()
    assert spool.replay(again).delivered == 0
    assert again.sent == []


def test_replay_stops_at_the_first_unreachable_and_keeps_the_rest(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    paths = [spool.append(_event(number)) for number in range(5)]
    send = FakeSend(lambda e: Delivery.UNREACHABLE if e["number"] == 2 else Delivery.ACKNOWLEDGED)
    report = spool.replay(send)
    assert send.sent == [0, 1, 2]  # no point hammering a collector that is down
    assert (report.delivered, report.rejected, report.corrupt, report.remaining) == (2, 0, 0, 3)
    assert spool.pending() == paths[2:]
    assert not (tmp_path / "rejected").exists()
    later = FakeSend()
    assert spool.replay(later).delivered == 3
    assert later.sent == [2, 3, 4]


def test_a_rejected_event_is_set_aside_and_the_rest_still_delivered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = Spool(tmp_path)
    paths = [spool.append(_event(number)) for number in range(3)]
    send = FakeSend(lambda e: Delivery.REJECTED if e["number"] == 1 else Delivery.ACKNOWLEDGED)
    report = spool.replay(send)
    assert send.sent == [0, 1, 2]
    assert (report.delivered, report.rejected, report.corrupt, report.remaining) == (2, 1, 0, 0)
    assert spool.pending() == []
    assert [p.name for p in (tmp_path / "rejected").iterdir()] == [paths[1].name]
    assert json.loads((tmp_path / "rejected" / paths[1].name).read_bytes()) == _event(1)
    assert paths[1].name in capsys.readouterr().err
    nothing = FakeSend()
    spool.replay(nothing)
    assert nothing.sent == [], "a rejected event must not be sent again"


@pytest.mark.parametrize(
    "content",
    [b"\x00\xff\xfe garbage \x80", b'{"eventType": "START", "run": {"ru', b"[1, 2, 3]", b""],
    ids=["garbage", "truncated", "not-an-object", "empty"],
)
def test_an_unreadable_file_is_moved_to_corrupt_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    spool = Spool(tmp_path)
    before = spool.append(_event(0))
    broken = tmp_path / f"{time.time_ns():020d}-0000001-999999.json"
    broken.write_bytes(content)
    after = spool.append(_event(2))
    assert spool.pending() == [before, broken, after]
    send = FakeSend()
    report = spool.replay(send)
    assert send.sent == [0, 2]
    assert (report.delivered, report.rejected, report.corrupt, report.remaining) == (2, 0, 1, 0)
    assert (tmp_path / "corrupt" / broken.name).read_bytes() == content
    assert spool.pending() == []
    err = capsys.readouterr().err
    assert broken.name in err
    assert "corrupt" in err


# --- end to end: the collector down, then `pipewarden replay` ---------------------------


def _run_with_collector_down(spool: Path, job: str, command: list[str]) -> float:
    """Run the shim with nothing listening at its URL; returns how long it took."""
    result = pipewarden(run_args(job, command), shim_env(closed_url(), spool))
    assert result.returncode == 3, result.err
    assert "unreachable" in result.err
    return result.seconds


def _bare_seconds(command: list[str], cwd: Path) -> float:
    started = time.monotonic()
    subprocess.run(command, check=False, timeout=30, cwd=cwd)
    return time.monotonic() - started


@pytest.mark.e2e
def test_collector_down_the_command_still_runs_and_its_events_are_spooled(
    tmp_path: Path, collector: Collector
) -> None:
    spool = tmp_path / "spool"
    job = unique_job("down")
    command = ["sh", "-c", "sleep 0.3; echo ran > ran.txt; exit 3"]
    bare = _bare_seconds(command, tmp_path)
    (tmp_path / "ran.txt").unlink()
    result = pipewarden(run_args(job, command), shim_env(closed_url(), spool), cwd=tmp_path)
    assert result.returncode == 3
    assert (tmp_path / "ran.txt").read_text() == "ran\n"
    assert result.seconds < bare + 1.5, f"shim took {result.seconds:.2f}s, bare {bare:.2f}s"
    assert "unreachable" in result.err
    files = spooled(spool)
    events = [json.loads(path.read_bytes()) for path in files]
    assert by_type(events) == ["START", "FAIL"]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"]
    assert events[1]["run"]["facets"]["pipewarden_shim"]["exitCode"] == 3
    assert collector.events(job) == []


@pytest.mark.e2e
def test_a_collector_that_never_answers_costs_one_timeout_at_most(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    job = unique_job("silent")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections complete in the backlog; nothing ever answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        command = ["sh", "-c", "exit 3"]
        bare = _bare_seconds(command, tmp_path)
        result = pipewarden(run_args(job, command), shim_env(url, spool))
    assert result.returncode == 3
    # the default client timeout is 1 s: paid once, not for the replay, gate, START and FAIL
    assert result.seconds < bare + 1.5 + 0.5, f"shim took {result.seconds:.2f}s"
    assert "no answer in time" in result.err
    assert by_type([json.loads(path.read_bytes()) for path in spooled(spool)]) == [
        "START",
        "FAIL",
    ]


@pytest.mark.e2e
def test_replay_delivers_the_spool_exactly_once(tmp_path: Path, collector: Collector) -> None:
    spool = tmp_path / "spool"
    job = unique_job("replay")
    _run_with_collector_down(spool, job, ["sh", "-c", "exit 3"])
    _run_with_collector_down(spool, job, ["sh", "-c", "exit 3"])
    written = [json.loads(path.read_bytes()) for path in spooled(spool)]
    assert by_type(written) == ["START", "FAIL", "START", "FAIL"]

    delivered_before = _spool_deliveries(collector)
    first = pipewarden(["replay"], shim_env(collector.url, spool))
    assert first.returncode == 0, first.err
    assert "delivered 4" in first.out
    assert _spool_deliveries(collector) == delivered_before + 4
    assert spooled(spool) == []

    second = pipewarden(["replay"], shim_env(collector.url, spool))
    assert second.returncode == 0, second.err
    assert "delivered 0" in second.out

    stored = collector.events(job)
    assert len(stored) == 4
    assert sorted(json.dumps(e, sort_keys=True) for e in stored) == sorted(
        json.dumps(e, sort_keys=True) for e in written
    )
    for event in written:
        run = collector.run(event["run"]["runId"])
        assert run["state"] == "FAILED"


def _spool_deliveries(collector: Collector) -> float:
    """`pipewarden_spool_deliveries_total{outcome="stored"}` as the collector exposes it."""
    with urllib.request.urlopen(collector.url + "/metrics", timeout=5) as response:
        families = text_string_to_metric_families(response.read().decode())
    (family,) = (f for f in families if f.name == "pipewarden_spool_deliveries")
    (stored,) = (s.value for s in family.samples if s.labels == {"outcome": "stored"})
    return stored


@pytest.mark.e2e
def test_an_event_replayed_again_after_a_lost_acknowledgement_is_stored_once(
    tmp_path: Path, collector: Collector
) -> None:
    spool = tmp_path / "spool"
    job = unique_job("lostack")
    _run_with_collector_down(spool, job, ["sh", "-c", "exit 3"])
    copy = tmp_path / "copy"
    shutil.copytree(spool, copy)
    assert pipewarden(["replay"], shim_env(collector.url, spool)).returncode == 0
    # the acknowledgements "never arrived": the same files are sent a second time
    for path in spooled(copy):
        shutil.copy(path, spool / path.name)
    again = pipewarden(["replay"], shim_env(collector.url, spool))
    assert again.returncode == 0, again.err
    assert spooled(spool) == []
    assert by_type(collector.events(job)) == ["START", "FAIL"]


@pytest.mark.e2e
def test_replay_with_the_collector_still_down_keeps_the_spool(
    tmp_path: Path, collector: Collector
) -> None:
    spool = tmp_path / "spool"
    job = unique_job("stilldown")
    _run_with_collector_down(spool, job, ["sh", "-c", "exit 3"])
    files = spooled(spool)
    result = pipewarden(["replay"], shim_env(closed_url(), spool))
    assert result.returncode == 3
    assert "remaining 2" in result.out
    assert spooled(spool) == files


@pytest.mark.e2e
def test_the_next_run_delivers_what_an_earlier_run_spooled_first(
    tmp_path: Path, collector: Collector
) -> None:
    spool = tmp_path / "spool"
    job = unique_job("nextrun")
    _run_with_collector_down(spool, job, ["sh", "-c", "exit 3"])
    earlier = [json.loads(path.read_bytes()) for path in spooled(spool)]
    result = pipewarden(run_args(job, ["true"]), shim_env(collector.url, spool))
    assert result.returncode == 0
    assert "delivered 2 spooled event(s)" in result.err
    assert spooled(spool) == []
    stored = collector.events(job)
    assert by_type(stored) == ["START", "FAIL", "START", "COMPLETE"]
    assert [e["run"]["runId"] for e in stored[:2]] == [e["run"]["runId"] for e in earlier]


def _corrupt_files(spool: Path) -> dict[str, bytes]:
    """A garbage file and a truncated event, named to sort before every real event."""
    spool.mkdir(parents=True, exist_ok=True)
    valid = json.dumps({"eventType": "START", "run": {"runId": "x"}, "job": {"name": "y"}})
    files = {
        "00000000000000000001-0000001-000000.json": b"\x00\xff\xfegarbage\x80\x81",
        "00000000000000000002-0000001-000000.json": valid[: len(valid) // 2].encode(),
    }
    for name, content in files.items():
        (spool / name).write_bytes(content)
    return files


@pytest.mark.e2e
def test_replay_moves_corrupt_files_aside_and_delivers_the_rest(
    tmp_path: Path, collector: Collector
) -> None:
    spool = tmp_path / "spool"
    job = unique_job("corrupt")
    _run_with_collector_down(spool, job, ["sh", "-c", "exit 3"])
    corrupt = _corrupt_files(spool)
    assert len(spooled(spool)) == 4
    result = pipewarden(["replay"], shim_env(collector.url, spool))
    assert result.returncode == 0, result.err
    assert "delivered 2" in result.out
    assert "corrupt 2" in result.out
    for name, content in corrupt.items():
        assert name in result.err
        assert (spool / "corrupt" / name).read_bytes() == content
    assert "Traceback" not in result.err
    assert spooled(spool) == []
    assert by_type(collector.events(job)) == ["START", "FAIL"]


@pytest.mark.e2e
def test_a_run_with_a_corrupt_spool_still_runs_and_reports(
    tmp_path: Path, collector: Collector
) -> None:
    spool = tmp_path / "spool"
    corrupt = _corrupt_files(spool)
    job = unique_job("corruptrun")
    result = pipewarden(
        run_args(job, ["sh", "-c", "echo ran; exit 5"]), shim_env(collector.url, spool)
    )
    assert result.returncode == 5
    assert result.out == "ran\n"
    assert "Traceback" not in result.err
    assert "internal error" not in result.err
    for name in corrupt:
        assert name in result.err
        assert (spool / "corrupt" / name).exists()
    assert spooled(spool) == []
    assert by_type(collector.events(job)) == ["START", "FAIL"]


@pytest.mark.e2e
def test_an_unwritable_spool_does_not_stop_the_job_or_its_events(
    tmp_path: Path, collector: Collector
) -> None:
    not_a_directory = tmp_path / "spool-is-a-file"
    not_a_directory.write_text("in the way")
    job = unique_job("nospool")
    result = pipewarden(
        run_args(job, ["sh", "-c", "exit 4"]), shim_env(collector.url, not_a_directory)
    )
    assert result.returncode == 4
    assert "cannot write the spool" in result.err
    assert by_type(collector.events(job)) == ["START", "FAIL"]
