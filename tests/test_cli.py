"""The `pipewarden` command, through click's test runner."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from collector.cli import main
from collector.store.engine import make_engine
from collector.store.migrate import current_revision


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "serve" in result.output
    assert "db" in result.output


def test_serve_help_explains_its_flags() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in ("--host", "--port", "--database-url"):
        assert flag in result.output


def test_db_upgrade_migrates_the_store(database_url: str) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert "revision none → 0007" in result.output
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == "0007"
    finally:
        engine.dispose()


def test_a_bad_setting_is_a_usage_error_naming_the_variable() -> None:
    result = CliRunner().invoke(
        main, ["db", "upgrade"], env={"PIPEWARDEN_DATABASE_URL": "mysql://nope/db"}
    )
    assert result.exit_code == 2
    assert "PIPEWARDEN_DATABASE_URL" in result.output


def test_serve_refuses_an_invalid_policy_naming_file_and_line(tmp_path: Path) -> None:
    policy = tmp_path / "pipewarden.toml"
    policy.write_text('[defaults]\nmode = "sometimes"\n')
    result = CliRunner().invoke(
        main,
        ["serve", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"],
        env={"PIPEWARDEN_POLICY": str(policy)},
    )
    assert result.exit_code == 1
    assert f"policy refused: {policy}:2: [defaults] mode must be" in result.output


def test_serve_refuses_a_named_policy_file_that_does_not_exist(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["serve", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"],
        env={"PIPEWARDEN_POLICY": str(tmp_path / "missing.toml")},
    )
    assert result.exit_code == 1
    assert "policy file not found" in result.output
