"""The batched move a reconciliation run makes (``move_with_events``): one statement on
PostgreSQL, two elsewhere, the same rows either way; and ``insert_rows`` with rows of
different shapes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from gateway.composition import Hub
from gateway.payments import repository as repo
from gateway.storage.bulk import insert_rows
from gateway.storage.tables import payment_events, payments
from tests.support.recon import add_payment

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 12, 2, 8, 30, 15, 123000, tzinfo=UTC)


async def _events(hub: Hub) -> list[tuple[object, ...]]:
    async with hub.uow(read_only=True) as u:
        rows = (await u.conn.execute(
            select(payments.c.payment_id, payment_events.c.from_state,
                   payment_events.c.to_state, payment_events.c.cause,
                   payment_events.c.detail, payment_events.c.at)
            .join(payments, payments.c.pk == payment_events.c.payment_pk)
            .where(payment_events.c.from_state.is_not(None))
            .order_by(payment_events.c.pk))).all()
    return [tuple(r) for r in rows]


async def test_moves_the_payments_still_in_the_state_each_with_its_event_in_order(
        hub: Hub) -> None:
    pks = {pid: await add_payment(hub.uow, pid) for pid in ("M-1", "M-2", "M-3")}
    pks["M-4"] = await add_payment(hub.uow, "M-4", state="reconciled")
    async with hub.uow() as u:
        moved = await repo.move_with_events(
            u.conn, [pks["M-3"], pks["M-1"], pks["M-4"], pks["M-2"]], "paid", "reconciled",
            "reconciled", "run r: matched", NOW)
        await u.commit()
    assert moved == 3  # M-4 was not paid: not moved, no event
    assert await _events(hub) == [
        (pid, "paid", "reconciled", "reconciled", "run r: matched", NOW)
        for pid in ("M-3", "M-1", "M-2")]
    async with hub.uow(read_only=True) as u:
        states = dict((await u.conn.execute(
            select(payments.c.payment_id, payments.c.state))).all())
        updated = (await u.conn.execute(select(payments.c.updated_at).where(
            payments.c.pk == pks["M-1"]))).scalar_one()
    assert states == {"M-1": "reconciled", "M-2": "reconciled", "M-3": "reconciled",
                      "M-4": "reconciled"}
    assert updated == NOW


async def test_nothing_to_move(hub: Hub) -> None:
    async with hub.uow() as u:
        assert await repo.move_with_events(u.conn, [], "paid", "reconciled", "reconciled",
                                           "d", NOW) == 0


async def test_rows_of_different_shapes_are_inserted_as_given(hub: Hub) -> None:
    pk = await add_payment(hub.uow, "S-1")
    async with hub.uow() as u:
        await insert_rows(u.conn, payment_events, [
            dict(payment_pk=pk, from_state="paid", to_state="paid", cause="note",
                 detail="first", at=NOW),
            dict(payment_pk=pk, from_state="paid", to_state="paid", cause="note", at=NOW)])
        await u.commit()
    assert [e[4] for e in await _events(hub)] == ["first", None]
