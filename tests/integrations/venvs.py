"""Separate virtual environments for the tools the examples run (dbt-ol, …), kept in a cache.

Tools whose pins conflict with the collector's own dependencies (dbt-core pins pathspec
below what mypy needs) run from a venv of their own, as they would on a user's machine:
they talk to the collector over HTTP only. A venv is built once per requirements file
content, in `$XDG_CACHE_HOME/pipewarden-tests/venvs` (`~/.cache/...`), under a lock so two
test sessions never build the same one at once; a build that did not finish is redone.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

BUILD_TIMEOUT_S = 900
_DONE = ".pipewarden-complete"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pipewarden-tests" / "venvs"


def tool_venv(name: str, requirements: Path) -> Path:
    """The venv with exactly `requirements` installed (built if missing); its directory."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"{name}-{digest}"
    with open(root / f"{name}-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / _DONE).is_file():
            _build(venv, requirements)
    return venv


def _build(venv: Path, requirements: Path) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    done = subprocess.run(
        [*pip, "-r", str(requirements)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"installing {requirements} into {venv} failed ({done.returncode}):\n"
            f"{done.stdout}\n{done.stderr}"
        )
    (venv / _DONE).write_text(requirements.read_text())
