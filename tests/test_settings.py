"""The settings table: one entry per setting, each documented in the README, read loudly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from collector import settings as settings_module
from collector.settings import Settings, SettingsError, env_name

README = Path(__file__).parents[1] / "README.md"


def _readme_settings() -> dict[str, tuple[str, str]]:
    text = README.read_text()
    table = text.split("<!-- settings-table", 1)[1].split("<!-- end settings-table -->", 1)[0]
    rows = re.findall(r"^\| `(PIPEWARDEN_\w+)` \| `([^`]*)` \| (.+) \|$", table, re.MULTILINE)
    return {name: (default, meaning) for name, default, meaning in rows}


def test_readme_lists_every_setting_with_its_default_and_help() -> None:
    documented = _readme_settings()
    declared = {env_name(spec.name): spec for spec in settings_module.fields()}
    assert sorted(documented) == sorted(declared)
    for variable, spec in declared.items():
        default, meaning = documented[variable]
        assert default == str(spec.default), variable
        assert meaning == settings_module.help_of(spec), variable


def test_environment_values_are_parsed_by_type() -> None:
    loaded = Settings.from_env(
        {"PIPEWARDEN_PORT": "5123", "PIPEWARDEN_MAX_BODY_BYTES": "1_048_576"}
    )
    assert loaded.port == 5123
    assert loaded.max_body_bytes == 1_048_576
    assert loaded.database_url == "sqlite:///./pipewarden.db"


def test_flags_override_the_environment() -> None:
    loaded = Settings.from_env({"PIPEWARDEN_PORT": "5123"}, port=6000, host=None)
    assert loaded.port == 6000
    assert loaded.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("url", "choice", "second_process"),
    [
        ("sqlite:///p.db", "auto", False),
        ("postgresql+psycopg://u@h/db", "auto", True),
        ("sqlite:///p.db", "on", True),
        ("postgresql+psycopg://u@h/db", "off", False),
    ],
)
def test_the_second_process_is_for_postgresql_unless_told(
    url: str, choice: str, second_process: bool
) -> None:
    loaded = Settings.from_env(
        {"PIPEWARDEN_DATABASE_URL": url, "PIPEWARDEN_BACKGROUND_PROCESS": choice}
    )
    assert loaded.derives_in_background is second_process


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PIPEWARDEN_PORT", "fifty", "PIPEWARDEN_PORT='fifty': not a whole number"),
        ("PIPEWARDEN_PORT", "70000", "PIPEWARDEN_PORT must be between 1 and 65535"),
        ("PIPEWARDEN_MAX_BODY_BYTES", "10", "PIPEWARDEN_MAX_BODY_BYTES must be at least 1024"),
        ("PIPEWARDEN_LOG_LEVEL", "loud", "PIPEWARDEN_LOG_LEVEL must be one of"),
        ("PIPEWARDEN_DATABASE_URL", "mysql://x/y", "use sqlite:///path.db or postgresql"),
        ("PIPEWARDEN_BACKGROUND_PROCESS", "yes", "must be one of ['auto', 'off', 'on']"),
        (
            "PIPEWARDEN_RETENTION_DAYS",
            "-1",
            "PIPEWARDEN_RETENTION_DAYS must be 0 (keep everything)",
        ),
    ],
)
def test_unusable_values_fail_naming_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env({variable: value})
