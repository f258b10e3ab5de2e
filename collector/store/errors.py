"""Telling a store that is away or busy (retry later) from a write that is wrong.

A lost or refused connection, PostgreSQL shutting down or starting up, a deadlock, and
SQLite's "database is locked" pass by themselves: the client is told to send again (503
with Retry-After), and nothing it sent was acknowledged. Anything else is a fault of the
write itself and is not retried.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

RETRY_AFTER_S = 2
# SQLSTATE classes that pass: connection exception, transaction rollback (serialization
# failure, deadlock), insufficient resources (too many connections, disk full), operator
# intervention (shutdown, starting up, cancelled); and "lock not available".
_PASSING_CLASSES = ("08", "40", "53", "57")
_PASSING_STATES = ("55P03",)
_SQLITE_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class StoreUnavailable(RuntimeError):
    """The store cannot take this write or read now; nothing was acknowledged: retry."""


def is_unavailable(error: BaseException) -> bool:
    """The error passes by itself: the same request, sent again later, can succeed."""
    if isinstance(error, StoreUnavailable | PoolTimeout):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    cause = error.orig if isinstance(error, DBAPIError) else error
    if isinstance(cause, psycopg.Error):
        state = cause.sqlstate
        # No SQLSTATE: the server could not be reached or the connection broke.
        if state is None:
            return isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError)
        return state.startswith(_PASSING_CLASSES) or state in _PASSING_STATES
    if isinstance(cause, sqlite3.OperationalError):
        return cause.sqlite_errorcode & 0xFF in _SQLITE_BUSY
    return False


def is_conflict(error: BaseException) -> bool:
    """A deadlock or serialization failure: the transaction may well succeed at once if run
    again (two collectors' writes crossed)."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    return isinstance(cause, psycopg.Error) and (cause.sqlstate or "").startswith("40")


def reason(error: BaseException) -> str:
    """What went wrong, in one line, without the SQL statement and parameters."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"
