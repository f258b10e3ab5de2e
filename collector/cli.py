"""The `pipewarden` command: parses flags, builds Settings, delegates."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from collector.settings import Settings, SettingsError


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except SettingsError as error:
        raise click.UsageError(str(error)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pipewarden")
def main() -> None:
    """pipewarden: governance and observability for the data pipelines you already run.

    Settings come from PIPEWARDEN_* environment variables (see the README), then flags.
    """


@main.command()
@click.option("--host", help="Address to listen on. [default: 127.0.0.1, PIPEWARDEN_HOST]")
@click.option("--port", type=int, help="Port to listen on. [default: 5000, PIPEWARDEN_PORT]")
@click.option(
    "--database-url",
    help="Store URL. [default: sqlite:///./pipewarden.db, PIPEWARDEN_DATABASE_URL]",
)
def serve(host: str | None, port: int | None, database_url: str | None) -> None:
    """Run the collector: OpenLineage in at /api/v1/lineage, Marquez-compatible reads out.

    The store's schema is migrated at start. Stop with Ctrl-C (SIGINT) or SIGTERM: events
    already acknowledged are committed; requests in flight are finished.
    """
    import uvicorn

    from collector.api.app import create_app

    settings = _settings(host=host, port=port, database_url=database_url)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    click.echo(
        f"pipewarden collector on http://{settings.host}:{settings.port} "
        f"(store: {_redacted(settings.database_url)})",
        err=True,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )


@main.group()
def db() -> None:
    """Manage the store."""


@db.command("upgrade")
@click.option("--database-url", help="Store URL. [default: PIPEWARDEN_DATABASE_URL]")
def db_upgrade(database_url: str | None) -> None:
    """Apply the store's migrations (`serve` also does this at start)."""
    from collector.store.engine import make_engine
    from collector.store.migrate import current_revision, head_revision, upgrade

    settings = _settings(database_url=database_url)
    engine = make_engine(settings.database_url, writer=True)
    try:
        before = current_revision(engine)
        upgrade(engine)
        click.echo(
            f"store {_redacted(settings.database_url)}: revision {before or 'none'} → "
            f"{head_revision()}"
        )
    finally:
        engine.dispose()


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main())
