"""Running the wrapped command: output passed through live, signals forwarded, time-boxed.

The child gets its own process group, so a forwarded signal or a timeout reaches everything
it started. Its resource use comes from `wait4`, which reports on exactly that child.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import BinaryIO

TAIL_BYTES = 8 * 1024
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class Finished:
    """How the command ended and what it used."""

    exit_code: int
    wall_seconds: float
    cpu_user_seconds: float = 0.0
    cpu_system_seconds: float = 0.0
    max_rss_bytes: int = 0
    stdout_tail: str = ""
    stderr_tail: str = ""
    forwarded_signal: int | None = None  # the first signal the shim passed on to the child
    timed_out: bool = False
    not_started: str | None = None  # why the command could not be started at all


@dataclass
class _Tail:
    """The last TAIL_BYTES of a stream, copied through to where it would have gone."""

    target: BinaryIO
    data: bytearray = field(default_factory=bytearray)

    def pump(self, source: BinaryIO) -> None:
        descriptor = source.fileno()
        while chunk := os.read(descriptor, 65536):
            try:
                self.target.write(chunk)
                self.target.flush()
            except (OSError, ValueError):
                pass  # our own stdout is gone: keep capturing, never kill the job for it
            self.data += chunk
            if len(self.data) > 2 * TAIL_BYTES:
                del self.data[:-TAIL_BYTES]

    def text(self) -> str:
        return bytes(self.data[-TAIL_BYTES:]).decode("utf-8", errors="replace")


@contextmanager
def noting_stop_signals() -> Iterator[list[int]]:
    """While inside, SIGINT/SIGTERM/SIGHUP are noted in the yielded list instead of killing us.

    The shim is inside for its whole run, so a stop between two tries, or while it reports,
    ends it cleanly; while the command runs, `run_command` forwards the signals instead.
    """
    received: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    with _handling_stop_signals(note):
        yield received


def run_command(
    command: Sequence[str], timeout: float | None = None, kill_grace: float = 10.0
) -> Finished:
    """Run the command to its end; never raises for anything the command does."""
    forwarded: list[int] = []
    group: list[int] = []  # the child's process group, once it exists

    def forward(signum: int, _frame: FrameType | None) -> None:
        forwarded.append(signum)
        if group:
            _signal_group(group[0], signum)

    # Handlers go in before the child starts: a signal in between must not orphan it.
    with _handling_stop_signals(forward):
        return _supervise(command, timeout, kill_grace, group, forwarded)


@contextmanager
def _handling_stop_signals(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP go to `handler` while inside; the earlier handlers after."""
    previous = {sig: signal.signal(sig, handler) for sig in FORWARDED_SIGNALS}
    try:
        yield
    finally:
        for sig, earlier in previous.items():
            signal.signal(sig, earlier)


def _supervise(
    command: Sequence[str],
    timeout: float | None,
    kill_grace: float,
    group: list[int],
    forwarded: list[int],
) -> Finished:
    started = time.monotonic()
    try:
        child = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, process_group=0
        )
    except OSError as error:
        code = 127 if isinstance(error, FileNotFoundError) else 126
        reason = f"cannot start {command[0]!r}: {error.strerror or error}"
        return Finished(exit_code=code, wall_seconds=0.0, not_started=reason)
    group.append(child.pid)
    for signum in forwarded:  # arrived while the child was starting
        _signal_group(child.pid, signum)
    assert child.stdout is not None
    assert child.stderr is not None
    tails = (_Tail(sys.stdout.buffer), _Tail(sys.stderr.buffer))
    pumps = [
        threading.Thread(target=tail.pump, args=(stream,), daemon=True)
        for tail, stream in zip(tails, (child.stdout, child.stderr), strict=True)
    ]
    for pump in pumps:
        pump.start()
    ended: list[tuple[int, resource.struct_rusage]] = []
    done = threading.Event()

    def reap() -> None:
        _, status, usage = os.wait4(child.pid, 0)
        ended.append((status, usage))
        done.set()

    threading.Thread(target=reap, daemon=True).start()
    timed_out = False
    if not done.wait(timeout):
        timed_out = True
        _signal_group(child.pid, signal.SIGTERM)
        if not done.wait(kill_grace):
            _signal_group(child.pid, signal.SIGKILL)
            done.wait()
    status, usage = ended[0]
    child.returncode = _exit_code(status)  # reaped here: Popen must not wait on the pid again
    # A grandchild may still hold the pipes open: wait a moment for them, not for it.
    deadline = time.monotonic() + 2.0
    for pump in pumps:
        pump.join(timeout=max(0.0, deadline - time.monotonic()))
    return Finished(
        exit_code=child.returncode,
        wall_seconds=time.monotonic() - started,
        cpu_user_seconds=usage.ru_utime,
        cpu_system_seconds=usage.ru_stime,
        max_rss_bytes=usage.ru_maxrss * 1024,  # Linux reports KiB
        stdout_tail=tails[0].text(),
        stderr_tail=tails[1].text(),
        forwarded_signal=forwarded[0] if forwarded else None,
        timed_out=timed_out,
    )


def _exit_code(status: int) -> int:
    """The code a shell would report: the exit status, or 128 + the signal that ended it."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)
