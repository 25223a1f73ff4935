"""The async engine for SQLite (embedded default) and PostgreSQL (production, scale-out).

Statement parameters are personal data (national ids, account numbers): the engines are built
with ``hide_parameters``, so an error's text (and any traceback logged) names the statement but
not its values, and aiosqlite's debug log, which prints every statement with its values, is
kept at INFO.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.config import async_database_url
from gateway.storage.uow import READ_ONLY

__all__ = ["SQLITE_SHA256", "create_engine"]

# sha256(blob) -> hex for SQLite, which has no built-in one: the evidence chain hashes wire
# bytes in the query, so 1 MiB records never cross into Python whole (gateway.evidence.chain).
SQLITE_SHA256 = "px_sha256"


def _sha256_hex(value: bytes | None) -> str | None:
    return hashlib.sha256(value).hexdigest() if value is not None else None


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """Create the async engine for a GATEWAY_DATABASE_URL (SQLite or PostgreSQL)."""
    async_url = async_database_url(url)
    if async_url.startswith("sqlite"):
        # A small pool: opening a SQLite connection (and its PRAGMAs) per request is costly;
        # several processes may still share the file, serialised by SQLite's own lock.
        logging.getLogger("aiosqlite").setLevel(logging.INFO)
        engine = create_async_engine(async_url, pool_size=5, max_overflow=5,
                                     hide_parameters=True)
        _tune_sqlite(engine)
        return engine
    return create_async_engine(
        # No pre-ping: it costs a round trip per request; a dead connection raises a
        # disconnect error, SQLAlchemy discards it and the caller's request fails cleanly.
        async_url, pool_size=pool_size, max_overflow=pool_size // 2, pool_recycle=1800,
        hide_parameters=True,
    )


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN IMMEDIATE below is ours.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()
        dbapi_conn.create_function(SQLITE_SHA256, 1, _sha256_hex, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads then writes can fail
        # with SQLITE_BUSY at once when another process writes, without waiting. A read-only
        # unit of work never writes: its deferred BEGIN is a snapshot that waits for no one.
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
