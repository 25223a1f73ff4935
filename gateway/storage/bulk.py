"""Many rows into one table at once: PostgreSQL's COPY on asyncpg, a multi-row INSERT elsewhere.

A reconciliation run writes one item per statement line and one event per reconciled payment:
at a million lines the INSERT's bind-parameter handling, not the database, is the cost, and
COPY carries the same rows in a fraction of the time. Inside the caller's transaction, like any
statement (COPY is transactional).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Table, any_, bindparam, insert
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["insert_records", "insert_rows", "one_of"]


async def insert_rows(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts of column values; the table's autoincrement key left out)."""
    if not rows:
        return
    columns = [c.name for c in table.columns if c.name in rows[0]]
    try:  # rows of one shape (the usual case): a C-level getter, not a loop per value
        get = itemgetter(*columns)
        records = [get(r) for r in rows] if len(columns) > 1 else [(get(r),) for r in rows]
    except KeyError:  # a key another row lacks is NULL there
        records = [tuple(r.get(c) for c in columns) for r in rows]
    await insert_records(conn, table, columns, records)


async def insert_records(conn: AsyncConnection, table: Table, columns: Sequence[str],
                         records: Sequence[Sequence[Any]]) -> None:
    """Insert ``records`` (tuples of the values of ``columns``, in that order)."""
    if not records:
        return
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "asyncpg":
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_records_to_table(table.name, records=records, columns=list(columns))
        return
    await conn.execute(insert(table), [dict(zip(columns, r, strict=True)) for r in records])


def one_of(conn: AsyncConnection, column: ColumnElement[Any],
           values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN values`` for a batch of thousands: on PostgreSQL one array parameter
    (``= ANY($1)``), so the statement's text is the same for every batch and SQLAlchemy does
    not render and bind a placeholder per value (a noticeable part of a large run's CPU);
    elsewhere the plain IN list."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))
