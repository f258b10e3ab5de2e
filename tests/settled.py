"""A TestClient for tests that read the store directly after sending events."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

SETTLE_S = 30.0


class SettledClient(TestClient):
    """Returns from posting events once the collector has derived them.

    The collector answers an event once it is committed and derives from it afterwards; its
    reads wait for that themselves, but a test looking at the tables must too.
    """

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> Response:
        response = super().request(method, url, *args, **kwargs)
        if method.upper() == "POST" and "/api/v1/lineage" in str(url):
            self.settle()
        return response

    def settle(self) -> None:
        """Until every event acknowledged so far is derived."""
        writer = self.app.state.services.writer  # type: ignore[attr-defined]
        self.portal.call(writer.settle, SETTLE_S)  # type: ignore[union-attr]
