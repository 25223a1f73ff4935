"""The unit of work: the only thing that commits.

One per request or job. Services and repositories receive ``uow.conn`` and never commit; a unit
of work that is left without ``commit()`` rolls back, so an exception can never half-write.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

__all__ = ["UnitOfWork", "UnitOfWorkFactory"]


class UnitOfWork:
    """An open connection and transaction, committed only by ``commit()``."""

    conn: AsyncConnection

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._tx: AsyncTransaction | None = None

    async def __aenter__(self) -> UnitOfWork:
        self.conn = await self._engine.connect()
        try:
            self._tx = await self.conn.begin()
        except BaseException:
            await self.conn.close()
            raise
        return self

    async def commit(self) -> None:
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
            await self.conn.close()


UnitOfWorkFactory = Callable[[], UnitOfWork]
