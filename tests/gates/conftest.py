"""A collector with a policy file, for gate scenarios on both backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from collector.api.app import create_app
from collector.settings import Settings
from tests.settled import SettledClient

GatedClient = Callable[[str], TestClient]


@pytest.fixture
def gated(database_url: str, tmp_path: Path) -> Iterator[GatedClient]:
    """Start the collector with the given policy text; stopped at the end of the test."""
    started: list[TestClient] = []

    def start(policy: str) -> TestClient:
        policy_file = tmp_path / "pipewarden.toml"
        policy_file.write_text(policy)
        client = SettledClient(
            create_app(Settings(database_url=database_url, policy=str(policy_file)))
        )
        client.__enter__()
        started.append(client)
        return client

    yield start
    for client in started:
        client.__exit__(None, None, None)
