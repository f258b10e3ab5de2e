"""The demo's HTTP calls to the collector: posting events, reading the API, waiting on it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class CollectorError(RuntimeError):
    """The collector could not be reached, or answered what the demo cannot go on with."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


@dataclass(frozen=True)
class Api:
    """JSON over HTTP to one collector (a Bearer token when `api_key` is set)."""

    url: str
    api_key: str = ""
    timeout: float = 60.0

    def get(self, path: str) -> Any:
        answer = self.request("GET", path)
        if answer.status != 200:
            raise CollectorError(f"GET {path}: HTTP {answer.status}: {answer.body}")
        return answer.body

    def post(self, path: str, payload: Any) -> Answer:
        return self.request("POST", path, json.dumps(payload).encode())

    def request(self, method: str, path: str, body: bytes | None = None) -> Answer:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url + path, body, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return Answer(response.status, _decoded(response.read()))
        except urllib.error.HTTPError as error:
            return Answer(error.code, _decoded(error.read()))
        except (OSError, urllib.error.URLError) as error:
            reason = getattr(error, "reason", error)
            raise CollectorError(f"{self.url} cannot be reached: {reason}") from None

    def post_batch(self, events: list[dict[str, Any]]) -> int:
        """Post events in one batch; how many were stored (a duplicate is no error)."""
        answer = self.post("/api/v1/lineage/batch", events)
        if answer.status != 200:
            raise CollectorError(f"POST /api/v1/lineage/batch: HTTP {answer.status}: {answer.body}")
        refused = [r for r in answer.body["results"] if r["status"] not in ("stored", "duplicate")]
        if refused:
            raise CollectorError(f"the collector refused demo events: {refused[:3]}")
        return sum(1 for r in answer.body["results"] if r["status"] == "stored")


def _decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def wait_for(what: str, check: Callable[[], T | None], deadline: float, every: float = 0.2) -> T:
    """Poll `check` until it returns something, or fail at the deadline (time.monotonic)."""
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise CollectorError(f"gave up waiting for {what}")
        time.sleep(every)
