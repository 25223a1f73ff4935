"""Outbox core on a real database: claim exclusivity, lease takeover, FIFO per key, dead letters,
retry rescheduling (the pure policy and breaker: tests/unit/outbox/)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.errors import PermanentDeliveryError, TransientDeliveryError
from gateway.outbox.breaker import CircuitBreakers
from gateway.outbox.claiming import claim
from gateway.outbox.dispatcher import Dispatcher
from gateway.outbox.records import LeaseLost, complete, enqueue
from gateway.storage.engine import create_engine
from gateway.storage.tables import outbox
from gateway.storage.uow import UnitOfWork, factory_for

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


async def fill(engine, n: int, key=lambda i: None, kind: str = "k") -> None:
    async with UnitOfWork(engine) as uow:
        for i in range(n):
            await enqueue(uow.conn, kind=kind, destination="d", ref=str(i), now=NOW,
                          ordering_key=key(i))
        await uow.commit()


@pytest.fixture
async def engine(db_url: str):
    e = create_engine(db_url)
    yield e
    await e.dispose()


async def test_concurrent_claimers_never_share_a_task(engine, db_url) -> None:
    await fill(engine, 300)
    engines = [create_engine(db_url) for _ in range(4)]
    try:
        async def claimer(i: int) -> list[int]:
            got: list[int] = []
            while batch := await claim(factory_for(engines[i]), owner=f"c{i}", now=NOW, lease=LEASE,
                                       limit=7):
                got += [t.pk for t in batch]
            return got
        results = await asyncio.gather(*(claimer(i) for i in range(4)))
    finally:
        for e in engines:
            await e.dispose()
    claimed = [pk for r in results for pk in r]
    assert len(claimed) == 300 and len(set(claimed)) == 300
    if "postgresql" in db_url:
        assert sum(1 for r in results if r) > 1  # SKIP LOCKED: several claimers made progress


async def test_lease_expiry_lets_another_take_over(engine) -> None:
    await fill(engine, 1)
    [a] = await claim(factory_for(engine), owner="A", now=NOW, lease=LEASE, limit=10)
    assert await claim(factory_for(engine), owner="B", now=NOW + LEASE / 2, lease=LEASE,
                       limit=10) == []
    [b] = await claim(factory_for(engine), owner="B", now=NOW + LEASE * 2, lease=LEASE, limit=10)
    assert b.pk == a.pk and b.attempts == 2
    async with UnitOfWork(engine) as uow:
        with pytest.raises(LeaseLost):
            await complete(uow.conn, a, NOW)
    async with UnitOfWork(engine) as uow:
        await complete(uow.conn, b, NOW)
        await uow.commit()


async def test_fifo_per_ordering_key(engine) -> None:
    await fill(engine, 6, key=lambda i: f"case-{i % 2}")
    first = await claim(factory_for(engine), owner="A", now=NOW, lease=LEASE, limit=10)
    assert [t.ref for t in first] == ["0", "1"]  # one per key until the earlier one is done
    assert await claim(factory_for(engine), owner="A", now=NOW, lease=LEASE, limit=10) == []
    async with UnitOfWork(engine) as uow:
        await complete(uow.conn, first[0], NOW)
        await uow.commit()
    assert [t.ref for t in await claim(factory_for(engine), owner="A", now=NOW, lease=LEASE,
                                       limit=10)] == ["2"]


class Failing:
    kind = "k"
    batch_size = 10

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def handle(self, tasks):
        return [self.error] * len(tasks)


async def test_dead_letter_keeps_last_error_and_blocks_its_key(engine) -> None:
    await fill(engine, 2, key=lambda i: "case")
    d = Dispatcher(factory_for(engine),
                   {"k": Failing(PermanentDeliveryError("HTTP 422 bad account"))},
                   clock=lambda: NOW)
    assert await d.run_once() == 1
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox).order_by(outbox.c.pk))).all()
    assert rows[0].state == "dead" and "permanent" in rows[0].last_error
    assert "bad account" in rows[0].last_error
    assert await d.run_once() == 0  # the next of the same key waits for an operator


async def test_retry_reschedules_with_backoff(engine) -> None:
    await fill(engine, 1)
    d = Dispatcher(factory_for(engine), {"k": Failing(TransientDeliveryError("refused"))},
                   clock=lambda: NOW, breakers=CircuitBreakers(threshold=100))
    await d.run_once()
    async with engine.connect() as conn:
        row = (await conn.execute(select(outbox))).one()
    assert row.state == "pending" and row.next_attempt_at > NOW and row.attempts == 1
    assert "refused" in row.last_error


class Slow:
    """A handler that works until the test lets it finish."""

    kind = "k"
    batch_size = 10

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def handle(self, tasks):
        self.started.set()
        await self.release.wait()
        return [None] * len(tasks)


async def test_a_slow_batch_keeps_its_lease_by_heartbeat(engine) -> None:
    """Issue 8, finding 6: the lease is renewed while the batch runs, so a batch slower than
    the lease is not taken over by another dispatcher while still working."""
    await fill(engine, 1)
    clock = {"now": NOW}
    slow = Slow()
    d = Dispatcher(factory_for(engine), {"k": slow}, clock=lambda: clock["now"], lease=LEASE,
                   heartbeat=0.01, breakers=CircuitBreakers(threshold=100))
    run = asyncio.create_task(d.run_once())
    await asyncio.wait_for(slow.started.wait(), 20)  # bounded: a hang is a failure
    expiry = NOW + LEASE
    for step in range(1, 4):  # three lease lengths later, it is still A's
        clock["now"] = NOW + LEASE * step - timedelta(seconds=1)
        for _ in range(2000):  # bounded: wait for the heartbeat at this time
            async with engine.connect() as conn:
                seen = (await conn.execute(select(outbox.c.lease_expires_at))).scalar_one()
            if seen.replace(tzinfo=UTC) > expiry:
                break
            await asyncio.sleep(0.005)
        expiry = seen.replace(tzinfo=UTC)
        assert await claim(factory_for(engine), owner="B", now=clock["now"] + timedelta(
            seconds=2), lease=LEASE, limit=10) == []
    slow.release.set()
    await asyncio.wait_for(run, 20)
    async with engine.connect() as conn:
        assert (await conn.execute(select(outbox.c.lease_owner))).scalar_one() == d.owner
