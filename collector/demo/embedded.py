"""The demo's own collector: `create_app` served by uvicorn in a thread of this process."""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from collector.demo import policy_path
from collector.demo.client import CollectorError
from collector.settings import Settings

if TYPE_CHECKING:
    import uvicorn

EVALUATOR_INTERVAL = 1.0  # overruns and missed runs show within a second
STORE = "pipewarden.db"


@dataclass
class Embedded:
    """A collector running in this process; `stop` finishes its requests and its writer."""

    url: str
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def alive(self) -> bool:
        return self.thread.is_alive()


def settings_for(directory: Path, port: int) -> Settings:
    """A fresh SQLite store in `directory`, the demo policy, a one-second evaluator."""
    return Settings(
        database_url=f"sqlite:///{(directory / STORE).absolute()}",
        port=port,
        policy=str(policy_path()),
        evaluator_interval=EVALUATOR_INTERVAL,
        log_level="warning",
    )


def listen(port: int) -> socket.socket:
    """A socket bound to 127.0.0.1:port (any free port for 0), or a clear error."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as error:
        sock.close()
        raise CollectorError(
            f"port {port} is taken ({error.strerror}): pass --port 0 for a free one, or "
            "--url to tell the story to the collector already there"
        ) from None
    return sock


def start(directory: Path, port: int) -> Embedded:
    """Serve a new collector on 127.0.0.1 and return once it answers."""
    import uvicorn

    from collector.api.app import create_app

    sock = listen(port)
    port = sock.getsockname()[1]
    settings = settings_for(directory, port)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = uvicorn.Config(
        create_app(settings), log_level="warning", timeout_graceful_shutdown=5, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="pipewarden-demo-collector", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise CollectorError("the embedded collector did not start (see the log above)")
        time.sleep(0.05)
    return Embedded(f"http://127.0.0.1:{port}", settings, server, thread)
