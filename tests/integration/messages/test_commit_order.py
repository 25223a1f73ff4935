"""Readers that follow a position never miss work committed out of primary-key order.

Two connections: the first writes (and so draws the lower pk) but commits after the second.
On SQLite writers are serialised, so pk order is commit order; PostgreSQL is where this bites.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.composition import Hub
from gateway.messages.inbox import read_inbox
from gateway.outbox.claiming import claim
from gateway.outbox.records import enqueue

pytestmark = pytest.mark.anyio

PULL = "MM-SSB"


async def _send(hub: Hub, conn: AsyncConnection, ref: str) -> str:
    msg = await hub.outbound.send(conn, partner_id=PULL, type_="life_certificate.request",
                                  payload={"pension_ref": ref, "due_on": "2027-01-31"},
                                  now=hub.clock(), correlation_id=ref)
    return msg.message_id


async def _follow(hub: Hub, after: str) -> tuple[list[str], str]:
    """Read the inbox from ``after`` to its end, as a pull partner does; (ids, last next)."""
    seen: list[str] = []
    for _ in range(20):
        async with hub.uow(read_only=True) as uow:
            page = await read_inbox(uow.conn, hub.registry, PULL, after, 1)
        if not page.messages:
            break
        seen += [m["body_b64"] for m in page.messages]
        after = page.next
    return seen, after


async def test_inbox_cursor_sees_messages_committed_out_of_pk_order(hub: Hub) -> None:
    async with hub.engine.connect() as slow, hub.engine.connect() as fast:
        await slow.begin()
        await _send(hub, slow, "PEN-SLOW")  # the lower pk, still uncommitted
        if slow.dialect.name == "sqlite":
            await slow.commit()  # SQLite would wait for the writer: no out-of-order commit
        await fast.begin()
        await _send(hub, fast, "PEN-FAST")
        await fast.commit()
        first, after = await _follow(hub, "")
        if slow.in_transaction():
            await slow.commit()
    seen = first
    for _ in range(500):  # bounded: the horizon also waits for other writers on the server
        if len(seen) >= 2:
            break
        await asyncio.sleep(0.02)
        more, after = await _follow(hub, after)
        seen += more
    assert len(seen) == 2 and len(set(seen)) == 2


async def _settle(hub: Hub, pid: int, writer: asyncio.Task[None]) -> bool:
    """Wait until ``writer`` has finished or waits for a lock; True if it waits."""
    async with hub.engine.connect() as watcher:
        for _ in range(1000):  # bounded: the writer either waits or finishes quickly
            if writer.done():
                return False
            waiting = (await watcher.execute(text(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :p"),
                {"p": pid})).scalar_one()
            if waiting:
                return True
            await asyncio.sleep(0.01)
    return False


async def test_outbox_task_never_overtakes_an_uncommitted_earlier_task_of_its_case(
        hub: Hub) -> None:
    if hub.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: pk order is commit order")
    now = hub.clock()

    async def add(conn: AsyncConnection, ref: str) -> None:
        await enqueue(conn, kind="deliver", destination=PULL, ref=ref, now=now,
                      ordering_key="MM-SSB:CASE-1")

    async def second_writer(conn: AsyncConnection) -> None:
        await conn.begin()
        await add(conn, "second")
        await conn.commit()

    async with hub.engine.connect() as slow, hub.engine.connect() as fast:
        pid = (await fast.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await fast.rollback()
        await slow.begin()
        await add(slow, "first")
        second = asyncio.create_task(second_writer(fast))
        waits = await _settle(hub, pid, second)
        tasks = await claim(hub.uow, owner="t", now=now, lease=timedelta(seconds=30), limit=10)
        assert [t.ref for t in tasks] == []  # "second" must not go before "first"
        assert waits  # it is ordered behind "first" by waiting for the case's writer
        await slow.commit()
        await second
    tasks = await claim(hub.uow, owner="t", now=now, lease=timedelta(seconds=30), limit=10)
    assert [t.ref for t in tasks] == ["first"]
