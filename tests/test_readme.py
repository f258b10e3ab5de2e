"""The README is the user's manual: its commands are the ones that work."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _quick_start_commands() -> list[str]:
    quick_start = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ")[0]
    return re.findall(r"```sh\n(.+?)\n```", quick_start)


def test_quick_start_is_two_commands_serve_and_test() -> None:
    serve, test = _quick_start_commands()
    assert serve.endswith("pipewarden serve")
    assert test.endswith("pytest")


def test_ci_runs_the_readme_test_command() -> None:
    _, test = _quick_start_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    marked = ci.split("# README test command:\n", 1)[1].splitlines()[0]
    assert marked == test
