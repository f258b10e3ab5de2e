"""A throwaway PostgreSQL server for the test session, and a way to empty its database.

Every store test runs on SQLite and on a real PostgreSQL server, so PostgreSQL is a hard
requirement of the suite: when its binaries are missing the session fails with a clear
message, it never skips. Set ``PIPEWARDEN_TEST_POSTGRES_URL`` to test against a server
you already run instead of the throwaway one.

The throwaway server lives in a fresh temporary directory, listens only on 127.0.0.1 on a
free port, trusts every local connection and runs with ``fsync=off``: it is fast, holds
nothing worth keeping, and is stopped and deleted when the session ends. PostgreSQL
refuses to run as root, which is how CI and the development machines run everything, so
as root the server runs as the ``postgres`` OS user that Debian's package creates.

A test that stops PostgreSQL under load starts a server of its own with
``throwaway_server()`` (whatever ``PIPEWARDEN_TEST_POSTGRES_URL`` says), so the session's
server is never taken away from the other tests.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from sqlalchemy import create_engine, text

URL_ENV = "PIPEWARDEN_TEST_POSTGRES_URL"
DATABASE = "pipewarden_test"
SUPERUSER = "postgres"
OS_USER = "postgres"
DEBIAN_BINDIRS = Path("/usr/lib/postgresql")
NOT_FOUND = (
    "PostgreSQL server binaries not found: install the `postgresql` package "
    "(apt-get install -y --no-install-recommends postgresql) "
    f"or set {URL_ENV}"
)
START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it
START_TIMEOUT_S = 60
COMMAND_TIMEOUT_S = 120


def postgres_url() -> Iterator[str]:
    """Yield a SQLAlchemy URL to an empty PostgreSQL database; clean up after the last use.

    The body of a session-scoped pytest fixture (``yield from postgres_url()``). With
    ``PIPEWARDEN_TEST_POSTGRES_URL`` set it yields that URL and starts nothing. Otherwise
    it yields the URL of a `throwaway_server`, which is stopped and deleted when the
    generator is resumed (or closed). Raises RuntimeError when PostgreSQL cannot be found
    or started.
    """
    configured = os.environ.get(URL_ENV)
    if configured:
        yield configured
        return
    with throwaway_server() as server:
        yield server.url


class Server:
    """A running throwaway PostgreSQL server that a test may stop and start again.

    It keeps its data directory and its port across a restart, so clients reconnect to
    the same URL and find what was committed before the stop.
    """

    def __init__(self, bindir: Path, base: Path, run_as: pwd.struct_passwd | None) -> None:
        self._bindir = bindir
        self._base = base
        self._data = base / "data"
        self._run_as = run_as
        self.port = 0

    @property
    def url(self) -> str:
        """``postgresql+psycopg://postgres@127.0.0.1:PORT/pipewarden_test``."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def running(self) -> bool:
        return (self._data / "postmaster.pid").exists()

    def start(self) -> None:
        """Start the server (on its earlier port after a stop) and wait until it accepts."""
        self.port = _start(self._bindir, self._base, self._data, self._run_as, self.port or None)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: "fast" disconnects clients and rolls back their transactions."""
        _stop(self._bindir, self._base, self._data, self._run_as, modes=(mode, "immediate"))


@contextlib.contextmanager
def throwaway_server() -> Iterator[Server]:
    """A new PostgreSQL cluster in a temporary directory, started, with an empty
    ``pipewarden_test`` database; stopped and deleted on exit.
    """
    bindir = _find_bindir()
    run_as = _server_user()
    base = Path(tempfile.mkdtemp(prefix="pipewarden-pg-"))
    server = Server(bindir, base, run_as)
    try:
        _prepare_dirs(base, base / "data", run_as)
        _run(run_as, [str(bindir / "initdb"), *_initdb_args(base / "data")], cwd=base)
        server.start()
        _create_database(server.port)
        yield server
    finally:
        try:
            if server.running:
                server.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)


def reset_database(url: str) -> None:
    """Drop and recreate the ``public`` schema, so a test starts from an empty database.

    Cheaper than a new database per test, and it also removes what migrations leave behind
    (tables, sequences, types, the alembic version table). A lock timeout turns a session
    that a previous test leaked, still holding a lock on the schema, into an error rather
    than a hang.
    """
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


def _find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: from PATH, else Debian's newest.

    Debian does not put the server binaries on PATH; they live in
    ``/usr/lib/postgresql/VERSION/bin``. A symlink on PATH is resolved, so ``initdb`` and
    ``pg_ctl`` always come from the same installation.
    """
    on_path = shutil.which("initdb")
    if on_path is not None:
        bindir = Path(on_path).resolve().parent
        if (bindir / "pg_ctl").is_file():
            return bindir
    candidates: list[tuple[tuple[int, ...], Path]] = []
    if DEBIAN_BINDIRS.is_dir():
        for version_dir in DEBIAN_BINDIRS.iterdir():
            bindir = version_dir / "bin"
            if not re.fullmatch(r"\d+(\.\d+)*", version_dir.name):
                continue
            if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
                version = tuple(int(part) for part in version_dir.name.split("."))
                candidates.append((version, bindir))
    if not candidates:
        raise RuntimeError(NOT_FOUND)
    return max(candidates)[1]


def _server_user() -> pwd.struct_passwd | None:
    """The OS user to run the server as: ``postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        raise RuntimeError(
            f"running as root, and PostgreSQL refuses to run as root, but there is no "
            f"`{OS_USER}` OS user to run it as: install the `postgresql` package "
            f"(apt-get install -y --no-install-recommends postgresql) or set {URL_ENV}"
        ) from None


def _prepare_dirs(base: Path, data: Path, run_as: pwd.struct_passwd | None) -> None:
    """Make the data dir, socket dir and log file, owned by the server's user.

    ``mkdtemp`` makes ``base`` private to its creator; when the server runs as another
    user, ``base`` must be traversable (0o755) and what the server writes must be its own.
    """
    base.chmod(0o755)
    data.mkdir(mode=0o700)
    (base / "socket").mkdir(mode=0o755)
    (base / "postgres.log").touch(mode=0o644)
    if run_as is not None:
        for path in (data, base / "socket", base / "postgres.log"):
            os.chown(path, run_as.pw_uid, run_as.pw_gid)


def _initdb_args(data: Path) -> list[str]:
    """initdb's arguments: trust auth, no fsync, UTF-8 and the C locale.

    The C locale needs no generated system locale, and its byte-wise collation sorts text
    the way SQLite does.
    """
    return [
        "-D",
        str(data),
        "-A",
        "trust",
        "-U",
        SUPERUSER,
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C",
    ]


def _start(
    bindir: Path,
    base: Path,
    data: Path,
    run_as: pwd.struct_passwd | None,
    port: int | None = None,
) -> int:
    """Start the server on 127.0.0.1 and wait until it accepts connections.

    Returns the port: `port` when given (a restart), else a free one. The server gets a
    session of its own, so a Ctrl-C in the terminal reaches pytest (whose teardown then
    stops the server) and not the server itself.
    """
    log = base / "postgres.log"
    failure = ""
    for _ in range(START_ATTEMPTS if port is None else 1):
        port_now = port or _free_port()
        options = (
            f"-F -p {port_now} -k {base / 'socket'} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=200"
        )
        command = [
            str(bindir / "pg_ctl"),
            "start",
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "-D",
            str(data),
            "-l",
            str(log),
            "-o",
            options,
        ]
        result = _run(run_as, command, cwd=base, check=False, new_session=True)
        if result.returncode == 0:
            return port_now
        failure = f"{_describe(result)}\n--- server log ---\n{_tail(log)}"
        if "could not bind" not in failure and "already in use" not in failure:
            break
    raise RuntimeError(f"could not start PostgreSQL in {data}:\n{failure}")


def _create_database(port: int) -> None:
    """Create the empty test database through the default ``postgres`` database."""
    engine = create_engine(
        f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/postgres",
        isolation_level="AUTOCOMMIT",
    )
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    finally:
        engine.dispose()


def _stop(
    bindir: Path,
    base: Path,
    data: Path,
    run_as: pwd.struct_passwd | None,
    modes: Sequence[str] = ("fast", "immediate"),
) -> None:
    """Stop the server, disconnecting clients; fall back to an immediate shutdown.

    A server that is already gone (postmaster.pid removed, say after a signal) counts as
    stopped. Raises RuntimeError when it is still running after both attempts.
    """
    attempts: list[str] = []
    for mode in modes:
        if not (data / "postmaster.pid").exists():
            return
        command = [str(bindir / "pg_ctl"), "stop", "-w", "-t", "30", "-m", mode, "-D", str(data)]
        result = _run(run_as, command, cwd=base, check=False)
        if result.returncode == 0:
            return
        attempts.append(f"{mode}: {_describe(result)}")
    if (data / "postmaster.pid").exists():
        joined = "\n".join(attempts)
        raise RuntimeError(f"could not stop PostgreSQL in {data}:\n{joined}")


def _run(
    run_as: pwd.struct_passwd | None,
    command: Sequence[str],
    *,
    cwd: Path,
    check: bool = True,
    new_session: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL program, as ``run_as`` when given (via ``runuser``).

    Output is captured, so it only shows up in an error. ``cwd`` must be readable by the
    server's user: the programs complain when they cannot stat their working directory.
    """
    argv = list(command)
    if run_as is not None:
        argv = ["runuser", "-u", run_as.pw_name, "--", *argv]
    result = subprocess.run(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
        start_new_session=new_session,
    )
    if check and result.returncode != 0:
        raise RuntimeError(_describe(result))
    return result


def _describe(result: subprocess.CompletedProcess[str]) -> str:
    """A failed command, its exit status and its output, for an error message."""
    command = " ".join(str(part) for part in result.args)
    return (
        f"`{command}` exited with {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}--- stderr ---\n{result.stderr}"
    )


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 40) -> str:
    """The last lines of the server log, or a note that there is none."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(no server log: {error})"
