"""Acting as a database insider in tests: rewriting evidence past the PostgreSQL guard."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def unguard(conn: AsyncConnection) -> None:
    """Switch off the evidence tables' append-only triggers for this transaction, as the
    database's owner can (``session_replication_role`` skips ordinary triggers; superuser)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        await conn.execute(text("PRAGMA foreign_keys=OFF"))
