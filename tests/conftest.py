"""Shared fixtures: ``db_url`` runs a test on SQLite and on PostgreSQL; ``settings`` (the one
settings fixture: database, instance files and a back-office client); ``hub`` and ``client``
(the hub's ASGI app through ``httpx.ASGITransport``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.backoffice.auth import write_dev_tokens
from gateway.composition import Hub, build_hub
from gateway.config import Settings
from gateway.protocol.keys import write_private_key
from gateway.runtime.bootstrap import write_dev_registry
from tests.support.databases import (
    POSTGRESQL_GROUP,
    PgTemplate,
    SqliteTemplate,
    guard_postgresql,
    pg_admin_url,
    pg_reachable,
    uses_postgresql,
)
from tests.support.partners import NOW, TestPartner


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # One xdist worker runs every PostgreSQL test, in order (tests/support/databases.py says
    # why); the other workers share the rest.
    for item in items:
        if uses_postgresql(item):
            item.add_marker(pytest.mark.xdist_group(POSTGRESQL_GROUP))


def pytest_runtest_setup(item: pytest.Item) -> None:
    guard_postgresql(item)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    tpl = SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))
    asyncio.run(tpl.create())
    return tpl


@pytest.fixture(scope="session")
def pg_template() -> Iterator[PgTemplate]:
    url, required = pg_admin_url()
    problem = asyncio.run(pg_reachable(url))
    if problem:
        if required:
            pytest.fail(f"PostgreSQL is required here (CI or GATEWAY_TEST_PG_URL) but "
                        f"{url} is unreachable: {problem}", pytrace=False)
        pytest.skip(f"PostgreSQL not reachable at {url} ({problem}); set GATEWAY_TEST_PG_URL")
    tpl = PgTemplate(url)
    asyncio.run(tpl.create())
    yield tpl
    asyncio.run(tpl.drop(tpl.template))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database of each kind; dropped after the test."""
    if request.param == "sqlite":
        tpl: SqliteTemplate = request.getfixturevalue("sqlite_template")
        yield tpl.clone(tmp_path / "gateway.db")
        return
    pg: PgTemplate = request.getfixturevalue("pg_template")
    name = asyncio.run(pg.clone())
    try:
        yield pg.url(name)
    finally:
        asyncio.run(pg.drop(name))


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    """A development instance's files (hub key, registry, partner keys) in a temp folder."""
    write_private_key(tmp_path / "hub.jwk.json", "MY-PERKESO-test-1")
    write_dev_registry(tmp_path / "partners.toml")
    return tmp_path


@pytest.fixture
def backoffice_token(instance: Path) -> str:
    """The bearer token of an all-scopes back-office client in ``instance/backoffice.toml``."""
    token, _ = write_dev_tokens(instance / "backoffice.toml")
    return token


@pytest.fixture
def settings(instance: Path, db_url: str, backoffice_token: str) -> Settings:
    """The hub's settings for ``instance`` on ``db_url``, with the back-office client."""
    return Settings(
        database_url=db_url,
        partners_file=instance / "partners.toml",
        signing_key_file=instance / "hub.jwk.json",
        backoffice_tokens_file=instance / "backoffice.toml",
        dispatch_in_serve=False,
    )


class FrozenClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
async def hub(settings: Settings, clock: FrozenClock) -> AsyncIterator[Hub]:
    the_hub = build_hub(settings, clock=clock)
    yield the_hub
    await the_hub.close()


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(hub=hub, background_jobs=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
        yield c


@pytest.fixture
def bpjstk(instance: Path) -> TestPartner:
    return TestPartner.from_registry(instance / "partners.toml", "ID-BPJSTK")
