"""The Alembic-migrated schema matches the tables' metadata, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from gateway.storage.engine import create_engine
from gateway.storage.tables import metadata

pytestmark = pytest.mark.anyio


def _diff(conn: Connection) -> list[object]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                 "compare_server_default": False})
    return [d for d in compare_metadata(ctx, metadata)
            if not (isinstance(d, tuple) and d[0] == "remove_table"
                    and d[1].name == "alembic_version")]


async def test_migrations_match_metadata(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
    finally:
        await engine.dispose()
    assert diff == [], "\n".join(map(str, diff))
