"""Locks that let one process at a time do a long job for a key, across processes and hosts.

A job such as a rail's reconciliation of one date runs for minutes and commits in its own
units of work, so its lock cannot be a transaction's (that would hold a transaction open for
the whole job). Instead:

- PostgreSQL: a **session** advisory lock (``pg_try_advisory_lock``) on a connection in
  autocommit, held for the job and released after it; if the process dies, the server ends the
  session and the lock with it. A connection whose unlock failed is invalidated rather than
  returned to the pool still holding the lock.
- SQLite (one host, one writer at a time anyway): an exclusive ``flock`` on a file beside the
  database, one for all keys; the kernel releases it when the process dies.

Both only *try*: a job whose key is held elsewhere is someone else's right now.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["AdvisoryLocks", "FileLocks", "JobLocks", "job_locks_for"]


class JobLocks(Protocol):
    """Try to hold a key's lock for the length of a job (``async with locks.hold(key) as got``)."""

    def hold(self, key: str) -> AbstractAsyncContextManager[bool]: ...


class AdvisoryLocks:
    """PostgreSQL session advisory locks, on the hub's units of work."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[bool]:
        lock_id = func.hashtextextended(key, 0)
        # single_statement: on PostgreSQL the unit of work's autocommit connection, so no
        # transaction stays open while the job runs; the lock belongs to the session.
        async with self._uow(single_statement=True) as uow:
            got = bool((await uow.conn.execute(
                select(func.pg_try_advisory_lock(lock_id)))).scalar_one())
            if not got:
                yield False
                return
            try:
                yield True
            finally:
                try:
                    await uow.conn.execute(select(func.pg_advisory_unlock(lock_id)))
                except BaseException:
                    await uow.conn.invalidate()
                    raise


class FileLocks:
    """One exclusive ``flock`` on ``path`` for every key (SQLite)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[bool]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True  # closing the file releases the lock
        finally:
            os.close(fd)


def job_locks_for(engine: AsyncEngine, uow: UnitOfWorkFactory, name: str) -> JobLocks:
    """The job locks ``name`` (e.g. ``reconcile``) for the hub's database.

    Raises:
        ValueError: an in-memory SQLite database, which no other process can share anyway.
    """
    if engine.dialect.name == "postgresql":
        return AdvisoryLocks(uow)
    database = engine.url.database
    if not database or database == ":memory:":
        raise ValueError("job locks need a database file, not an in-memory SQLite database")
    return FileLocks(Path(f"{database}.{name}.lock"))
