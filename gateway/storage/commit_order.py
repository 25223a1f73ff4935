"""Commit order on PostgreSQL, for readers that follow a position and for ordered work.

A primary key is drawn when a row is inserted, not when it commits: on PostgreSQL a
transaction can insert pk 5, commit after another's pk 6, and a reader that already moved past
6 never sees 5. (SQLite serialises writers, so there pk order is commit order.) Two tools:

- ``xact_id()``: the inserting transaction's id (``xid8``: 64 bits, never wraps), stored with
  the row. Every transaction with an id below ``visible_horizon()`` (the current snapshot's
  xmin) has finished, and every later writer gets an id at or above it; so a reader that
  orders by (transaction id, pk) and reads only below the horizon can never be overtaken.
  A long-running writing transaction holds the horizon back (its rows, and later ones, wait).
- ``lock_key()``: a transaction-level advisory lock on a key, taken before the row's pk is
  drawn, so the writers of one key take turns and their pks follow their commit order.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ColumnElement, String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["lock_key", "lock_key_clause", "visible_horizon", "xact_id"]


def xact_id() -> ColumnElement[int]:
    """The current transaction's id as a bigint (PostgreSQL; assigns one if needed)."""
    return cast(cast(func.pg_current_xact_id(), String), BigInteger)


def visible_horizon() -> ColumnElement[int]:
    """The lowest transaction id that may still be running, as a bigint (PostgreSQL)."""
    return cast(cast(func.pg_snapshot_xmin(func.pg_current_snapshot()), String), BigInteger)


def lock_key_clause(key: ColumnElement[str]) -> ColumnElement[bool]:
    """A true condition that takes the advisory lock of ``key`` (none for a NULL key); for a
    statement that must lock before it inserts (PostgreSQL)."""
    # pg_advisory_xact_lock returns void, which IS NOT NULL once the lock is held.
    return key.is_(None) | func.pg_advisory_xact_lock(
        func.hashtextextended(key, 0)).is_not(None)


async def lock_key(conn: AsyncConnection, key: str | None) -> None:
    """Hold ``key``'s advisory lock until the transaction ends (PostgreSQL; else nothing)."""
    if key is not None and conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))
