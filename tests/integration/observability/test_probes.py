"""/livez, /readyz and /healthz through the real app on a real database."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from gateway.app import create_app
from gateway.composition import Hub, build_hub
from gateway.config import Settings
from gateway.storage.engine import create_engine

pytestmark = pytest.mark.anyio


async def test_ready_when_the_schema_is_at_head(client: httpx.AsyncClient) -> None:
    live = await client.get("/livez")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_not_ready_when_the_schema_is_behind(client: httpx.AsyncClient,
                                                   db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '0004_commit_order'"))
    finally:
        await engine.dispose()
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert ready.json()["code"] == "not_ready"
    assert "0004_commit_order" in ready.json()["detail"]
    assert (await client.get("/livez")).status_code == 200  # alive: no database needed


# aiosqlite's worker thread of a connection that failed to open reports to a closed loop.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_not_ready_when_the_database_is_unreachable(settings: Settings,
                                                          tmp_path: Path) -> None:
    gone = settings.model_copy(update={
        "database_url": "postgresql://nobody@127.0.0.1:1/none"
        if settings.database_url.startswith("postgresql")
        else f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}"})
    hub = build_hub(gone)
    try:
        app = create_app(hub=hub, background_jobs=False)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
            ready = await c.get("/readyz")
            assert ready.status_code == 503 and ready.json()["code"] == "not_ready"
            assert "cannot be reached" in ready.json()["detail"]
            assert (await c.get("/livez")).status_code == 200
    finally:
        await hub.close()


async def test_a_draining_process_is_not_ready(hub: Hub) -> None:
    app = create_app(hub=hub, background_jobs=False)
    app.state.readiness.draining = True  # what SIGTERM does first (probes.install_drain)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
        ready = await c.get("/readyz")
        assert ready.status_code == 503 and "shutting down" in ready.json()["detail"]
        assert (await c.get("/livez")).status_code == 200
