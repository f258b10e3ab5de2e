"""What routes get from the running app: settings, engine and writer, set up by create_app."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Engine

from collector.evaluator import Evaluator
from collector.policy import PolicyHolder
from collector.settings import Settings
from collector.writer import Writer


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    writer: Writer
    policy: PolicyHolder
    evaluator: Evaluator | None  # None when a background process judges (`serve`)


async def services(request: Request) -> Services:
    """Async so FastAPI calls it on the event loop, not in a worker thread."""
    found: Services = request.app.state.services
    return found


async def settled(request: Request) -> None:
    """Wait (up to `read_wait` seconds) until the events acknowledged so far are derived, so a
    read shows what its client was told is stored."""
    found = await services(request)
    await found.writer.settle(found.settings.read_wait)
