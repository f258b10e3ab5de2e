"""UTC times in the store: the text SQLite keeps, and what reads give back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, insert, select
from sqlalchemy.exc import StatementError

from collector.store.engine import make_engine
from collector.store.tables import UTCDateTime

TIMES = [
    datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5))),
    datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    datetime(1, 1, 1, 5, 0, tzinfo=timezone(timedelta(hours=5))),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.fixture
def table(tmp_path: Path) -> tuple[Table, Engine]:
    times = Table(
        "times", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime)
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'times.db'}")
    times.metadata.create_all(engine)
    return times, engine


@pytest.mark.parametrize("at", TIMES, ids=str)
def test_a_time_is_kept_as_sqlites_utc_text_and_read_back_equal(
    table: tuple[Table, Engine], at: datetime
) -> None:
    times, engine = table
    with engine.begin() as connection:
        connection.execute(insert(times), [{"at": at}])
        (text,) = connection.exec_driver_sql("SELECT at FROM times").one()
        (back,) = connection.execute(select(times.c.at)).one()
    utc = at.astimezone(UTC)
    assert text == utc.strftime("%Y-%m-%d %H:%M:%S.%f").rjust(26, "0")
    assert back == at
    assert back.tzinfo is UTC


def test_a_time_without_an_offset_is_refused(table: tuple[Table, Engine]) -> None:
    times, engine = table
    with pytest.raises(StatementError, match="naive datetime"), engine.begin() as connection:
        connection.execute(insert(times), [{"at": datetime(2026, 1, 2)}])
