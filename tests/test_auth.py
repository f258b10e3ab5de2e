"""Tokens on the API: who may read, write and give feedback, in which namespaces.

The collector runs in-process with a token file made by the same code `pipewarden token
create` uses; the matrix of callers (none, unknown, read, write, admin, for one namespace or
all) is checked against what each endpoint answers and what the store then holds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from collector.api.app import create_app
from collector.auth import AuthFileError, AuthHolder, access_notice, create_token
from collector.cli import main
from collector.settings import Settings
from collector.store.engine import make_engine
from collector.store.tables import events
from tests.conftest import count_events
from tests.events import DATASET_EVENT, PRODUCER, dataset, run_event
from tests.settled import SettledClient

PG = "postgres://db.example:5432"
# name: (role, namespaces)
GRANTS = {
    "shop-reader": ("read", ["shop"]),
    "shop-writer": ("write", ["shop"]),
    "shop-admin": ("admin", ["shop"]),
    "all-reader": ("read", ["*"]),
    "root": ("admin", ["*"]),
    "elsewhere-admin": ("admin", ["elsewhere"]),
}


@dataclass(frozen=True)
class Tokens:
    file: Path
    secrets: dict[str, str]

    def header(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[name]}"}


def make_tokens(file: Path) -> Tokens:
    made = {}
    for name, (role, namespaces) in GRANTS.items():
        made[name], _ = create_token(file, name, role, namespaces)
    return Tokens(file, made)


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    return make_tokens(tmp_path / "tokens.toml")


@pytest.fixture
def auth_client(database_url: str, tokens: Tokens) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, auth_file=str(tokens.file))
    with SettledClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def sqlite_client(tmp_path: Path, tokens: Tokens) -> Iterator[TestClient]:
    """For checks that do not depend on the store: SQLite only."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'auth.db'}",
        auth_file=str(tokens.file),
        metrics_token="scrape-me",
    )
    with SettledClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def store(auth_client: TestClient, database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def dataset_event(namespace: str, name: str = "public.orders") -> dict[str, Any]:
    return {
        "eventTime": "2024-05-01T02:00:00Z",
        "producer": PRODUCER,
        "schemaURL": DATASET_EVENT,
        "dataset": {"namespace": namespace, "name": name, "facets": {}},
    }


def stored_run_ids(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        rows = connection.execute(select(events.c.run_uuid)).scalars()
        return {str(run_id) for run_id in rows if run_id is not None}


def assert_error(response: Any, status: int, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "errors"}
    assert body["code"] == status
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    return body


# --- authentication: 401 ----------------------------------------------------------------


def _api_routes(client: TestClient, run_id: str | None = None) -> list[tuple[str, str]]:
    """(method, URL) of every /api/v1 operation the app documents, in `shop`, with the
    parameters it requires filled in."""
    document = client.app.openapi()  # type: ignore[attr-defined]
    values = {
        "namespace": "shop",
        "job": "daily",
        "dataset": "orders",
        "run_id": run_id or str(uuid.uuid4()),
        "finding_id": "1",
        "nodeId": "job:shop:daily",
    }
    found = []
    for template, operations in document["paths"].items():
        if not template.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            path = template.format(**values)
            required = [
                f"{p['name']}={values[p['name']]}"
                for p in operation.get("parameters", [])
                if p["in"] == "query" and p.get("required")
            ]
            found.append((method.upper(), path + ("?" + "&".join(required) if required else "")))
    return found


@pytest.mark.parametrize(
    ("headers", "invalid_token"),
    [
        ({}, False),
        ({"Authorization": "Bearer pw_not-a-token-of-this-collector"}, True),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, False),
        ({"Authorization": "Bearer "}, False),
    ],
)
def test_every_api_route_is_401_without_a_known_token(
    sqlite_client: TestClient, headers: dict[str, str], invalid_token: bool
) -> None:
    routes = _api_routes(sqlite_client)
    assert len(routes) >= 18
    for method, path in routes:
        response = sqlite_client.request(method, path, headers=headers, json=run_event())
        body = assert_error(response, 401, "token")
        assert body["errors"] == []
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="pipewarden"'), (method, path)
        assert ('error="invalid_token"' in challenge) is invalid_token
    assert sqlite_client.get("/api/v1/namespaces", headers=headers).status_code == 401


def test_a_refused_event_is_not_stored(auth_client: TestClient, store: Engine) -> None:
    response = auth_client.post("/api/v1/lineage", json=run_event("START"))
    assert_error(response, 401)
    wrong = {"Authorization": "Bearer pw_" + "x" * 43}
    assert_error(auth_client.post("/api/v1/lineage", json=run_event(), headers=wrong), 401)
    assert count_events(store) == 0


def test_a_token_for_another_namespace_gets_nothing_from_any_route(
    sqlite_client: TestClient, tokens: Tokens
) -> None:
    """Every route checks the caller: a guard for routes added later, too."""
    runs = _seed(sqlite_client, tokens)
    stored = sqlite_client.get("/api/v1/events/lineage", headers=tokens.header("root")).json()
    elsewhere = tokens.header("elsewhere-admin")
    verdict = {"verdict": "confirmed"}  # one body that every route's model accepts
    for method, path in _api_routes(sqlite_client, run_id=runs["shop"]):
        response = sqlite_client.request(
            method, path, headers=elsewhere, json=run_event(namespace="shop") | verdict
        )
        if path.startswith("/api/v1/namespaces?") or path == "/api/v1/namespaces":
            assert response.json()["namespaces"] == [], path
        elif path == "/api/v1/lineage/batch":
            assert [r["status"] for r in response.json()["results"]] == ["forbidden"]
        else:
            assert response.status_code in (403, 404), (method, path, response.text)
            assert response.status_code == 403 or "finding" in path, (method, path)
    after = sqlite_client.get("/api/v1/events/lineage", headers=tokens.header("root")).json()
    assert after == stored


def test_healthz_is_open_and_metrics_need_the_metrics_token(
    sqlite_client: TestClient, tokens: Tokens
) -> None:
    assert sqlite_client.get("/healthz").json()["status"] == "ok"
    assert_error(sqlite_client.get("/metrics"), 401)
    wrong = sqlite_client.get("/metrics", headers={"Authorization": "Bearer scrape-you"})
    assert_error(wrong, 401)
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    # An API token, even root's, is not the metrics token.
    assert_error(sqlite_client.get("/metrics", headers=tokens.header("root")), 401)
    scraped = sqlite_client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert scraped.status_code == 200
    assert "pipewarden_events_ingested_total" in scraped.text


def test_metrics_stay_open_without_a_metrics_token(tmp_path: Path, tokens: Tokens) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}", auth_file=str(tokens.file))
    with SettledClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 200
        assert_error(client.get("/api/v1/namespaces"), 401)


def test_without_a_token_file_the_api_is_open_and_ignores_keys(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'open.db'}")
    with SettledClient(create_app(settings)) as client:
        assert client.post("/api/v1/lineage", json=run_event()).status_code == 201
        key = {"Authorization": "Bearer whatever-the-client-sends"}
        assert client.post("/api/v1/lineage", json=run_event(), headers=key).status_code == 201
        assert client.get("/api/v1/events/lineage").json()["totalCount"] == 2


# --- writing: 403 outside the token's role and namespaces -------------------------------


def test_write_matrix(auth_client: TestClient, tokens: Tokens, store: Engine) -> None:
    cases = [  # token, event namespace, status
        ("shop-reader", "shop", 403),
        ("all-reader", "shop", 403),
        ("shop-writer", "shop", 201),
        ("shop-writer", "billing", 403),
        ("shop-admin", "shop", 201),
        ("shop-admin", "billing", 403),
        ("root", "billing", 201),
    ]
    expected_stored = set()
    for name, namespace, status in cases:
        event = run_event("START", namespace=namespace)
        response = auth_client.post("/api/v1/lineage", json=event, headers=tokens.header(name))
        assert response.status_code == status, (name, namespace, response.text)
        if status == 201:
            assert response.json() == {"status": "stored"}
            expected_stored.add(event["run"]["runId"])
        elif GRANTS[name][0] == "read":
            assert_error(response, 403, f"token {name!r}", "needs role write")
        else:
            body = assert_error(response, 403, f"token {name!r}", "namespace 'billing'")
            assert body["errors"] == [
                {"field": "job.namespace", "problem": "'billing' is not among the token's"}
            ]
    assert stored_run_ids(store) == expected_stored


def test_a_dataset_event_is_judged_by_its_dataset_namespace(
    auth_client: TestClient, tokens: Tokens, store: Engine
) -> None:
    writer = tokens.header("shop-writer")
    stored = auth_client.post("/api/v1/lineage", json=dataset_event("shop"), headers=writer)
    assert stored.status_code == 201
    refused = auth_client.post("/api/v1/lineage", json=dataset_event(PG), headers=writer)
    body = assert_error(refused, 403, repr(PG))
    assert body["errors"][0]["field"] == "dataset.namespace"
    assert count_events(store) == 1


def test_an_invalid_event_is_422_before_its_namespace_is_judged(
    sqlite_client: TestClient, tokens: Tokens
) -> None:
    event = run_event(namespace="billing")
    del event["run"]["runId"]
    response = sqlite_client.post(
        "/api/v1/lineage", json=event, headers=tokens.header("shop-writer")
    )
    assert_error(response, 422, "run.runId")


def test_a_batch_mixing_namespaces_stores_only_the_tokens_own(
    auth_client: TestClient, tokens: Tokens, store: Engine
) -> None:
    invalid = run_event(namespace="shop")
    del invalid["eventTime"]
    batch = [
        run_event("START", namespace="shop"),
        run_event("START", namespace="billing"),
        run_event("COMPLETE", namespace="shop", job="weekly"),
        invalid,
        dataset_event(PG),
        dataset_event("shop"),
    ]
    response = auth_client.post(
        "/api/v1/lineage/batch", json=batch, headers=tokens.header("shop-writer")
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [
        "stored",
        "forbidden",
        "stored",
        "invalid",
        "forbidden",
        "stored",
    ]
    assert "may not write events in namespace 'billing'" in results[1]["error"]
    assert "token 'shop-writer'" in results[1]["error"]
    assert repr(PG) in results[4]["error"]
    assert results[0]["error"] is None
    assert stored_run_ids(store) == {batch[0]["run"]["runId"], batch[2]["run"]["runId"]}
    assert count_events(store) == 3
    root = tokens.header("root")
    names = [
        n["name"] for n in auth_client.get("/api/v1/namespaces", headers=root).json()["namespaces"]
    ]
    assert "billing" not in names
    assert PG not in names
    metrics = auth_client.get("/metrics").text
    assert 'pipewarden_events_ingested_total{outcome="forbidden"} 2.0' in metrics
    assert 'pipewarden_events_ingested_total{outcome="stored"} 3.0' in metrics


def test_a_batch_from_a_read_token_is_refused_whole(
    auth_client: TestClient, tokens: Tokens, store: Engine
) -> None:
    batch = [run_event("START", namespace="shop")]
    response = auth_client.post(
        "/api/v1/lineage/batch", json=batch, headers=tokens.header("shop-reader")
    )
    assert_error(response, 403, "needs role write")
    assert count_events(store) == 0
    metrics = auth_client.get("/metrics").text
    assert 'pipewarden_ingest_errors_total{status="403"} 1.0' in metrics


# --- reading: namespace-scoped ----------------------------------------------------------


def _seed(client: TestClient, tokens: Tokens) -> dict[str, str]:
    """A finished run in `shop` and one in `billing`, both reading a dataset in PG."""
    run_ids = {}
    for namespace in ("shop", "billing"):
        run_id = str(uuid.uuid4())
        for kind, at in (("START", "02:00"), ("COMPLETE", "02:05")):
            event = run_event(
                kind,
                run_id=run_id,
                namespace=namespace,
                job="daily",
                event_time=f"2024-05-01T{at}:00Z",
                inputs=[dataset("raw.orders", PG)],
                outputs=[dataset(f"{namespace}.daily", PG)],
            )
            response = client.post("/api/v1/lineage", json=event, headers=tokens.header("root"))
            assert response.status_code == 201
        run_ids[namespace] = run_id
    return run_ids


def test_read_matrix(auth_client: TestClient, tokens: Tokens) -> None:
    runs = _seed(auth_client, tokens)
    pg = quote(PG, safe="")
    paths = {  # path: (status for shop-reader, status for all-reader)
        "/api/v1/namespaces/shop": (200, 200),
        "/api/v1/namespaces/shop/jobs": (200, 200),
        "/api/v1/namespaces/shop/jobs/daily": (200, 200),
        "/api/v1/namespaces/shop/jobs/daily/runs": (200, 200),
        f"/api/v1/jobs/runs/{runs['shop']}": (200, 200),
        "/api/v1/findings?namespace=shop": (200, 200),
        "/api/v1/maturity?namespace=shop": (200, 200),
        "/api/v1/gates/shop/daily": (200, 200),
        "/api/v1/namespaces/billing": (403, 200),
        "/api/v1/namespaces/billing/jobs": (403, 200),
        "/api/v1/namespaces/billing/jobs/daily": (403, 200),
        "/api/v1/namespaces/billing/jobs/daily/runs": (403, 200),
        "/api/v1/namespaces/nowhere/jobs": (403, 404),
        f"/api/v1/jobs/runs/{runs['billing']}": (403, 200),
        f"/api/v1/namespaces/{pg}/datasets": (403, 200),
        f"/api/v1/namespaces/{pg}/datasets/shop.daily": (403, 200),
        "/api/v1/findings?namespace=billing": (403, 200),
        "/api/v1/maturity?namespace=billing": (403, 200),
        "/api/v1/gates/billing/daily": (403, 200),
        "/api/v1/findings": (403, 200),
        "/api/v1/maturity": (403, 200),
        "/api/v1/kpis": (403, 200),
        "/api/v1/events/lineage": (403, 200),
        "/api/v1/lineage?nodeId=job:shop:daily": (403, 200),
        f"/api/v1/column-lineage?nodeId=dataset:{PG}:shop.daily": (403, 200),
    }
    for path, (scoped, everything) in paths.items():
        for name, status in (("shop-reader", scoped), ("all-reader", everything)):
            response = auth_client.get(path, headers=tokens.header(name))
            assert response.status_code == status, (name, path, response.text)
            if status == 403:
                assert_error(response, 403, "token 'shop-reader'")
    refused = auth_client.get(
        "/api/v1/namespaces/billing/jobs", headers=tokens.header("shop-reader")
    )
    assert_error(refused, 403, "namespace 'billing'")
    lineage = auth_client.get("/api/v1/events/lineage", headers=tokens.header("shop-reader"))
    assert_error(lineage, 403, "all namespaces (*)")


def test_namespaces_lists_only_the_tokens_own(auth_client: TestClient, tokens: Tokens) -> None:
    _seed(auth_client, tokens)

    def names(token: str) -> list[str]:
        answer = auth_client.get("/api/v1/namespaces", headers=tokens.header(token))
        assert answer.status_code == 200
        return [item["name"] for item in answer.json()["namespaces"]]

    assert names("shop-reader") == ["shop"]
    assert names("shop-writer") == ["shop"]
    assert names("all-reader") == sorted(["billing", PG, "shop"])


def test_the_gate_needs_read_on_its_namespace(auth_client: TestClient, tokens: Tokens) -> None:
    plan = {"inputs": [{"namespace": PG, "name": "raw.orders"}], "outputs": []}
    for name in ("shop-reader", "shop-writer", "shop-admin"):
        answer = auth_client.post(
            "/api/v1/gates/shop/daily", json=plan, headers=tokens.header(name)
        )
        assert answer.status_code == 200, (name, answer.text)
        assert answer.json()["namespace"] == "shop"
    refused = auth_client.post(
        "/api/v1/gates/billing/daily", json=plan, headers=tokens.header("shop-writer")
    )
    assert_error(refused, 403, "may not ask the gate in namespace 'billing'")


# --- finding feedback: admin ------------------------------------------------------------


def _failure_streak(client: TestClient, tokens: Tokens, namespace: str) -> None:
    for day in (1, 2):
        run_id = str(uuid.uuid4())
        for kind, at in (("START", "02:00"), ("FAIL", "02:05")):
            event = run_event(
                kind, run_id=run_id, namespace=namespace, event_time=f"2024-05-0{day}T{at}:00Z"
            )
            response = client.post("/api/v1/lineage", json=event, headers=tokens.header("root"))
            assert response.status_code == 201


def _finding_id(client: TestClient, tokens: Tokens, namespace: str) -> int:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = client.get(
            "/api/v1/findings",
            params={"namespace": namespace, "kind": "failure"},
            headers=tokens.header("root"),
        ).json()["findings"]
        if found:
            return int(found[0]["id"])
        time.sleep(0.1)
    raise AssertionError(f"no failure finding in {namespace} in time")


def test_feedback_needs_admin_on_the_findings_namespace(
    auth_client: TestClient, tokens: Tokens
) -> None:
    _failure_streak(auth_client, tokens, "shop")
    _failure_streak(auth_client, tokens, "billing")
    shop, billing = (
        _finding_id(auth_client, tokens, "shop"),
        _finding_id(auth_client, tokens, "billing"),
    )
    verdict = {"verdict": "false_positive"}
    for name in ("shop-reader", "shop-writer", "all-reader"):
        path = f"/api/v1/findings/{shop}/feedback"
        refused = auth_client.post(path, json=verdict, headers=tokens.header(name))
        assert_error(refused, 403, "give finding feedback", "needs role admin")
    refused = auth_client.post(
        f"/api/v1/findings/{billing}/feedback", json=verdict, headers=tokens.header("shop-admin")
    )
    assert_error(refused, 403, "namespace 'billing'")
    missing = auth_client.post(
        "/api/v1/findings/999999/feedback", json=verdict, headers=tokens.header("shop-admin")
    )
    assert_error(missing, 404)
    accepted = auth_client.post(
        f"/api/v1/findings/{shop}/feedback", json=verdict, headers=tokens.header("shop-admin")
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "false_positive"
    still_open = auth_client.get(
        "/api/v1/findings", params={"namespace": "billing"}, headers=tokens.header("root")
    ).json()["findings"]
    assert [f["status"] for f in still_open if f["id"] == billing] == ["open"]


# --- the token file in the collector: start, reload -------------------------------------


def test_a_revoked_token_is_refused_after_reload(sqlite_client: TestClient, tokens: Tokens) -> None:
    writer = tokens.header("shop-writer")
    assert sqlite_client.get("/api/v1/namespaces", headers=writer).status_code == 200
    result = CliRunner().invoke(
        main, ["token", "revoke", "shop-writer", "--file", str(tokens.file)]
    )
    assert result.exit_code == 0, result.output
    # Until the collector reloads, the tokens it loaded stay in force.
    assert sqlite_client.get("/api/v1/namespaces", headers=writer).status_code == 200
    holder: AuthHolder = sqlite_client.app.state.auth  # type: ignore[attr-defined]
    assert holder.reload()
    assert_error(sqlite_client.get("/api/v1/namespaces", headers=writer), 401)
    assert sqlite_client.get("/api/v1/namespaces", headers=tokens.header("root")).status_code == 200


def test_an_invalid_file_on_reload_keeps_the_tokens_in_force(
    sqlite_client: TestClient, tokens: Tokens
) -> None:
    tokens.file.write_text(tokens.file.read_text().replace('role = "read"', 'role = "reader"', 1))
    holder: AuthHolder = sqlite_client.app.state.auth  # type: ignore[attr-defined]
    assert not holder.reload()
    answer = sqlite_client.get("/api/v1/namespaces", headers=tokens.header("shop-reader"))
    assert answer.status_code == 200


def test_the_collector_refuses_to_start_with_an_invalid_token_file(
    tmp_path: Path, tokens: Tokens
) -> None:
    lines = tokens.file.read_text().splitlines()
    role_line = next(n for n, line in enumerate(lines, 1) if line.startswith("role ="))
    tokens.file.write_text(tokens.file.read_text().replace('role = "read"', 'role = "owner"', 1))
    with pytest.raises(AuthFileError) as refused:
        create_app(
            Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", auth_file=str(tokens.file))
        )
    assert refused.value.line == role_line
    result = CliRunner().invoke(
        main,
        ["serve", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"],
        env={"PIPEWARDEN_AUTH_FILE": str(tokens.file)},
    )
    assert result.exit_code == 1
    assert f"token file refused: {tokens.file}:{role_line}: [token] role must be one of" in (
        result.output
    )
    missing = CliRunner().invoke(
        main,
        ["serve", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"],
        env={"PIPEWARDEN_AUTH_FILE": str(tmp_path / "absent.toml")},
    )
    assert missing.exit_code == 1
    assert "token file not found" in missing.output


def test_serve_says_who_may_call_it(tokens: Tokens) -> None:
    closed = AuthHolder(Settings())
    assert "unauthenticated" in access_notice("127.0.0.1", closed)
    assert "loopback" in access_notice("127.0.0.1", closed)
    assert "loopback" in access_notice("::1", closed)
    assert "loopback" in access_notice("localhost", closed)
    for host in ("0.0.0.0", "10.1.2.3", "collector.internal", "::"):
        notice = access_notice(host, closed)
        assert notice.startswith("WARNING: the API is unauthenticated"), host
        assert host in notice
    loaded = access_notice("0.0.0.0", AuthHolder(Settings(auth_file=str(tokens.file))))
    assert loaded.startswith(f"API tokens: {len(GRANTS)} loaded from {tokens.file}")
