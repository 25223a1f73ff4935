"""The unit of work: the only thing that commits.

One per request or job. Services and repositories receive ``uow.conn`` and never commit; a unit
of work that is left without ``commit()`` rolls back, so an exception can never half-write.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

__all__ = ["UnitOfWork", "UnitOfWorkFactory"]

# SQLite has one writer at a time. Coroutines of one process queue on an asyncio lock rather
# than on SQLite's busy handler, which sleeps in growing steps and makes long latency tails;
# other processes still wait on the file lock (busy_timeout).
_SQLITE_WRITERS: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Lock] = (
    weakref.WeakKeyDictionary())
_LOCK_TIMEOUT = 30.0


def _writer_lock(engine: AsyncEngine) -> asyncio.Lock | None:
    if engine.dialect.name != "sqlite":
        return None
    lock = _SQLITE_WRITERS.get(engine)
    if lock is None:
        lock = _SQLITE_WRITERS[engine] = asyncio.Lock()
    return lock


class UnitOfWork:
    """An open connection and transaction, committed only by ``commit()``."""

    conn: AsyncConnection

    def __init__(self, engine: AsyncEngine, *, single_statement: bool = False) -> None:
        self._engine = engine
        self._tx: AsyncTransaction | None = None
        self._lock = _writer_lock(engine)
        # A unit of work that writes with exactly one statement needs no BEGIN/COMMIT on
        # PostgreSQL: the statement is its own transaction, atomic and durably committed
        # before the server answers. That saves two round trips on the intake hot path.
        # SQLite keeps its explicit (BEGIN IMMEDIATE) transaction.
        self._autocommit = single_statement and engine.dialect.name == "postgresql"

    async def __aenter__(self) -> UnitOfWork:
        if self._lock is not None:
            await asyncio.wait_for(self._lock.acquire(), _LOCK_TIMEOUT)
        try:
            self.conn = await self._engine.connect()
        except BaseException:
            self._release()
            raise
        try:
            if self._autocommit:
                self.conn = await self.conn.execution_options(isolation_level="AUTOCOMMIT")
            else:
                self._tx = await self.conn.begin()
        except BaseException:
            await self.conn.close()
            self._release()
            raise
        return self

    def _release(self) -> None:
        if self._lock is not None and self._lock.locked():
            self._lock.release()

    async def commit(self) -> None:
        if self._autocommit:
            return  # the single statement committed when it ran
        assert self._tx is not None
        await self._tx.commit()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._tx is not None and self._tx.is_active:
                await self._tx.rollback()
        finally:
            try:
                await self.conn.close()
            finally:
                self._release()


UnitOfWorkFactory = Callable[..., UnitOfWork]
