"""Marquez node ids (`job:<ns>:<name>`, `dataset:<ns>:<name>`): a namespace may hold colons."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Row


def split_lookup(
    connection: Connection,
    rest: str,
    lookup: Callable[[Connection, str, str], Row[Any] | None],
) -> Row[Any] | None:
    """The row `lookup(namespace, name)` finds for the first colon split of `rest` that exists.

    `postgres://db:5432:public.orders` is tried as (`postgres`, …), (`postgres://db`, …),
    (`postgres://db:5432`, `public.orders`), … until one names a stored job or dataset.
    """
    position = rest.find(":")
    while position != -1:
        row = lookup(connection, rest[:position], rest[position + 1 :])
        if row is not None:
            return row
        position = rest.find(":", position + 1)
    return None
