"""The `pipewarden` command: parses flags, builds Settings, delegates."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import click

from collector.lineage.cli import lineage
from collector.settings import Settings, SettingsError
from collector.token_cli import token
from dashboards.cli import dashboards

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from collector.retention import Retention, Write

T = TypeVar("T")


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
    already acknowledged are committed; requests in flight are finished. With
    PIPEWARDEN_AUTH_FILE set, every /api/v1 request needs a token (see `pipewarden token`);
    without it the API is open, so keep the default loopback --host. SIGHUP reloads the
    policy and the token file.
    """
    import uvicorn

    from collector.api.app import create_app
    from collector.auth import AuthFileError, access_notice
    from gates.policy import PolicyError

    settings = _settings(host=host, port=port, database_url=database_url)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    click.echo(
        f"pipewarden collector on http://{settings.host}:{settings.port} "
        f"(store: {_redacted(settings.database_url)})",
        err=True,
    )
    # uvicorn re-raises the signal that stopped it once it has shut down; a graceful stop
    # is a success, so end with status 0 then instead of dying of the signal.
    try:
        app = create_app(settings, background_process=settings.derives_in_background)
    except PolicyError as error:
        raise click.ClickException(f"policy refused: {error}") from None
    except AuthFileError as error:
        raise click.ClickException(f"token file refused: {error}") from None
    click.echo(access_notice(settings.host, app.state.auth), err=True)
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, _exit_after_graceful_stop)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )


def _exit_after_graceful_stop(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--job", required=True, help="The job's name, as pipewarden and Marquez show it.")
@click.option("--namespace", help="The job's namespace. [default: PIPEWARDEN_NAMESPACE or default]")
@click.option(
    "--dataset-namespace",
    help="Namespace of declared datasets that are not local files. [default: the job's]",
)
@click.option("--input", "inputs", multiple=True, metavar="DS", help="A dataset the job reads.")
@click.option("--output", "outputs", multiple=True, metavar="DS", help="A dataset it writes.")
@click.option(
    "--sql",
    "sql_files",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="SQL the job runs: reported for lineage and judged by the gate.",
)
@click.option("--dialect", help="SQL dialect of --sql files (postgres, snowflake, tsql, …).")
@click.option(
    "--check",
    "checks",
    multiple=True,
    metavar="DS=SCHEMA.yaml@FILE",
    help="Validate a local CSV/Parquet file with a pandera schema after the run.",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 100),
    default=0,
    show_default=True,
    help="Re-run a failed command this many times, each try its own run.",
)
@click.option(
    "--retry-delay",
    type=click.FloatRange(0),
    default=5.0,
    show_default=True,
    help="Seconds before the first retry; doubled for each further one.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    help="Stop the command after this many seconds (TERM, then KILL) and exit 124.",
)
@click.option(
    "--kill-grace",
    type=click.FloatRange(0),
    default=10.0,
    show_default=True,
    help="Seconds between TERM and KILL when stopping the command.",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(
    job: str,
    namespace: str | None,
    dataset_namespace: str | None,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    sql_files: tuple[Path, ...],
    dialect: str | None,
    checks: tuple[str, ...],
    retries: int,
    retry_delay: float,
    timeout: float | None,
    kill_grace: float,
    command: tuple[str, ...],
) -> None:
    """Wrap a command: ask the gate, report START and its end, pass its exit code through.

    \b
        pipewarden run --job orders_daily --input public.orders \\
            --output ./out/daily.csv --sql daily.sql -- ./etl.sh --date today

    The command's output passes through live; SIGINT, SIGTERM and SIGHUP reach it. Events
    are spooled on disk before they are sent, so a collector that is down costs the job at
    most about a second and loses nothing: the next run (or `pipewarden replay`) sends them.
    Exit code: the command's; 124 after --timeout; 1 when an enforcing gate blocks the job.
    """
    from collector.shim.checks import CheckSpec
    from collector.shim.run import RunSpec, run_shim

    try:
        check_specs = tuple(CheckSpec.parse(text) for text in checks)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--check") from None
    settings = _client_settings()
    spec = RunSpec(
        job=job,
        namespace=namespace or settings.namespace,
        command=command,
        dataset_namespace=dataset_namespace,
        inputs=inputs,
        outputs=outputs,
        sql_files=sql_files,
        dialect=dialect,
        checks=check_specs,
        retries=retries,
        retry_delay=retry_delay,
        timeout=timeout,
        kill_grace=kill_grace,
    )
    sys.exit(run_shim(spec, settings))


@main.command()
@click.argument("namespace")
@click.argument("job")
@click.option("--json", "as_json", is_flag=True, help="Print the gate's answer as JSON.")
def gate(namespace: str, job: str, as_json: bool) -> None:
    """Ask the gate whether JOB in NAMESPACE may run now, and print why.

    \b
    Exit codes: 0 allow, warn, or a would-block in monitor mode;
                1 blocked by an enforcing gate; 2 usage error; 3 collector unreachable.
    """
    from collector.shim.gate_cli import ask_gate

    sys.exit(ask_gate(_client_settings(), namespace, job, as_json))


@main.command()
@click.option("--namespace", help="Only the jobs of this namespace.")
def assess(namespace: str | None) -> None:
    """Score each job's maturity (1 cron only … 5 enforced) and say what would raise it."""
    from collector.shim.gate_cli import print_maturity

    sys.exit(print_maturity(_client_settings(), namespace))


@main.command()
def replay() -> None:
    """Send the events the shim spooled while the collector was unreachable, in order.

    Exit 0 when the spool is empty afterwards, 3 when the collector is still unreachable.
    Sending twice stores nothing twice: the collector recognises a repeated event.
    """
    from collector.shim.run import replay_spool

    sys.exit(replay_spool(_client_settings()))


@main.command()
@click.option(
    "--url",
    metavar="URL",
    help="Tell the story to a running collector instead (events over HTTP only).",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the store, the scripts' files and the spool. [default: a new temp dir]",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5000,
    show_default=True,
    help="Port of the embedded collector; 0 picks a free one.",
)
@click.option(
    "--no-serve",
    is_flag=True,
    help="Stop the embedded collector after the story instead of serving until Ctrl-C.",
)
@click.option(
    "--print-policy",
    is_flag=True,
    help="Print the demo policy's path and exit (for PIPEWARDEN_POLICY).",
)
def demo(
    url: str | None, directory: Path | None, port: int, no_serve: bool, print_policy: bool
) -> None:
    """Show everything pipewarden does, in one command: the first thing to run.

    \b
    Starts a collector with the demo policy on a fresh SQLite store, loads three weeks of
    history of a small warehouse (seven jobs), then runs today's jobs: legacy scripts
    through `pipewarden run`, a dbt model and an Airflow task reporting OpenLineage. It
    shows a runtime spike, a volume drop, a missed run, an overrun, a failure streak, a
    dropped column that blocks its consumer, PII stopped before a public table, a failed
    pandera check, and events spooled while the collector was down. Then it prints what was
    found, with links to the API, and how to point Prometheus and Grafana at the collector,
    which keeps serving until Ctrl-C.

    With --url the same story goes to a running collector (namespace demo, or demo-2 … when
    taken); for the enforced gates and the SLA, start that collector with the demo policy.
    Exit 0 when the story went as told, 1 when something did not.

    \b
        PIPEWARDEN_POLICY=$(pipewarden demo --print-policy) pipewarden serve
        pipewarden demo --url http://127.0.0.1:5000
    """
    from collector.demo import policy_path
    from collector.demo.client import CollectorError
    from collector.demo.runner import Options, run

    if print_policy:
        click.echo(policy_path())
        return

    options = Options(
        url=url,
        directory=directory,
        port=port,
        serve=not no_serve,
        api_key=_client_settings().api_key,
    )
    try:
        sys.exit(run(options, click.echo))
    except CollectorError as error:
        raise click.ClickException(str(error)) from None


main.add_command(lineage)
main.add_command(dashboards)
main.add_command(token)


def _client_settings() -> Settings:
    """Settings for the shim: a bad variable is reported, never a reason to skip the job."""
    try:
        return Settings.from_env()
    except SettingsError as error:
        click.echo(f"pipewarden: {error}; using defaults", err=True)
        return Settings()


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


@db.command("prune")
@click.option("--database-url", help="Store URL. [default: PIPEWARDEN_DATABASE_URL]")
@click.option(
    "--retention-days",
    type=click.IntRange(0),
    help="Days of history to keep; 0 keeps everything. [default: 90, PIPEWARDEN_RETENTION_DAYS]",
)
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
def db_prune(database_url: str | None, retention_days: int | None, dry_run: bool) -> None:
    """Remove history older than the retention now, as running collectors do every hour.

    Runs and raw events older than the retention (by event time) go, with what hangs off
    them; each job's latest run and each dataset's current schema stay. Safe while
    collectors run: it works in small batches, one short transaction each.
    """
    from collector.retention import Retention
    from collector.store.engine import make_engine
    from collector.store.migrate import current_revision, head_revision

    settings = _settings(database_url=database_url, retention_days=retention_days)
    store = _redacted(settings.database_url)
    if settings.retention_days == 0:
        click.echo(f"store {store}: retention is off (0 days); nothing removed")
        return
    engine = make_engine(settings.database_url, writer=True)
    try:
        revision = current_revision(engine)
        if revision != head_revision():
            raise click.ClickException(
                f"store {store} is at revision {revision or 'none'}, not "
                f"{head_revision()}: run `pipewarden db upgrade` first"
            )
        retention = Retention(engine, _own_transaction(engine), settings.retention_days)
        click.echo(f"store {store}: {_prune(engine, retention, dry_run)}")
    finally:
        engine.dispose()


def _prune(engine: Engine, retention: Retention, dry_run: bool) -> str:
    """Count, then (unless a dry run) remove with a progress bar; what was done and how long."""
    import time
    from datetime import UTC, datetime

    from collector.retention import claimed

    now = datetime.now(UTC)
    cutoff = retention.cutoff(now).isoformat(timespec="seconds").replace("+00:00", "Z")
    expected = retention.count(now)
    if dry_run:
        return f"history before {cutoff}: would remove {expected.summary()}"
    started = time.monotonic()
    shown = sys.stderr.isatty() and expected.picked > 0  # no bar in cron mail or logs
    with (
        claimed(engine, wait=True),
        click.progressbar(length=expected.picked, label="removing", file=sys.stderr)
        if shown
        else contextlib.nullcontext() as bar,
    ):
        removed = retention.prune(now, progress=(lambda _w, n: bar.update(n)) if bar else None)
    seconds = time.monotonic() - started
    return (
        f"history before {cutoff}: removed {removed.summary()} "
        f"in {removed.batches} batches, {seconds:.1f} s"
    )


def _own_transaction(engine: Engine) -> Write[Any]:
    """How work outside a collector writes: each call in its own transaction."""

    def write(action: Callable[[Connection], T]) -> T:
        with engine.begin() as connection:
            return action(connection)

    return write


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main())
