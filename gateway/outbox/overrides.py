"""Manual circuit-breaker states, shared by every dispatcher through the database.

``CircuitBreakers`` lives in each dispatcher process, so an operator's open or close must be
stored where every process reads it: ``breaker_overrides``, one row per destination, read by
each dispatcher at most every ``ttl`` seconds before it claims.

- ``open``: the destination's tasks are not claimed by any dispatcher until an operator
  closes it again (a partner or rail that asked us to hold off, a maintenance window).
- ``closed``: the manual open is lifted and every dispatcher resets its automatic breaker
  for the destination once (on the first read after the close); from then on the automatic
  breaker works as usual.

A partner an operator suspended (``partner_suspensions``) is held like an open breaker: its
deliveries wait instead of being dead-lettered, and go out when it is resumed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.outbox.breaker import CircuitBreakers
from gateway.storage.tables import breaker_overrides, partner_suspensions
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["BreakerOverrides", "all_overrides", "set_override"]


class BreakerOverrides:
    """The manual states as one dispatcher last read them (every ``ttl`` seconds)."""

    def __init__(self, uow: UnitOfWorkFactory, ttl: float = 2.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._uow, self._ttl, self._now = uow, ttl, monotonic
        self._read_at = float("-inf")
        self._held: frozenset[str] = frozenset()
        self._resets: dict[str, datetime] = {}
        self._applied: dict[str, datetime] = {}

    async def skip(self, breakers: CircuitBreakers) -> list[str]:
        """The destinations not to claim now: held manually, or open automatically."""
        if self._now() - self._read_at >= self._ttl:
            async with self._uow(read_only=True) as uow:
                rows = (await uow.conn.execute(select(breaker_overrides))).all()
                suspended = (await uow.conn.execute(
                    select(partner_suspensions.c.partner_id))).scalars().all()
            self._held = frozenset([r.destination for r in rows if r.state == "open"]
                                   + list(suspended))
            self._resets = {r.destination: r.set_at for r in rows if r.state == "closed"}
            self._read_at = self._now()
        for dest, at in self._resets.items():
            if self._applied.get(dest) != at:
                breakers.success(dest)  # the operator's close resets the automatic breaker
                self._applied[dest] = at
        return sorted(self._held | set(breakers.open_destinations()))


async def all_overrides(conn: AsyncConnection) -> dict[str, RowMapping]:
    rows = (await conn.execute(select(breaker_overrides))).mappings()
    return {r.destination: r for r in rows}


async def set_override(conn: AsyncConnection, destination: str, state: str, *, by: str,
                       reason: str, now: datetime) -> None:
    """Record an operator's manual ``open`` or ``closed`` for ``destination``."""
    assert state in ("open", "closed")
    # One statement: a delete then an insert lets two operators acting at once both find
    # no row and both insert it, and the second fails on the key.
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    values = {"state": state, "set_by": by, "reason": reason, "set_at": now}
    await conn.execute(ins(breaker_overrides).values(destination=destination, **values)
                       .on_conflict_do_update(index_elements=["destination"], set_=values))
