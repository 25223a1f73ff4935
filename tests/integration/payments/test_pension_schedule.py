"""Pension periods on schedule: the dispatchers' housekeeping creates due payments and suspends
overdue schedules by itself, never a period twice, also with several dispatchers at once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from gateway.composition import build_hub
from gateway.runtime.jobs import run_housekeeping, run_pension_schedules
from gateway.storage.tables import payments
from tests.support.fakes import FakeRail
from tests.support.pensions import payments_of, pension_body

pytestmark = pytest.mark.anyio


async def _wait_for(predicate, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + seconds
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_housekeeping_runs_pensions_on_schedule(hub, client, auth, rail, clock) -> None:
    r = await client.post("/v1/backoffice/pensions", json=pension_body(), headers=auth)
    assert r.status_code == 201, r.text
    hub.settings.pension_run_every_seconds = 0.05
    stop = asyncio.Event()
    job = asyncio.create_task(run_housekeeping(hub, stop, interval=0.05))
    try:
        async def four() -> bool:  # Aug..Nov 2026 (the clock is 2026-11-21)
            return len(await payments_of(client, auth, pension_ref="PEN-ID-0042")) == 4
        await _wait_for(four)
        clock.now = datetime.fromisoformat("2026-12-01T00:30:00+00:00")

        async def five() -> bool:
            return "PEN-ID-0042.202612" in await payments_of(client, auth,
                                                            pension_ref="PEN-ID-0042")
        await _wait_for(five)
        # The certificate was due 2026-12-31: on 2027-01-01 the schedule is suspended by the
        # job at once, and January is not paid.
        clock.now = datetime.fromisoformat("2027-01-01T01:00:00+00:00")

        async def suspended() -> bool:
            s = (await client.get("/v1/backoffice/pensions/PEN-ID-0042", headers=auth)).json()
            return bool(s["state"] == "suspended")
        await _wait_for(suspended)
        await asyncio.sleep(0.2)
    finally:
        stop.set()  # not a cancel: one inside an aiosqlite call could hang the rollback
        await asyncio.wait_for(job, 10)
    ids = await payments_of(client, auth, pension_ref="PEN-ID-0042")
    assert sorted(ids) == [f"PEN-ID-0042.2026{m}" for m in ("08", "09", "10", "11", "12")]
    s = (await client.get("/v1/backoffice/pensions/PEN-ID-0042", headers=auth)).json()
    # One event per run that created periods, none for the many runs that found none due.
    assert [(e["cause"], e["detail"]) for e in s["events"][:3]] == [
        ("instructed", "schedule created"),
        ("periods_created", "2026-08 to 2026-11: 4 payment(s)"),
        ("periods_created", "2026-12 to 2026-12: 1 payment(s)")]
    assert [e["cause"] for e in s["events"][3:]] == ["life_certificate_overdue"]
    # The back office's explicit run is still there (and finds nothing to do).
    r = await client.post("/v1/backoffice/pensions/run", json={}, headers=auth)
    assert r.status_code == 200 and r.json() == {"created": 0}


async def test_several_dispatchers_never_create_a_period_twice(
        hub, client, auth, rail, settings, clock, db_url) -> None:
    n = 30
    for i in range(n):
        r = await client.post("/v1/backoffice/pensions", headers=auth, json=pension_body(
            pension_ref=f"PEN-C-{i:03d}", life_certificate_due_on=None))
        assert r.status_code == 201, r.text
    # On PostgreSQL: four dispatchers, each with its own engine and connections, running the
    # schedules at the same moment. On SQLite (one writer at a time) four runs in one process.
    hubs = [hub] * 4 if db_url.startswith("sqlite") else [
        build_hub(settings, clock=clock) for _ in range(4)]
    for h in hubs:
        h.payments.rails["fake"] = rail if h is hub else FakeRail()
    try:
        results = []
        for moment in ("2026-11-21T08:00:00", "2026-12-01T00:00:01", "2026-12-01T00:00:02"):
            clock.now = datetime.fromisoformat(moment + "+00:00")
            results += await asyncio.gather(*(run_pension_schedules(h) for h in hubs))
    finally:
        for h in hubs:
            if h is not hub:
                await h.close()
    created = sum(c for _, c in results)
    assert created == n * 5  # Aug..Dec for each schedule, each exactly once
    async with hub.engine.connect() as conn:
        rows = (await conn.execute(select(payments.c.pension_ref, func.count())
                                   .group_by(payments.c.pension_ref))).all()
    assert len(rows) == n and {c for _, c in rows} == {5}
    assert clock.now - datetime.fromisoformat("2026-12-01T00:00:00+00:00") < timedelta(1)
