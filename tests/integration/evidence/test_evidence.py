"""The evidence chain finds any altered or deleted record, on both databases."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete, select, update

from gateway.composition import Hub
from gateway.evidence.chain import chain_head, chain_pending, verify_chain
from gateway.storage.tables import evidence_chain, messages
from tests.support.insider import unguard
from tests.support.partners import TestPartner

pytestmark = pytest.mark.anyio


async def _accept(client, partner: TestPartner, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        env = partner.envelope()
        body, headers = partner.signed(env)
        resp = await client.post("/v1/messages", content=body, headers=headers)
        assert resp.status_code == 202
        ids.append(env["id"])
    return ids


async def test_chain_then_verify_ok(client, hub: Hub, bpjstk) -> None:
    await _accept(client, bpjstk, 5)
    assert await chain_pending(hub.uow, clock=hub.clock) == 5
    assert await chain_pending(hub.uow, clock=hub.clock) == 0
    report = await verify_chain(hub.uow, clock=hub.clock)
    assert report.ok and report.checked == 5 and report.head is not None
    async with hub.engine.connect() as conn:
        assert (await chain_head(conn)).seq == 5


@pytest.mark.parametrize("column", ["wire", "receipt"])
async def test_a_single_flipped_byte_is_found(client, hub: Hub, bpjstk, column: str) -> None:
    ids = await _accept(client, bpjstk, 4)
    await chain_pending(hub.uow, clock=hub.clock)
    async with hub.engine.begin() as conn:
        await unguard(conn)
        row = (await conn.execute(select(messages).where(messages.c.message_id == ids[2]))).one()
        data = bytearray(getattr(row, column))
        data[len(data) // 2] ^= 0x01
        await conn.execute(update(messages).where(messages.c.pk == row.pk)
                           .values({column: bytes(data)}))
    report = await verify_chain(hub.uow, clock=hub.clock)
    assert not report.ok and report.checked == 2
    assert report.broken == f"messages pk {row.pk} (message {ids[2]} from ID-BPJSTK): " \
                            "the record was altered"


async def test_deleted_record_and_deleted_entry_are_found(client, hub: Hub, bpjstk) -> None:
    ids = await _accept(client, bpjstk, 3)
    await chain_pending(hub.uow, clock=hub.clock)
    async with hub.engine.begin() as conn:
        await unguard(conn)
        await conn.execute(delete(messages).where(messages.c.message_id == ids[1]))
    report = await verify_chain(hub.uow, clock=hub.clock)
    assert report.broken is not None and "the record was deleted" in report.broken
    async with hub.engine.begin() as conn:
        await unguard(conn)
        await conn.execute(delete(evidence_chain).where(evidence_chain.c.seq == 2))
    report = await verify_chain(hub.uow, clock=hub.clock)
    assert report.broken == "chain entries 2..2 are missing"


async def test_unchained_old_records_are_reported(client, hub: Hub, clock, bpjstk) -> None:
    from datetime import timedelta

    await _accept(client, bpjstk, 2)
    clock.now = clock.now + timedelta(hours=1)
    report = await verify_chain(hub.uow, clock=hub.clock)
    assert report.unchained == 2 and not report.ok


async def test_concurrent_chainers_build_one_chain(client, hub: Hub, bpjstk) -> None:
    await _accept(client, bpjstk, 30)
    counts = await asyncio.gather(*[chain_pending(hub.uow, batch=7, clock=hub.clock)
                                    for _ in range(4)])
    while await chain_pending(hub.uow, clock=hub.clock):
        pass
    assert sum(counts) <= 30
    report = await verify_chain(hub.uow, clock=hub.clock)
    assert report.ok and report.checked == 30


async def test_the_database_computes_the_digest_the_rule_defines(client, hub: Hub,
                                                                 bpjstk) -> None:
    """PostgreSQL computes digests in one SQL expression, SQLite in Python: both must be the
    rule of ChainedTable.digest over the full row, hashed here in Python."""
    import hashlib
    from types import SimpleNamespace

    from gateway.evidence.chain import CHAINED

    await _accept(client, bpjstk, 3)
    await chain_pending(hub.uow, clock=hub.clock)
    spec = CHAINED["messages"]
    async with hub.engine.connect() as conn:
        entries = (await conn.execute(select(evidence_chain))).all()
        assert len(entries) == 3
        for e in entries:
            row = (await conn.execute(select(messages)
                                      .where(messages.c.pk == e.record_pk))).one()
            fields = dict(row._mapping)
            fields.update({f"{h}_sha": hashlib.sha256(fields[h]).hexdigest()
                           if fields[h] is not None else "" for h in spec.hashed})
            assert spec.digest(SimpleNamespace(**fields)) == e.record_sha256


async def test_a_late_commit_below_the_chained_pks_is_found_by_the_lookback(
        client, hub: Hub, bpjstk) -> None:
    import uuid

    await _accept(client, bpjstk, 1)
    await chain_pending(hub.uow, clock=hub.clock)
    async with hub.engine.begin() as conn:
        row = dict((await conn.execute(select(messages))).one()._mapping)

        async def store(pk: int) -> None:
            await conn.execute(messages.insert().values(
                {**row, "pk": pk, "message_id": str(uuid.uuid4())}))

        await store(10)
    assert await chain_pending(hub.uow, lookback=False, clock=hub.clock) == 1  # new: pk 10
    async with hub.engine.begin() as conn:
        await store(5)  # took its pk before pk 10, committed after it was chained
    assert await chain_pending(hub.uow, lookback=False, clock=hub.clock) == 0
    assert await chain_pending(hub.uow, lookback=True, clock=hub.clock) == 1
    report = await verify_chain(hub.uow, clock=hub.clock)
    assert report.ok and report.checked == 3
