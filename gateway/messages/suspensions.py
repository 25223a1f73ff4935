"""Partners suspended by an operator, read by every gateway process with a short cache.

The registry's static ``suspended`` needs a restart of every process; an operator's
suspension (``POST /admin/v1/partners/{id}/suspend``) is a row in ``partner_suspensions``
instead. Each process reads the whole (tiny) table at most every ``ttl`` seconds on the
intake and partner-read paths, so a suspension refuses the partner's requests in every
process within ``ttl`` seconds, at the cost of one small query per process per ``ttl``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.storage.tables import partner_suspensions
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["DEFAULT_TTL", "Suspensions", "all_suspensions", "lift", "suspend"]

DEFAULT_TTL = 2.0


class Suspensions:
    """The suspended partner ids, cached for ``ttl`` seconds."""

    def __init__(self, uow: UnitOfWorkFactory, ttl: float = DEFAULT_TTL,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._uow, self._ttl, self._now = uow, ttl, monotonic
        self._ids: frozenset[str] = frozenset()
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        """Read the table again on the next check (this process just changed it)."""
        self._read_at = float("-inf")

    async def is_suspended(self, partner_id: str) -> bool:
        if self._now() - self._read_at >= self._ttl:
            async with self._lock:  # one read per expiry, however many requests wait
                if self._now() - self._read_at >= self._ttl:
                    async with self._uow(read_only=True) as uow:
                        rows = await uow.conn.execute(select(partner_suspensions.c.partner_id))
                        self._ids = frozenset(rows.scalars())
                    self._read_at = self._now()
        return partner_id in self._ids


async def all_suspensions(conn: AsyncConnection) -> dict[str, RowMapping]:
    rows = (await conn.execute(select(partner_suspensions))).mappings()
    return {r.partner_id: r for r in rows}


async def suspend(conn: AsyncConnection, partner_id: str, *, by: str, reason: str,
                  now: datetime) -> bool:
    """Suspend ``partner_id``; return False if it already was."""
    # One statement: a look then an insert lets two operators acting at once both find no
    # row and both insert it, and the second fails on the key.
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    added = await conn.execute(
        ins(partner_suspensions).values(partner_id=partner_id, suspended_by=by, reason=reason,
                                        suspended_at=now)
        .on_conflict_do_nothing(index_elements=["partner_id"])
        .returning(partner_suspensions.c.partner_id))
    return added.first() is not None


async def lift(conn: AsyncConnection, partner_id: str) -> bool:
    """Lift an operator's suspension; return whether there was one."""
    result = await conn.execute(delete(partner_suspensions).where(
        partner_suspensions.c.partner_id == partner_id))
    return bool(result.rowcount)
