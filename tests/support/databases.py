"""Test databases: a fresh, migrated SQLite file or PostgreSQL database per test.

PostgreSQL is used when ``GATEWAY_TEST_PG_URL`` is set (``.ci/run`` sets it) and is then
*required*: an unreachable server fails the tests instead of skipping them. Without the
variable, a developer's run still tries the local server and skips PostgreSQL (visibly) only if
nothing answers. Every test database has a unique name and is dropped afterwards.

Under pytest-xdist every test that uses PostgreSQL runs on one worker (``uses_postgresql``,
grouped by ``tests/conftest.py``): the pull feed and the admin audit feed read only below the
*cluster-wide* transaction horizon (``gateway.storage.commit_order``), so another worker's open
transaction, in its own database, would hold back what this worker's test reads. A test that
reaches PostgreSQL without being grouped is refused at once rather than left to flake.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import asyncpg
import pytest

from gateway.storage.migrate import upgrade

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRESQL_GROUP = "postgresql"

_refusal: str | None = None  # why the running test may not use PostgreSQL, if it may not


def uses_postgresql(item: pytest.Item) -> bool:
    """Whether a collected test uses PostgreSQL: a ``"postgresql"`` parameter (``db_url`` and
    its kind), the ``pg_template`` fixture, or the ``postgresql`` marker (a test that reaches
    the server by ``pg_admin_url`` itself)."""
    callspec = getattr(item, "callspec", None)
    return ("pg_template" in getattr(item, "fixturenames", ())
            or item.get_closest_marker("postgresql") is not None
            or (callspec is not None and "postgresql" in callspec.params.values()))


def guard_postgresql(item: pytest.Item) -> None:
    """Before ``item`` runs on an xdist worker: refuse PostgreSQL to it unless it is grouped."""
    global _refusal
    _refusal = None
    if os.environ.get("PYTEST_XDIST_WORKER") and not uses_postgresql(item):
        _refusal = (f"{item.nodeid} uses PostgreSQL but is not in the xdist group "
                    f"{POSTGRESQL_GROUP!r}: mark it @pytest.mark.postgresql")


def _check_allowed() -> None:
    if _refusal is not None:
        raise RuntimeError(_refusal)


def pg_admin_url() -> tuple[str, bool]:
    """Return the admin URL and whether PostgreSQL is required."""
    _check_allowed()
    url = os.environ.get("GATEWAY_TEST_PG_URL")
    return (url, True) if url else (DEFAULT_PG, bool(os.environ.get("CI")))


def _asyncpg_dsn(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return "postgresql://" + rest


async def pg_reachable(url: str) -> str | None:
    try:
        conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


def _with_db(url: str, name: str) -> str:
    base, _, _old = url.rpartition("/")
    return f"{base}/{name}"


class PgTemplate:
    """A migrated template database, cloned per test (CREATE DATABASE ... TEMPLATE)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.template = f"px_tpl_{os.getpid()}_{uuid.uuid4().hex[:8]}"

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(_asyncpg_dsn(self.admin_url), timeout=10)

    async def create(self) -> None:
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{self.template}"')
        finally:
            await conn.close()
        await upgrade(_with_db(self.admin_url, self.template).replace(
            "postgresql://", "postgresql+asyncpg://", 1))

    async def clone(self) -> str:
        _check_allowed()
        name = f"px_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        finally:
            await conn.close()
        return name

    async def empty(self) -> str:
        """A new database with no schema (to migrate step by step); drop it afterwards."""
        _check_allowed()
        name = f"px_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return name

    def url(self, name: str) -> str:
        return _with_db(self.admin_url, name).replace("postgresql://", "postgresql+asyncpg://", 1)

    async def drop(self, name: str) -> None:
        conn = await self._admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


class SqliteTemplate:
    """A migrated SQLite file, copied per test."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "template.db"

    async def create(self) -> None:
        await upgrade(f"sqlite:///{self.path}")

    def clone(self, dest: Path) -> str:
        shutil.copyfile(self.path, dest)
        return f"sqlite:///{dest}"
