"""`pipewarden dashboards build`: where it writes and what it says."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli import main

GENERATED = Path(__file__).parents[2] / "dashboards" / "generated"


def test_build_writes_the_tree_into_out_and_lists_it(tmp_path: Path) -> None:
    out = tmp_path / "new" / "dir"
    result = CliRunner().invoke(main, ["dashboards", "build", "--out", str(out)])

    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(
        p.relative_to(GENERATED).as_posix() for p in GENERATED.rglob("*") if p.is_file()
    )
    assert result.output.splitlines() == [str(out / name) for name in written]


def test_build_defaults_to_a_directory_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["dashboards", "build"])
    assert result.exit_code == 0, result.output
    target = tmp_path / "pipewarden-dashboards" / "grafana" / "pipewarden-overview.json"
    assert target.read_bytes() == (GENERATED / "grafana" / "pipewarden-overview.json").read_bytes()


def test_build_replaces_files_it_wrote_before(tmp_path: Path) -> None:
    stale = tmp_path / "grafana" / "pipewarden-job.json"
    stale.parent.mkdir()
    stale.write_text("{}")
    result = CliRunner().invoke(main, ["dashboards", "build", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert stale.read_bytes() == (GENERATED / "grafana" / "pipewarden-job.json").read_bytes()


def test_build_into_a_file_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(main, ["dashboards", "build", "--out", str(blocker)])
    assert result.exit_code == 2
    assert "file" in result.output
    assert os.path.getsize(blocker) == 0
