"""The unit of work: the only thing that commits.

One per request or job. Services and repositories receive ``uow.conn`` and never commit; a unit
of work that is left without ``commit()`` rolls back, so an exception can never half-write.
This module is the only one that calls ``begin()``/``commit()`` on a connection or transaction
(besides the Alembic run in ``gateway.storage.migrate``). A service may open a savepoint in
the unit of work it was handed (``async with conn.begin_nested():``) to undo part of it when
a block raises (one pension schedule's failure; a reconciliation's first reading of a
statement that does not prove itself); a savepoint commits nothing.

Code that needs units of work is handed a ``UnitOfWorkFactory`` (the composition root's
``Hub.uow``, or ``factory_for(engine)``), never an engine, so a test can hand in its own.
A read-only unit of work (``read_only=True``) takes no writer lock and has no commit: on
SQLite it is a deferred transaction, a consistent snapshot that never waits for writers (WAL).
"""

from __future__ import annotations

import asyncio
import weakref
from types import TracebackType
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

__all__ = ["READ_ONLY", "UnitOfWork", "UnitOfWorkFactory", "factory_for"]

# SQLite has one writer at a time. Coroutines of one process queue on an asyncio lock rather
# than on SQLite's busy handler, which sleeps in growing steps and makes long latency tails;
# other processes still wait on the file lock (busy_timeout).
_SQLITE_WRITERS: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Lock] = (
    weakref.WeakKeyDictionary())
_LOCK_TIMEOUT = 30.0

READ_ONLY = "gateway_read_only"
"""Execution option of a read-only unit of work's connection (the SQLite BEGIN listens)."""


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

    def __init__(self, engine: AsyncEngine, *, single_statement: bool = False,
                 read_only: bool = False) -> None:
        self._engine = engine
        self._tx: AsyncTransaction | None = None
        self._read_only = read_only
        # Readers never queue behind writers: they take no writer lock.
        self._lock = None if read_only else _writer_lock(engine)
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
                if self._read_only:
                    self.conn = await self.conn.execution_options(**{READ_ONLY: True})
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
        """Commit the transaction (a read-only unit of work cannot)."""
        if self._read_only:
            raise TypeError("a read-only unit of work has nothing to commit")
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


class UnitOfWorkFactory(Protocol):
    """Builds a unit of work (the composition root's ``Hub.uow``)."""

    def __call__(self, *, single_statement: bool = False,
                 read_only: bool = False) -> UnitOfWork: ...


def factory_for(engine: AsyncEngine) -> UnitOfWorkFactory:
    """A unit-of-work factory on ``engine`` (the composition root's, or a test's)."""
    def uow(*, single_statement: bool = False, read_only: bool = False) -> UnitOfWork:
        return UnitOfWork(engine, single_statement=single_statement, read_only=read_only)
    return uow
