"""`pipewarden gate NS JOB`: the gate's decision for a scheduler step (Airflow, cron, NiFi)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from collector.settings import Settings
from collector.shim.client import Client
from collector.shim.spool import warn

EXIT_ALLOWED = 0
EXIT_BLOCKED = 1
EXIT_UNREACHABLE = 3


def ask_gate(settings: Settings, namespace: str, job: str, as_json: bool) -> int:
    client = Client(settings.url, settings.api_key, max(settings.client_timeout, 5.0))
    answer = client.gate_known(namespace, job)
    if answer is None:
        warn(f"the gate could not be asked: {client.unreachable_reason}")
        return EXIT_UNREACHABLE
    if answer.status != 200:
        warn(
            f"the gate answered HTTP {answer.status}: {answer.body[:300].decode(errors='replace')}"
        )
        return EXIT_UNREACHABLE
    decision: dict[str, Any] = answer.json()
    if as_json:
        print(json.dumps(decision, indent=2))
    else:
        print(describe(decision))
    return EXIT_BLOCKED if decision.get("effective") == "block" else EXIT_ALLOWED


def describe(decision: dict[str, Any]) -> str:
    """The decision as a person reads it: a headline, then one line per reason."""
    verdict = decision["decision"]
    if verdict == "block" and decision["mode"] == "monitor":
        outcome = "would block (monitor mode: the job runs)"
    elif decision["effective"] == "block":
        outcome = "BLOCKED (enforce mode)"
    else:
        outcome = f"{verdict} ({decision['mode']} mode)"
    lines = [f"{decision['namespace']}/{decision['job']}: {outcome}"]
    for reason in decision.get("reasons") or []:
        lines.append(f"  {reason['severity']:<5}  {reason['rule']}: {reason['message']}")
    return "\n".join(lines)


def print_maturity(settings: Settings, namespace: str | None) -> int:
    """`pipewarden assess`: one line per job, its level and its next step."""
    client = Client(settings.url, settings.api_key, max(settings.client_timeout, 10.0))
    query = f"?namespace={quote(namespace, safe='')}" if namespace else ""
    answer = client.request("GET", f"/api/v1/maturity{query}")
    if answer is None or answer.status != 200:
        reason = client.unreachable_reason or f"HTTP {answer.status if answer else '?'}"
        warn(f"the collector could not be asked: {reason}")
        return EXIT_UNREACHABLE
    for job in answer.json()["jobs"]:
        print(
            f"{job['level']} {job['label']:<27} {job['namespace']}/{job['job']}: {job['nextStep']}"
        )
    return EXIT_ALLOWED
