"""The shim's durable local queue: every event is on disk before it is sent.

One file per event, written atomically (temporary file, fsync, rename) and named so that
sorting the names gives the order the events were made in. A file is removed only once
the collector acknowledged it; what the collector refuses for good is moved aside to
`rejected/`; a file that cannot be read is moved to `corrupt/` with a warning.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

_SUFFIX = ".json"
# Sent with an event delivered late from the spool, so the collector can count them.
DELIVERY_HEADER = "X-Pipewarden-Delivery"
SPOOLED = "spool"
_sequence = itertools.count()


class Delivery(Enum):
    """What happened to one event sent to the collector."""

    ACKNOWLEDGED = "acknowledged"  # 2xx: stored (or a duplicate of a stored one)
    REJECTED = "rejected"  # 4xx other than 401/403/408/429: sending it again cannot help
    UNREACHABLE = "unreachable"  # network error, timeout, 5xx, 408, 429, 401/403: try later


@dataclass(frozen=True)
class ReplayReport:
    delivered: int
    rejected: int
    corrupt: int
    remaining: int


def default_spool_dir() -> Path:
    """`$XDG_STATE_HOME/pipewarden/spool`, else `~/.local/state/pipewarden/spool`."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "pipewarden" / "spool"


class Spool:
    """A directory of events waiting for the collector's acknowledgement."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def append(self, event: dict[str, Any]) -> Path:
        """Write the event durably; returns its file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid():07d}-{next(_sequence):06d}{_SUFFIX}"
        path = self.directory / name
        temporary = self.directory / f".{name}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(json.dumps(event, separators=(",", ":")).encode())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        _fsync_directory(self.directory)
        return path

    def pending(self) -> list[Path]:
        """Spooled events, oldest first (half-written temporary files are not events)."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.name.endswith(_SUFFIX))

    def acknowledge(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def set_aside(self, path: Path, reason: str) -> None:
        """Move a file out of the queue into `reason/`, keeping it for a human to look at."""
        folder = self.directory / reason
        folder.mkdir(exist_ok=True)
        os.replace(path, folder / path.name)

    def read(self, path: Path) -> dict[str, Any] | None:
        """The spooled event, or None (with a warning) when the file is not a JSON event."""
        try:
            event = json.loads(path.read_bytes())
        except (OSError, ValueError) as error:
            warn(f"spooled event {path.name} cannot be read ({error}); moved to corrupt/")
            self.set_aside(path, "corrupt")
            return None
        if not isinstance(event, dict):
            warn(f"spooled event {path.name} is not a JSON object; moved to corrupt/")
            self.set_aside(path, "corrupt")
            return None
        return event

    def replay(self, send: Callable[[dict[str, Any]], Delivery]) -> ReplayReport:
        """Send spooled events in order until the collector stops answering."""
        delivered = rejected = corrupt = 0
        paths = iter(self.pending())
        for path in paths:
            event = self.read(path)
            if event is None:
                corrupt += 1
                continue
            outcome = send(event)
            if outcome is Delivery.UNREACHABLE:
                remaining = 1 + sum(1 for _ in paths)
                return ReplayReport(delivered, rejected, corrupt, remaining)
            if outcome is Delivery.REJECTED:
                warn(f"the collector refused spooled event {path.name}; moved to rejected/")
                self.set_aside(path, "rejected")
                rejected += 1
            else:
                self.acknowledge(path)
                delivered += 1
        return ReplayReport(delivered, rejected, corrupt, 0)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def warn(message: str) -> None:
    print(f"pipewarden: {message}", file=sys.stderr, flush=True)
