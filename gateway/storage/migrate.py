"""Schema migrations (Alembic) run from code: ``gateway db upgrade`` and the dev auto-upgrade.

Besides ``gateway.storage.uow``, this is the one module that commits a connection itself: the
Alembic run is not a unit of work (it manages its own transactions on the connection).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.storage.engine import create_engine

__all__ = [
    "alembic_config", "current_revision", "downgrade", "head_revision", "revision_of", "upgrade",
]

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            def _rev(sync_conn: Connection) -> str | None:
                return MigrationContext.configure(sync_conn).get_current_revision()
            return await conn.run_sync(_rev)
    finally:
        await engine.dispose()


async def revision_of(conn: AsyncConnection) -> str | None:
    """The schema revision of the database behind ``conn`` (None: never migrated)."""
    def _rev(sync_conn: Connection) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()
    return await conn.run_sync(_rev)


async def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision``."""
    await _migrate(url, command.upgrade, revision)


async def downgrade(url: str, revision: str) -> None:
    """Downgrade the database at ``url`` to ``revision`` (tests of a migration's way back)."""
    await _migrate(url, command.downgrade, revision)


async def _migrate(url: str, step: Callable[[Config, str], None], revision: str) -> None:
    engine = create_engine(url)
    cfg = alembic_config(url)
    try:
        async with engine.connect() as conn:
            def _run(sync_conn: Connection) -> None:
                cfg.attributes["connection"] = sync_conn
                step(cfg, revision)
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()
