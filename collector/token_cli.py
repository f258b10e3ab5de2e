"""`pipewarden token create | list | revoke`: the API tokens in the token file.

Registered on the `pipewarden` group by the collector's CLI. The file is the one
`PIPEWARDEN_AUTH_FILE` names unless `--file` says otherwise; a running collector picks up
changes on SIGHUP.
"""

from __future__ import annotations

from pathlib import Path

import click

from collector.auth import ALL_NAMESPACES, ROLES, AuthFileError, create_token, load_tokens
from collector.auth import revoke_token as remove_token
from collector.settings import Settings, SettingsError, env_name

_FILE_HELP = f"The token file. [default: {env_name('auth_file')}]"


def _token_file(file: Path | None) -> Path:
    if file is not None:
        return file
    try:
        configured = Settings.from_env().auth_file
    except SettingsError as error:
        raise click.UsageError(str(error)) from None
    if not configured:
        raise click.UsageError(f"name the token file with --file or {env_name('auth_file')}")
    return Path(configured)


_file_option = click.option(
    "--file", "file", type=click.Path(dir_okay=False, path_type=Path), help=_FILE_HELP
)


@click.group("token")
def token() -> None:
    """API tokens: with a token file set, every /api/v1 request needs one.

    \b
    Roles: read (reads, gates), write (also sends events), admin (also finding feedback),
    each for its namespaces (--namespace, repeatable; * for all). Only each token's SHA-256
    is kept in the file; send `kill -HUP` to a running collector after a change.
    """


@token.command("create")
@_file_option
@click.option("--name", required=True, help="A name for the token: who or what uses it.")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the token may do.")
@click.option(
    "--namespace",
    "namespaces",
    multiple=True,
    required=True,
    metavar="NS",
    help=f"A namespace the token reads or writes; repeatable; {ALL_NAMESPACES} for all.",
)
def create(file: Path | None, name: str, role: str, namespaces: tuple[str, ...]) -> None:
    """Make a token and print it, once: only its hash is written to the file.

    \b
        export PIPEWARDEN_API_KEY=$(pipewarden token create --file tokens.toml \\
            --name etl-shop --role write --namespace shop)
    """
    path = _token_file(file)
    try:
        secret, made = create_token(path, name, role, namespaces)
    except AuthFileError as error:
        raise click.ClickException(str(error)) from None
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    click.echo(secret)
    click.echo(
        f"{made.describe()} added to {path}; it is shown only this once. "
        "Send SIGHUP to a running collector to load it.",
        err=True,
    )


@token.command("list")
@_file_option
def list_tokens(file: Path | None) -> None:
    """Each token's name, role, namespaces and creation time (never the token or its hash)."""
    path = _token_file(file)
    try:
        tokens = load_tokens(str(path))
    except AuthFileError as error:
        raise click.ClickException(str(error)) from None
    rows = [("NAME", "ROLE", "NAMESPACES", "CREATED")]
    for found in tokens:
        created = found.created.isoformat() if found.created else "-"
        rows.append((found.name, found.role, ",".join(found.namespaces), created))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*padded, row[3]]))


@token.command("revoke")
@_file_option
@click.argument("name")
def revoke(file: Path | None, name: str) -> None:
    """Remove the token NAME from the file; a collector refuses it after SIGHUP."""
    path = _token_file(file)
    try:
        removed = remove_token(path, name)
    except AuthFileError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"{removed.describe()} revoked in {path}. Send SIGHUP to a running collector "
        "(kill -HUP <pid>) to refuse it from now on."
    )
