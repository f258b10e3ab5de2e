"""`pipewarden dashboards push` against a local stub of Grafana's HTTP API.

The stub answers like Grafana 11 (`/api/folders`, `/api/dashboards/db`) and records each
request, so the tests check what pipewarden sends and how it reports Grafana's refusals.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from collector.cli import main
from tests.shim_helpers import free_port

TOKEN = "glsa_test-token"
GENERATED = Path(__file__).parents[2] / "dashboards" / "generated" / "grafana"


@dataclass
class Request:
    method: str
    path: str
    authorization: str | None
    content_type: str | None
    body: Any


@dataclass
class Grafana:
    """What the stub knows (folders) and has received (requests); `refuse` forces a status."""

    url: str = ""
    folders: dict[str, str] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    refuse: dict[str, tuple[int, str]] = field(default_factory=dict)

    def answer(self, request: Request) -> tuple[int, dict[str, Any]]:
        if request.authorization != f"Bearer {TOKEN}":
            return 401, {"message": "invalid API key"}
        if request.path in self.refuse:
            status, message = self.refuse[request.path]
            return status, {"message": message, "status": "refused"}
        if request.method == "GET" and request.path.startswith("/api/folders/"):
            uid = request.path.removeprefix("/api/folders/")
            if uid not in self.folders:
                return 404, {"message": "folder not found"}
            return 200, {"uid": uid, "title": self.folders[uid]}
        if request.method == "POST" and request.path == "/api/folders":
            self.folders[request.body["uid"]] = request.body["title"]
            return 200, {"uid": request.body["uid"], "title": request.body["title"]}
        if request.method == "POST" and request.path == "/api/dashboards/db":
            uid = request.body["dashboard"]["uid"]
            if request.body.get("folderUid") not in self.folders:
                return 400, {"message": "folder not found"}
            return 200, {"id": 7, "uid": uid, "url": f"/d/{uid}/slug", "status": "success"}
        return 404, {"message": "not found"}


@pytest.fixture
def grafana() -> Iterator[Grafana]:
    stub = Grafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Request(
                self.command,
                self.path,
                self.headers.get("Authorization"),
                self.headers.get("Content-Type"),
                json.loads(raw) if raw else None,
            )
            stub.requests.append(request)
            status, answer = stub.answer(request)
            body = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()
    thread.join()


def push(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, ["dashboards", "push", *args], env=env)


def committed() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in GENERATED.glob("*.json")}


def test_push_creates_the_folder_and_posts_each_dashboard_with_overwrite(grafana: Grafana) -> None:
    result = push("--grafana-url", grafana.url, "--token", TOKEN)

    assert result.exit_code == 0, result.output
    get_folder, create_folder, *posts = grafana.requests
    assert (get_folder.method, get_folder.path) == ("GET", "/api/folders/pipewarden")
    assert (create_folder.method, create_folder.path) == ("POST", "/api/folders")
    assert create_folder.body == {"uid": "pipewarden", "title": "pipewarden"}
    dashboards = committed()
    assert len(posts) == len(dashboards) == 4
    for post in posts:
        assert (post.method, post.path) == ("POST", "/api/dashboards/db")
        assert post.content_type == "application/json"
        assert post.body["folderUid"] == "pipewarden"
        assert post.body["overwrite"] is True
        assert post.body["message"]
        sent = post.body["dashboard"]
        assert sent["id"] is None
        assert sent == {**dashboards[sent["uid"]], "id": None}, "push sends the built JSON"
        assert f"{grafana.url}/d/{sent['uid']}/slug" in result.output
    assert all(r.authorization == f"Bearer {TOKEN}" for r in grafana.requests)
    assert "created folder" in result.output


def test_push_into_an_existing_folder_named_by_flags_creates_nothing(grafana: Grafana) -> None:
    grafana.folders["data-team"] = "Data team"
    result = push(
        "--grafana-url", grafana.url + "/", "--folder-uid", "data-team", "--folder-title", "X",
        env={"GRAFANA_TOKEN": TOKEN},
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert [(r.method, r.path) for r in grafana.requests[:2]] == [
        ("GET", "/api/folders/data-team"),
        ("POST", "/api/dashboards/db"),
    ]
    assert {r.body["folderUid"] for r in grafana.requests[1:]} == {"data-team"}
    assert grafana.folders == {"data-team": "Data team"}
    assert "created folder" not in result.output


def test_pushing_twice_overwrites_rather_than_fails(grafana: Grafana) -> None:
    assert push("--grafana-url", grafana.url, "--token", TOKEN).exit_code == 0
    again = push("--grafana-url", grafana.url, "--token", TOKEN)
    assert again.exit_code == 0, again.output
    assert sum(r.path == "/api/folders" for r in grafana.requests) == 1


def test_a_refused_token_is_a_clear_error_and_nothing_is_posted(grafana: Grafana) -> None:
    result = push("--grafana-url", grafana.url, "--token", "wrong")

    assert result.exit_code == 1
    assert "401" in result.output
    assert "invalid API key" in result.output
    assert "GRAFANA_TOKEN" in result.output
    assert [r.path for r in grafana.requests] == ["/api/folders/pipewarden"]


@pytest.mark.parametrize(
    ("path", "status", "message", "hint"),
    [
        ("/api/folders", 403, "Permissions needed: folders:create", "Editor"),
        ("/api/dashboards/db", 412, "version-mismatch", "conflict"),
        ("/api/dashboards/db", 500, "database is locked", ""),
    ],
)
def test_grafana_refusals_name_the_status_and_grafanas_message(
    grafana: Grafana, path: str, status: int, message: str, hint: str
) -> None:
    grafana.refuse[path] = (status, message)
    result = push("--grafana-url", grafana.url, "--token", TOKEN)

    assert result.exit_code == 1
    assert f"Grafana answered {status}" in result.output
    assert f"POST {path}" in result.output
    assert message in result.output
    assert hint in result.output
    assert "Traceback" not in result.output


def test_an_unreachable_grafana_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = push("--grafana-url", url, "--token", TOKEN)
    assert result.exit_code == 1
    assert f"cannot reach Grafana at {url}" in result.output


def test_the_token_is_required() -> None:
    result = push("--grafana-url", "http://127.0.0.1:1", env={"GRAFANA_TOKEN": ""})
    assert result.exit_code == 2
    assert "--token" in result.output
