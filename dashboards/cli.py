"""`pipewarden dashboards build|push`: the Grafana dashboards and Prometheus rules.

Registered on the `pipewarden` group by the collector's CLI. Only click loads with this
module; the dashboards are built when a command runs, so `pipewarden --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click

DEFAULT_OUT = Path("pipewarden-dashboards")
DEFAULT_FOLDER = "pipewarden"


@click.group("dashboards")
def dashboards() -> None:
    """Grafana dashboards and Prometheus rules, generated from code."""


@dashboards.command("build")
@click.option(
    "--out",
    type=click.Path(file_okay=False, writable=True, path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Directory to write into (created if needed; files there are replaced). "
    "Developers regenerate the committed copy with --out dashboards/generated.",
)
def build_command(out: Path) -> None:
    """Writes the dashboards (grafana/), Grafana provisioning files and Prometheus rules."""
    from dashboards.build import write

    for path in write(out):
        click.echo(path)


@dashboards.command("push")
@click.option(
    "--grafana-url",
    required=True,
    envvar="GRAFANA_URL",
    show_envvar=True,
    help="e.g. http://grafana:3000",
)
@click.option(
    "--token",
    required=True,
    envvar="GRAFANA_TOKEN",
    show_envvar=True,
    help="Grafana service account token (Editor); prefer the environment variable, which "
    "stays out of the shell's history.",
)
@click.option("--folder-uid", default=DEFAULT_FOLDER, show_default=True, help="Folder's uid.")
@click.option(
    "--folder-title",
    default=DEFAULT_FOLDER,
    show_default=True,
    help="Folder's title, used when the folder is created.",
)
@click.option(
    "--message",
    default="pushed by pipewarden dashboards push",
    show_default=True,
    help="Version note in the dashboards' history.",
)
def push_command(
    grafana_url: str, token: str, folder_uid: str, folder_title: str, message: str
) -> None:
    """Posts the dashboards to Grafana, into a folder (created if missing), replacing them."""
    from dashboards.build import dashboard_models
    from dashboards.push import Grafana, GrafanaError, ensure_folder, push

    grafana = Grafana(grafana_url, token)
    try:
        if ensure_folder(grafana, folder_uid, folder_title):
            click.echo(f"created folder {folder_title!r} (uid {folder_uid})")
        for pushed in push(grafana, dashboard_models(), folder_uid, message):
            click.echo(f"{pushed.title}: {pushed.url}")
    except GrafanaError as error:
        raise click.ClickException(str(error)) from None
