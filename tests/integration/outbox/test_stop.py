"""A stopping dispatcher releases its leased work at once: another dispatcher takes it without
waiting for the lease to run out (the real-process SIGTERM test: tests/e2e/ops/)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.outbox.claiming import claim
from gateway.outbox.dispatcher import Dispatcher
from gateway.outbox.records import Task, enqueue
from gateway.storage.engine import create_engine
from gateway.storage.tables import outbox
from gateway.storage.uow import UnitOfWork, factory_for

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


class Hanging:
    """A handler whose call never returns on its own (a partner that does not answer)."""

    kind = "k"
    batch_size = 1

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = 0

    async def handle(self, tasks: Sequence[Task]) -> Sequence[BaseException | None]:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return [None] * len(tasks)


@pytest.fixture
async def engine(db_url: str):
    e = create_engine(db_url)
    yield e
    await e.dispose()


async def test_stop_releases_started_and_waiting_work_for_another_dispatcher(engine) -> None:
    async with UnitOfWork(engine) as uow:
        for i in range(5):
            await enqueue(uow.conn, kind="k", destination="d", ref=str(i), now=NOW)
        await uow.commit()
    handler = Hanging()
    # Two run at once; the other three wait for the semaphore and never start.
    d = Dispatcher(factory_for(engine), {"k": handler}, clock=lambda: NOW, lease=LEASE,
                   concurrency=2, stop_grace=0.05)
    stop = asyncio.Event()
    run = asyncio.create_task(d.run(stop))
    await asyncio.wait_for(handler.started.wait(), 10)
    async with engine.connect() as conn:
        assert set((await conn.execute(select(outbox.c.state))).scalars()) == {"leased"}
    stop.set()
    await asyncio.wait_for(run, 10)
    assert handler.cancelled == 2
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.state, outbox.c.lease_owner,
                                          outbox.c.attempts).order_by(outbox.c.pk))).all()
    assert [r.state for r in rows] == ["pending"] * 5
    assert all(r.lease_owner is None for r in rows)
    # The cut-short attempts count; the never-started ones do not.
    assert sorted(r.attempts for r in rows) == [0, 0, 0, 1, 1]
    # Another dispatcher takes all of them now, long before the 60 s lease would run out.
    taken = await claim(factory_for(engine), owner="B", now=NOW + timedelta(seconds=1),
                        lease=LEASE, limit=10)
    assert len(taken) == 5


async def test_work_that_finishes_within_the_grace_is_done_not_released(engine) -> None:
    async with UnitOfWork(engine) as uow:
        await enqueue(uow.conn, kind="k", destination="d", ref="1", now=NOW)
        await uow.commit()

    class Quick:
        kind = "k"
        batch_size = 1
        started = asyncio.Event()

        async def handle(self, tasks: Sequence[Task]) -> Sequence[BaseException | None]:
            from gateway.outbox.records import complete
            self.started.set()
            await asyncio.sleep(0.2)
            async with UnitOfWork(engine) as uow:
                for t in tasks:
                    await complete(uow.conn, t, NOW)
                await uow.commit()
            return [None] * len(tasks)

    quick = Quick()
    d = Dispatcher(factory_for(engine), {"k": quick}, clock=lambda: NOW, stop_grace=10)
    stop = asyncio.Event()
    run = asyncio.create_task(d.run(stop))
    await asyncio.wait_for(quick.started.wait(), 10)
    stop.set()
    await asyncio.wait_for(run, 15)
    async with engine.connect() as conn:
        assert (await conn.execute(select(outbox.c.state))).scalar_one() == "done"
