"""`pipewarden token create | list | revoke`, and the token file they keep."""

from __future__ import annotations

import re
import stat
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from collector.auth import AuthFileError, TokenBook, digest_of, load_tokens, parse_tokens
from collector.cli import main

TOKEN = re.compile(r"^pw_[A-Za-z0-9_-]{43}$")


def token(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["token", *args], env=env or {"PIPEWARDEN_AUTH_FILE": ""})


def create(file: Path, name: str, role: str = "write", *namespaces: str) -> Result:
    options = [item for namespace in namespaces or ("shop",) for item in ("--namespace", namespace)]
    return token("create", "--file", str(file), "--name", name, "--role", role, *options)


def test_create_prints_the_token_once_and_keeps_only_its_hash(tmp_path: Path) -> None:
    file = tmp_path / "tokens.toml"
    result = create(file, "etl-shop", "write", "shop", "postgres://db:5432")
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert TOKEN.match(secret), result.stdout
    assert "shown only this once" in result.stderr
    assert secret not in result.stderr
    text = file.read_text()
    assert secret not in text
    assert digest_of(secret) in text
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    (entry,) = tomllib.loads(text)["token"]
    assert entry["name"] == "etl-shop"
    assert entry["role"] == "write"
    assert entry["namespaces"] == ["shop", "postgres://db:5432"]
    assert entry["sha256"] == digest_of(secret)
    assert entry["created"].tzinfo is not None
    found = TokenBook(load_tokens(str(file))).authenticate(secret)
    assert found is not None
    assert found.name == "etl-shop"
    assert found.covers("postgres://db:5432")
    assert not found.covers("billing")


def test_two_creates_make_two_different_tokens(tmp_path: Path) -> None:
    file = tmp_path / "tokens.toml"
    first = create(file, "a").stdout.strip()
    second = create(file, "b", "read", "*").stdout.strip()
    assert first != second
    book = TokenBook(load_tokens(str(file)))
    assert [t.name for t in book.tokens] == ["a", "b"]
    reader = book.authenticate(second)
    assert reader is not None
    assert reader.all_namespaces
    assert reader.has_role("read")
    assert not reader.has_role("write")


def test_create_refuses_a_duplicate_name_and_leaves_the_file_alone(tmp_path: Path) -> None:
    file = tmp_path / "tokens.toml"
    create(file, "etl-shop")
    before = file.read_text()
    result = create(file, "etl-shop", "admin", "*")
    assert result.exit_code == 1
    assert "a token named 'etl-shop' exists" in result.output
    assert file.read_text() == before


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--name", "x", "--role", "owner", "--namespace", "shop"], "'owner' is not one of"),
        (["--name", "x", "--role", "read"], "Missing option '--namespace'"),
        (["--name", "has space", "--role", "read", "--namespace", "s"], "must be letters"),
        (["--name", "x", "--role", "read", "--namespace", ""], "namespaces must be a list"),
    ],
)
def test_create_refuses_what_cannot_be_used(tmp_path: Path, args: list[str], problem: str) -> None:
    file = tmp_path / "tokens.toml"
    result = token("create", "--file", str(file), *args)
    assert result.exit_code == 2
    assert problem in result.output
    assert not file.exists()


def test_odd_namespaces_round_trip(tmp_path: Path) -> None:
    file = tmp_path / "tokens.toml"
    odd = ['quote"d', "back\\slash", "tab\there", "ünï", "s3://bucket/path"]
    assert create(file, "odd", "read", *odd).exit_code == 0
    (found,) = load_tokens(str(file))
    assert list(found.namespaces) == odd


def test_list_shows_names_roles_namespaces_never_tokens(tmp_path: Path) -> None:
    file = tmp_path / "tokens.toml"
    secrets = [
        create(file, "etl-shop", "write", "shop").stdout.strip(),
        create(file, "grafana", "read", "*").stdout.strip(),
    ]
    result = token("list", "--file", str(file))
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "ROLE", "NAMESPACES", "CREATED"]
    assert [row.split()[:3] for row in rows] == [
        ["etl-shop", "write", "shop"],
        ["grafana", "read", "*"],
    ]
    for secret in secrets:
        assert secret not in result.output
        assert digest_of(secret) not in result.output


def test_revoke_removes_one_token_and_keeps_the_others(tmp_path: Path) -> None:
    file = tmp_path / "tokens.toml"
    kept = create(file, "keep").stdout.strip()
    gone = create(file, "gone").stdout.strip()
    create(file, "also-kept", "read", "*")
    result = token("revoke", "gone", "--file", str(file))
    assert result.exit_code == 0, result.output
    assert "kill -HUP" in result.output
    book = TokenBook(load_tokens(str(file)))
    assert [t.name for t in book.tokens] == ["keep", "also-kept"]
    assert book.authenticate(gone) is None
    assert book.authenticate(kept) is not None
    assert digest_of(gone) not in file.read_text()
    assert stat.S_IMODE(file.stat().st_mode) == 0o600


def test_revoking_an_unknown_name_fails_clearly(tmp_path: Path) -> None:
    file = tmp_path / "tokens.toml"
    create(file, "keep")
    before = file.read_text()
    result = token("revoke", "nobody", "--file", str(file))
    assert result.exit_code == 1
    assert "no token named 'nobody' (known: keep)" in result.output
    assert file.read_text() == before
    missing = token("revoke", "keep", "--file", str(tmp_path / "absent.toml"))
    assert missing.exit_code == 1
    assert "token file not found" in missing.output


def test_the_file_comes_from_pipewarden_auth_file(tmp_path: Path) -> None:
    file = tmp_path / "from-env.toml"
    env = {"PIPEWARDEN_AUTH_FILE": str(file)}
    made = token("create", "--name", "n", "--role", "read", "--namespace", "s", env=env)
    assert made.exit_code == 0, made.output
    assert [t.name for t in load_tokens(str(file))] == ["n"]
    assert "n " in token("list", env=env).stdout
    unnamed = token("list")
    assert unnamed.exit_code == 2
    assert "--file or PIPEWARDEN_AUTH_FILE" in unnamed.output


def test_token_help_explains_roles_and_namespaces() -> None:
    result = CliRunner().invoke(main, ["token", "--help"])
    assert result.exit_code == 0
    for word in ("create", "list", "revoke", "read", "write", "admin", "namespace", "SHA-256"):
        assert word in result.output
    assert "token" in CliRunner().invoke(main, ["--help"]).output


SHA = "a" * 64


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("[[token]]\nname = 'a'\nrole = 'read'\nnamespaces = ['s']\nsha256 = 'xyz'\n", 5, "sha256"),
        ("[[token]]\nname = 'a'\nrole = 'read'\nsha256 = '" + SHA + "'\n", 1, "namespaces is miss"),
        (
            "[[token]]\nname = 'a'\nrole = 'r'\nnamespaces = ['s']\nsha256 = '" + SHA + "'\n",
            3,
            "role",
        ),
        (
            "[[token]]\nname = 'a'\nrole = 'read'\nnamespaces = []\nsha256 = '" + SHA + "'\n",
            4,
            "namespaces must be a list",
        ),
        (
            "[[token]]\nname = 'a'\nrole = 'read'\nnamespaces = ['s']\nsha256 = '"
            + SHA
            + "'\nsecret = 'x'\n",
            6,
            "secret is not a known key",
        ),
        (
            "[[token]]\nname = 'a'\nrole = 'read'\nnamespaces = ['s']\nsha256 = '"
            + SHA
            + "'\n\n[[token]]\nname = 'a'\nrole = 'read'\nnamespaces = ['s']\nsha256 = '"
            + "b" * 64
            + "'\n",
            7,
            "a second token named 'a'",
        ),
        ("[[token]]\nname = 'a'\nrole = \n", 3, "not valid TOML"),
        ("[server]\nport = 1\n", 1, "unknown key 'server'"),
        ("token = [{name = 'a'}]\n", 1, "written as [[token]]"),
    ],
)
def test_an_invalid_file_names_the_line_and_the_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(AuthFileError) as refused:
        parse_tokens(text, "tokens.toml")
    assert refused.value.line == line
    assert reason in refused.value.reason
    assert str(refused.value).startswith(f"tokens.toml:{line}: ")
