"""Connecting to the store: SQLite (WAL, one writer) by default, PostgreSQL for replicas."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

CONNECT_TIMEOUT_S = 5  # PostgreSQL: a server that does not answer is unavailable after this
BUSY_TIMEOUT_S = 10.0  # SQLite: how long to wait for another process's write lock


def make_engine(
    database_url: str, *, writer: bool = False, busy_timeout: float = BUSY_TIMEOUT_S, **options: Any
) -> Engine:
    """An engine for the store, with SQLite tuned for durability and concurrent readers.

    On SQLite the `writer` engine starts every transaction with BEGIN IMMEDIATE, taking the
    write lock up front instead of failing to upgrade a read lock mid-transaction; a lock
    held elsewhere for longer than `busy_timeout` seconds is an error (the store is busy).
    On PostgreSQL each connection is checked before use, so connections lost to a server
    restart are replaced by new ones without anyone noticing.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if writer:
            options.setdefault("pool_size", 1)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **options)
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, busy_timeout))
        begin = "BEGIN IMMEDIATE" if writer else "BEGIN"
        event.listen(engine, "begin", lambda connection: connection.exec_driver_sql(begin))
        return engine
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 10)
    if "connect_timeout" not in url.query:
        options.setdefault("connect_args", {"connect_timeout": CONNECT_TIMEOUT_S})
    return create_engine(url, pool_pre_ping=True, **options)


def _sqlite_pragmas(busy_timeout: float, dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself, so a write transaction takes its lock up front.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed (so acknowledged) event survives a crash of the machine, not only
    # of the process.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    cursor.close()
