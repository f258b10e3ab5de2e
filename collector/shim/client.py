"""The shim's HTTP client: stdlib only, keep-alive, every call time-boxed, never raising."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from collector.shim.spool import DELIVERY_HEADER, SPOOLED, Delivery


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """Talks to the collector over one kept-alive connection.

    After the first network failure the client stops trying for the rest of its life, so a
    collector that is down costs a run one timeout at most, not one per call.
    """

    def __init__(self, url: str, api_key: str = "", timeout: float = 1.0) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"collector URL {url!r} is not an http(s) URL")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        self._connection: http.client.HTTPConnection | None = None
        self.unreachable_reason: str | None = None

    def post_event(self, event: Mapping[str, Any]) -> Delivery:
        """Send an event as it happens."""
        return self._deliver(self.request("POST", "/api/v1/lineage", event))

    def post_spooled(self, event: Mapping[str, Any]) -> Delivery:
        """Send an event late, from the spool; the collector counts these deliveries."""
        path = "/api/v1/lineage"
        return self._deliver(self.request("POST", path, event, {DELIVERY_HEADER: SPOOLED}))

    def _deliver(self, answer: Answer | None) -> Delivery:
        if answer is None:
            return Delivery.UNREACHABLE
        if 200 <= answer.status < 300:
            return Delivery.ACKNOWLEDGED
        if answer.status in (401, 403):
            # The token is wrong, not the event: keep it for when the token is fixed.
            self.unreachable_reason = (
                f"{self.url}: HTTP {answer.status}, the collector refused the token "
                f"(PIPEWARDEN_API_KEY): {_error_message(answer)}"
            )
            return Delivery.UNREACHABLE
        if answer.status in (408, 429) or answer.status >= 500:
            return Delivery.UNREACHABLE
        return Delivery.REJECTED

    def gate(self, namespace: str, job: str, plan: Mapping[str, Any]) -> Answer | None:
        path = f"/api/v1/gates/{quote(namespace, safe='')}/{quote(job, safe='')}"
        return self.request("POST", path, plan)

    def gate_known(self, namespace: str, job: str) -> Answer | None:
        path = f"/api/v1/gates/{quote(namespace, safe='')}/{quote(job, safe='')}"
        return self.request("GET", path)

    def request(
        self,
        method: str,
        path: str,
        payload: Any = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Answer | None:
        """One call; None when the collector cannot be reached in time."""
        if self.unreachable_reason is not None:
            return None
        body = None if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
        headers.update(extra_headers or {})
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        deadline = time.monotonic() + self.timeout
        for attempt in (1, 2):  # a kept-alive connection the server closed gets one retry
            try:
                connection = self._connect(deadline)
                connection.request(method, self._base + path, body=body, headers=headers)
                response = connection.getresponse()
                return Answer(response.status, response.read())
            except (OSError, http.client.HTTPException) as error:
                self.close()
                stale = isinstance(error, http.client.RemoteDisconnected | BrokenPipeError)
                if attempt == 1 and stale and time.monotonic() < deadline:
                    continue
                self.unreachable_reason = f"{self.url}: {_describe(error)}"
                return None
        return None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self, deadline: float) -> http.client.HTTPConnection:
        timeout = max(0.05, deadline - time.monotonic())
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._connection = kind(self._host, self._port, timeout=timeout)
        else:
            self._connection.timeout = timeout
            if self._connection.sock is not None:
                self._connection.sock.settimeout(timeout)
        return self._connection


def _error_message(answer: Answer) -> str:
    """The `message` of the collector's JSON error, else the start of the body."""
    try:
        return str(answer.json()["message"])
    except (ValueError, KeyError, TypeError):
        return answer.body[:200].decode(errors="replace")


def _describe(error: BaseException) -> str:
    if isinstance(error, socket.timeout | TimeoutError):
        return "no answer in time"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return f"{type(error).__name__}: {error}"
