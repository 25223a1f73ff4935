"""A payment changed beside the hub (no event) is held, not written over: every writer of a
payment first compares it with its newest event, so the hub neither pays out a redirected
account nor records a new event over the change (which would make the change look like its
own). Through the HTTP app and the dispatcher, on both databases."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.composition import Hub
from gateway.errors import EvidenceMismatchError
from gateway.evidence.chain import chain_pending, verify_chain
from gateway.storage.tables import outbox, payment_events, payments
from tests.support.fakes import FakeRail
from tests.support.insider import change_payment
from tests.support.partners import TestPartner
from tests.support.payments import payment_body, update_payout

pytestmark = pytest.mark.anyio


async def instruct(client: httpx.AsyncClient, auth: dict[str, str], payment_id: str,
                   **over: Any) -> None:
    r = await client.post("/v1/backoffice/payments", json=payment_body(payment_id, **over),
                          headers=auth)
    assert r.status_code == 201, r.text


async def row(hub: Hub, payment_id: str) -> Any:
    async with hub.engine.connect() as conn:
        return (await conn.execute(select(payments).where(
            payments.c.payment_id == payment_id))).one()


async def tamper(hub: Hub, payment_id: str, **values: Any) -> None:
    await change_payment(hub.engine, payment_id, **values)


async def event_count(hub: Hub, payment_id: str) -> int:
    async with hub.engine.connect() as conn:
        return len((await conn.execute(select(payment_events.c.pk).join(
            payments, payments.c.pk == payment_events.c.payment_pk).where(
            payments.c.payment_id == payment_id))).all())


async def payout_task(hub: Hub, payment_id: str) -> Any:
    async with hub.engine.connect() as conn:
        return (await conn.execute(select(outbox).where(
            outbox.c.kind == "payout", outbox.c.ref == payment_id))).one()


def mismatch(r: Any) -> str:
    return f"payments pk {r.pk} (payment {r.payment_id}): its state, payout account or another"


async def test_a_payout_whose_account_was_redirected_beside_the_hub_is_held(
        client, hub: Hub, auth, rail: FakeRail, caplog) -> None:
    await instruct(client, auth, "PAY-0001")
    # Another claim's: its payouts are not queued behind the first claim's.
    await instruct(client, auth, "PAY-0002", claim_ref="CLM-2026-000124")
    await tamper(hub, "PAY-0002", account="60199990000")
    events = await event_count(hub, "PAY-0002")
    with caplog.at_level(logging.ERROR):
        await hub.dispatcher(batch=50, kinds=["payout"]).run_once()
    # The other payment of the same batch went out; the redirected one did not.
    assert "PAY-0001" in rail.payouts and "PAY-0002" not in rail.payouts
    held = await row(hub, "PAY-0002")
    assert (held.state, held.account) == ("instructed", "60199990000")
    assert await event_count(hub, "PAY-0002") == events  # nothing recorded over it
    task = await payout_task(hub, "PAY-0002")
    assert task.state == "pending"  # held, never given up: an operator must look
    assert task.last_error.startswith("EvidenceMismatchError: " + mismatch(held))
    assert any("ALERT" in r.getMessage() and "PAY-0002" in r.getMessage()
               for r in caplog.records)
    report = await verify_chain(hub.uow, clock=hub.clock)
    assert report.broken is not None and report.broken.startswith(mismatch(held))


async def test_a_rail_answer_is_not_recorded_over_a_changed_payment_until_it_is_restored(
        client, hub: Hub, auth, rail: FakeRail, clock) -> None:
    await instruct(client, auth, "PAY-0001")
    dispatcher = hub.dispatcher(batch=50, kinds=["payout"])
    await dispatcher.run_once()
    sent = await row(hub, "PAY-0001")
    assert sent.state == "submitted" and "PAY-0001" in rail.payouts
    await tamper(hub, "PAY-0001", account_name="Someone Else")
    rail.settle("PAY-0001")
    clock.now = clock.now + timedelta(hours=2)
    await dispatcher.run_once()
    held = await row(hub, "PAY-0001")
    assert (held.state, held.account_name) == ("submitted", "Someone Else")
    task = await payout_task(hub, "PAY-0001")
    assert task.state == "pending" and task.last_error.startswith("EvidenceMismatchError")
    # Restored to what its newest event recorded, the payment goes on where it stopped.
    await tamper(hub, "PAY-0001", account_name=sent.account_name)
    clock.now = clock.now + timedelta(hours=2)
    await dispatcher.run_once()
    assert (await row(hub, "PAY-0001")).state == "paid"
    while await chain_pending(hub.uow, clock=hub.clock):
        pass
    report = await verify_chain(hub.uow, clock=hub.clock)
    assert report.ok, report.broken


async def test_a_partner_account_change_is_not_written_over_a_changed_payment(
        client, hub: Hub, auth, rail, bpjstk: TestPartner) -> None:
    await instruct(client, auth, "PAY-0001")
    await tamper(hub, "PAY-0001", account="60199990000")
    events = await event_count(hub, "PAY-0001")
    await update_payout(client, hub, bpjstk)
    held = await row(hub, "PAY-0001")
    assert held.account == "60199990000" and held.provider != "BOOST"
    assert await event_count(hub, "PAY-0001") == events
    async with hub.engine.connect() as conn:
        task = (await conn.execute(select(outbox).where(
            outbox.c.kind == "process_inbound"))).one()
    assert task.state == "pending" and task.last_error.startswith("EvidenceMismatchError")


async def test_ops_cancelling_a_changed_payment_get_a_specific_problem(
        client, hub: Hub, auth, rail) -> None:
    await instruct(client, auth, "PAY-0001")
    await tamper(hub, "PAY-0001", reason="set by hand")
    r = await client.post("/v1/backoffice/payments/PAY-0001/cancel", headers=auth,
                          json={"reason": "duplicate"})
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "evidence_mismatch"
    assert r.json()["detail"].startswith(mismatch(await row(hub, "PAY-0001")))
    assert (await row(hub, "PAY-0001")).state == "instructed"


async def test_a_reconciliation_does_not_reconcile_a_changed_payment(
        client, hub: Hub, auth, rail: FakeRail, clock) -> None:
    await instruct(client, auth, "PAY-0001")
    dispatcher = hub.dispatcher(batch=50, kinds=["payout"])
    await dispatcher.run_once()
    rail.settle("PAY-0001")
    clock.now = clock.now + timedelta(hours=2)
    await dispatcher.run_once()
    assert (await row(hub, "PAY-0001")).state == "paid"
    await tamper(hub, "PAY-0001", rail_reference="FK999999")
    events = await event_count(hub, "PAY-0001")
    paid = await row(hub, "PAY-0001")
    with pytest.raises(EvidenceMismatchError, match=r"payment PAY-0001\)"):
        async with hub.uow() as u:
            await hub.payments.service.reconcile_many(u.conn, [paid._mapping], "test run",
                                                       clock.now)
            await u.commit()
    assert (await row(hub, "PAY-0001")).state == "paid"
    assert await event_count(hub, "PAY-0001") == events
