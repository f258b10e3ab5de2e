"""`pipewarden dashboards push`: the dashboards into a Grafana folder over its HTTP API.

Each dashboard is posted to `/api/dashboards/db` with `overwrite` and the folder's uid (an
update without it would move the dashboard to General), after making sure the folder exists.
Only the standard library is used, so pushing needs nothing beyond pipewarden itself.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

HINTS = {
    401: "check the token (--token or GRAFANA_TOKEN)",
    403: "the token needs the Editor role (dashboards:write, folders:create)",
    412: "Grafana refused the change as a conflict (version or name)",
}


class GrafanaError(Exception):
    """Grafana refused a request or could not be reached; the message says which and why."""


@dataclass(frozen=True)
class Grafana:
    """A Grafana server's HTTP API, authenticated with a Bearer token."""

    url: str
    token: str
    timeout: float = 30.0

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The JSON answer to a request; GrafanaError on any status but 2xx."""
        request = urllib.request.Request(
            self.url.rstrip("/") + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise _refused(method, path, error) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise GrafanaError(f"cannot reach Grafana at {self.url}: {reason}") from None


@dataclass(frozen=True)
class Pushed:
    uid: str
    title: str
    url: str


def ensure_folder(grafana: Grafana, uid: str, title: str) -> bool:
    """Creates the folder unless it exists; True when it was created."""
    try:
        grafana.call("GET", f"/api/folders/{urllib.parse.quote(uid, safe='')}")
    except _NotFound:
        grafana.call("POST", "/api/folders", {"uid": uid, "title": title})
        return True
    return False


def push(
    grafana: Grafana, dashboards: list[dict[str, Any]], folder_uid: str, message: str
) -> Iterator[Pushed]:
    """Posts each dashboard into the folder, replacing the one with its uid; yields each."""
    for dashboard in dashboards:
        answer = grafana.call(
            "POST",
            "/api/dashboards/db",
            {
                "dashboard": {**dashboard, "id": None},
                "folderUid": folder_uid,
                "overwrite": True,
                "message": message,
            },
        )
        location = answer.get("url", "") if isinstance(answer, dict) else ""
        yield Pushed(dashboard["uid"], dashboard["title"], grafana.url.rstrip("/") + location)


class _NotFound(GrafanaError):
    pass


def _refused(method: str, path: str, error: urllib.error.HTTPError) -> GrafanaError:
    status = error.code
    text = error.read().decode("utf-8", "replace").strip()
    try:
        answer = json.loads(text)
        said = answer.get("message", text) if isinstance(answer, dict) else text
    except ValueError:
        said = text
    hint = HINTS.get(status)
    message = (
        f"Grafana answered {status} {error.reason} to {method} {path}: {said or '(no message)'}"
    )
    kind = _NotFound if status == 404 else GrafanaError
    return kind(f"{message} ({hint})" if hint else message)
