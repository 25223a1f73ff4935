"""Payments end to end inside one process: back-office API, payout handler, callbacks, on
SQLite and PostgreSQL, against the fake rail. Every test ends with the two ledgers agreeing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.composition import Hub
from gateway.ports.rail import PayoutState
from gateway.storage.tables import messages, outbox, payment_events
from tests.support.fakes import FakeRail
from tests.support.payments import payment_body

pytestmark = pytest.mark.anyio


async def ledgers_agree(hub: Hub, rail: FakeRail) -> None:
    """Every payment the rail paid is paid once, and is paid (or returned) in the gateway."""
    assert all(n <= 1 for n in rail.ledger().values()), rail.ledger()
    async with hub.engine.connect() as conn:
        from gateway.storage.tables import payments
        rows = (await conn.execute(select(payments.c.payment_id, payments.c.state,
                                          payments.c.idempotency_key))).all()
    paid_at_rail = {k for k, n in rail.ledger().items() if n == 1}
    settled = {r.idempotency_key for r in rows if r.state in ("paid", "returned")}
    assert settled <= paid_at_rail
    # A payment the rail paid is either recorded paid or still being followed (never lost).
    for r in rows:
        if r.idempotency_key in paid_at_rail:
            assert r.state in ("paid", "returned", "submitted", "unknown"), r


async def instruct(client: httpx.AsyncClient, auth: dict[str, str], **over: Any) -> Any:
    r = await client.post("/v1/backoffice/payments", json=payment_body(**over), headers=auth)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def state_of(client: httpx.AsyncClient, auth: dict[str, str], pid: str) -> dict[str, Any]:
    r = await client.get(f"/v1/backoffice/payments/{pid}", headers=auth)
    assert r.status_code == 200, r.text
    return r.json()


async def causes(hub: Hub) -> list[tuple[str | None, str, str]]:
    async with hub.engine.connect() as conn:
        return [(r.from_state, r.to_state, r.cause) for r in await conn.execute(
            select(payment_events).order_by(payment_events.c.pk))]


async def later(clock: Any, seconds: float = 7200) -> None:
    clock.now = clock.now + timedelta(seconds=seconds)


# -- back-office API -----------------------------------------------------------------------------

async def test_instruct_is_idempotent_and_conflicts(client, auth, rail) -> None:
    r1 = await client.post("/v1/backoffice/payments", json=payment_body(), headers=auth)
    assert r1.status_code == 201 and r1.json()["state"] == "instructed"
    assert r1.json()["idempotency_key"] == "PAY-0001"
    r2 = await client.post("/v1/backoffice/payments", json=payment_body(), headers=auth)
    assert r2.status_code == 200 and r2.json()["payment_id"] == "PAY-0001"
    r3 = await client.post("/v1/backoffice/payments", headers=auth,
                           json=payment_body(amount={"amount": "1.00", "currency": "MYR"}))
    assert r3.status_code == 409 and r3.json()["code"] == "payment_conflict"
    assert r3.headers["content-type"] == "application/problem+json"


async def test_auth_and_validation(client, auth, rail, instance) -> None:
    r = await client.post("/v1/backoffice/payments", json=payment_body())
    assert r.status_code == 401 and r.json()["code"] == "token_invalid"
    r = await client.get("/v1/backoffice/payments",
                         headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    bad = [
        payment_body(amount={"amount": "12.5", "currency": "MYR"}),  # not 2 decimals
        payment_body(amount={"amount": "12.50", "currency": "IDR"}),  # not MYR without fx
        payment_body(payment_id="x" * 36),  # longer than an EndToEndId
        payment_body(pension_ref="PEN-1"),  # both claim and pension
        payment_body(rail="nosuchrail"),
        {**payment_body(), "extra": 1},
    ]
    for body in bad:
        r = await client.post("/v1/backoffice/payments", json=body, headers=auth)
        assert r.status_code == 422 and r.json()["code"] == "schema_violation", (body, r.text)


async def test_scopes_are_enforced(hub, client, rail, instance) -> None:
    import hashlib

    from gateway.backoffice.auth import load_tokens
    path = instance / "ro.toml"
    digest = hashlib.sha256(b"reader-token").hexdigest()
    path.write_text(f'[clients.reader]\ntoken_sha256 = "{digest}"\nscopes = ["payments:read"]\n')
    hub.payments.tokens = load_tokens(path)
    headers = {"Authorization": "Bearer reader-token"}
    assert (await client.get("/v1/backoffice/payments", headers=headers)).status_code == 200
    r = await client.post("/v1/backoffice/payments", json=payment_body(), headers=headers)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


async def test_fx_conversion_recorded_with_rounding(hub, client, auth, rail) -> None:
    from gateway.payments.accounts import RailPractice
    hub.payments.config.practices["fake"] = RailPractice.from_section({"minor_units": 0})
    fx = {"currency": "IDR", "rate": "3512.3456", "source": "BNM reference rate",
          "at": "2026-11-20T08:00:00Z"}
    p = await instruct(client, auth, fx=fx, amount={"amount": "1250.55", "currency": "MYR"})
    # 1250.55 * 3512.3456 = 4392363.79... IDR, paid in whole rupiah (rounded down) on a rail
    # whose practice that is
    assert p["amount"] == {"amount": "4392363.00", "currency": "IDR"}
    assert p["base_amount"] == {"amount": "1250.55", "currency": "MYR"}
    assert p["fx"]["source"] == "BNM reference rate" and p["fx"]["rate"] == "3512.3456"
    assert p["fx"]["rounding_minor"] < 0 and p["fx"]["exact"].startswith("4392363.")


async def test_cancel_at_once_only_before_sending(client, auth, rail, dispatcher) -> None:
    await instruct(client, auth, payment_id="PAY-C1")
    await instruct(client, auth, payment_id="PAY-C2")
    r = await client.post("/v1/backoffice/payments/PAY-C1/cancel", json={"reason": "typo"},
                          headers=auth)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    await dispatcher.run_once()
    assert "PAY-C1" not in rail.payouts and "PAY-C2" in rail.payouts
    # Sent: the rail holds it, so the cancel is a request to the rail, answered by it.
    r = await client.post("/v1/backoffice/payments/PAY-C2/cancel", json={"reason": "late"},
                          headers=auth)
    assert r.status_code == 202 and r.json()["state"] == "cancel_requested"
    await dispatcher.run_once()
    assert (await state_of(client, auth, "PAY-C2"))["state"] == "cancelled"
    assert rail.payouts["PAY-C2"].state == PayoutState.cancelled
    r = await client.post("/v1/backoffice/payments/PAY-C2/cancel", json={"reason": "again"},
                          headers=auth)
    assert r.status_code == 409 and r.json()["code"] == "state_conflict"
    r = await client.post("/v1/backoffice/payments/NOPE/cancel", json={"reason": "x"},
                          headers=auth)
    assert r.status_code == 404


async def test_list_and_query(client, auth, rail) -> None:
    for i in range(5):
        await instruct(client, auth, payment_id=f"PAY-L{i}")
    r = await client.get("/v1/backoffice/payments?limit=2&state=instructed", headers=auth)
    page = r.json()
    assert [p["payment_id"] for p in page["payments"]] == ["PAY-L4", "PAY-L3"]
    r = await client.get(f"/v1/backoffice/payments?limit=10&before={page['next']}", headers=auth)
    assert [p["payment_id"] for p in r.json()["payments"]] == ["PAY-L2", "PAY-L1", "PAY-L0"]
    assert (await client.get("/v1/backoffice/payments/NOPE", headers=auth)).status_code == 404


# -- the payout handler --------------------------------------------------------------------------

async def test_happy_path_paid_once_with_notice_and_claim_status(
        hub, client, auth, rail, dispatcher, clock) -> None:
    await instruct(client, auth)
    assert await dispatcher.run_once() == 1
    assert (await state_of(client, auth, "PAY-0001"))["state"] == "submitted"
    assert rail.payouts["PAY-0001"].instruction.idempotency_key == "PAY-0001"
    # Nothing due until the poll time; then the poll finds it paid.
    assert await dispatcher.run_once() == 0
    rail.settle("PAY-0001")
    await later(clock)
    assert await dispatcher.run_once() >= 1
    p = await state_of(client, auth, "PAY-0001")
    assert p["state"] == "paid" and p["rail_reference"] == "FK000001"
    assert [(e["from"], e["to"], e["cause"]) for e in p["events"]] == [
        (None, "instructed", "instructed"), ("instructed", "sending", "submit_attempt"),
        ("sending", "submitted", "rail_answer"), ("submitted", "paid", "status_poll")]
    async with hub.engine.connect() as conn:
        sent = (await conn.execute(select(messages.c.type, messages.c.correlation_id).where(
            messages.c.direction == "out").order_by(messages.c.pk))).all()
        tasks = (await conn.execute(select(outbox.c.kind, outbox.c.state, outbox.c.ordering_key)
                                    .where(outbox.c.kind == "payout"))).all()
    assert [s.type for s in sent] == ["payment.notice", "claim.status"]
    assert {s.correlation_id for s in sent} == {"CLM-2026-000123"}
    assert tasks == [("payout", "pending", None)]  # watched for a return (test_payment_truth)
    assert rail.submits == 1
    await ledgers_agree(hub, rail)


async def test_unknown_outcome_asks_before_resending(hub, client, auth, rail, dispatcher,
                                                     clock) -> None:
    rail.submit_faults = ["unknown_after"]  # the rail paid, the answer was lost
    await instruct(client, auth)
    await dispatcher.run_once()
    assert (await state_of(client, auth, "PAY-0001"))["state"] == "unknown"
    await later(clock)
    await dispatcher.run_once()
    p = await state_of(client, auth, "PAY-0001")
    assert p["state"] == "submitted"
    assert rail.payouts["PAY-0001"].received == 1  # asked, not resent
    assert [e["cause"] for e in p["events"]] == ["instructed", "submit_attempt", "rail_unknown",
                                                 "status_poll"]
    rail.settle("PAY-0001")
    await later(clock)
    await dispatcher.run_once()
    assert (await state_of(client, auth, "PAY-0001"))["state"] == "paid"
    await ledgers_agree(hub, rail)


async def test_unknown_outcome_resends_when_rail_has_no_record(hub, client, auth, rail,
                                                               dispatcher, clock) -> None:
    rail.submit_faults = ["lost"]
    await instruct(client, auth)
    await dispatcher.run_once()
    assert (await state_of(client, auth, "PAY-0001"))["state"] == "unknown"
    rail.status_faults = ["transient"]  # the rail cannot be asked yet: keep waiting
    await later(clock)
    await dispatcher.run_once()
    assert (await state_of(client, auth, "PAY-0001"))["state"] == "unknown"
    assert "PAY-0001" not in rail.payouts
    await later(clock)
    await dispatcher.run_once()
    p = await state_of(client, auth, "PAY-0001")
    assert p["state"] == "submitted"
    assert [(e["from"], e["to"]) for e in p["events"]] == [
        (None, "instructed"), ("instructed", "sending"), ("sending", "unknown"),
        ("unknown", "unknown"), ("unknown", "submitted")]
    assert p["events"][3]["cause"] == "rail_no_record"
    await ledgers_agree(hub, rail)


async def test_transient_error_retries_later(hub, client, auth, rail, dispatcher, clock) -> None:
    rail.submit_faults = ["transient"]
    await instruct(client, auth)
    await dispatcher.run_once()
    # The first attempt certainly never reached the rail: provably not sent.
    p = await state_of(client, auth, "PAY-0001")
    assert p["state"] == "instructed" and p["events"][-1]["cause"] == "rail_not_taken"
    async with hub.engine.connect() as conn:
        task = (await conn.execute(select(outbox).where(outbox.c.kind == "payout"))).one()
    assert task.state == "pending" and "TransientDeliveryError" in task.last_error
    await later(clock)
    await dispatcher.run_once()
    assert (await state_of(client, auth, "PAY-0001"))["state"] == "submitted"
    await ledgers_agree(hub, rail)


async def test_permanent_refusal_dead_letters_and_ops_retry(hub, client, auth, rail, dispatcher,
                                                            clock) -> None:
    rail.submit_faults = ["permanent"]
    await instruct(client, auth)
    await dispatcher.run_once()
    p = await state_of(client, auth, "PAY-0001")
    assert p["state"] == "sending" and p["events"][-1]["cause"] == "rail_refused"
    r = await client.get("/v1/backoffice/dead-letters", headers=auth)
    dead = r.json()["dead_letters"]
    assert len(dead) == 1 and dead[0]["ref"] == "PAY-0001"
    assert "invalid_account" in dead[0]["last_error"]
    r = await client.post(f"/v1/backoffice/dead-letters/{dead[0]['id']}/retry", headers=auth)
    assert r.status_code == 200
    r = await client.post("/v1/backoffice/dead-letters/999999/retry", headers=auth)
    assert r.status_code == 404
    await dispatcher.run_once()
    assert (await state_of(client, auth, "PAY-0001"))["state"] == "submitted"
    assert (await client.get("/v1/backoffice/dead-letters", headers=auth)).json() == {
        "dead_letters": []}
    await ledgers_agree(hub, rail)


async def test_rail_failure_and_return(hub, client, auth, rail, dispatcher, clock) -> None:
    await instruct(client, auth, payment_id="PAY-F")
    await instruct(client, auth, payment_id="PAY-R")
    await dispatcher.run_once()
    rail.settle("PAY-F", PayoutState.failed)
    rail.settle("PAY-R", PayoutState.paid)
    await later(clock)
    await dispatcher.run_once()
    assert (await state_of(client, auth, "PAY-F"))["state"] == "failed"
    assert (await state_of(client, auth, "PAY-F"))["reason"] == "account_blocked"
    assert (await state_of(client, auth, "PAY-R"))["state"] == "paid"
    rail.settle("PAY-R", PayoutState.returned)
    r = await client.post("/v1/rails/fake/callbacks", content=rail.callback("PAY-R"),
                          headers={"x-fake-signature": "good"})
    assert r.status_code == 200 and r.json()["state"] == "returned"
    await ledgers_agree(hub, rail)


async def test_callbacks_duplicate_stale_and_forged(hub, client, auth, rail, dispatcher) -> None:
    await instruct(client, auth)
    await dispatcher.run_once()
    rail.settle("PAY-0001")
    good = {"x-fake-signature": "good"}
    r = await client.post("/v1/rails/fake/callbacks", content=rail.callback("PAY-0001"),
                          headers=good)
    assert r.json() == {"payment_id": "PAY-0001", "state": "paid", "changed": True}
    r = await client.post("/v1/rails/fake/callbacks", content=rail.callback("PAY-0001"),
                          headers=good)
    assert r.json()["changed"] is False  # duplicate
    stale = b'{"key": "PAY-0001", "state": "processing"}'
    r = await client.post("/v1/rails/fake/callbacks", content=stale, headers=good)
    assert r.json() == {"payment_id": "PAY-0001", "state": "paid", "changed": False}
    r = await client.post("/v1/rails/fake/callbacks", content=rail.callback("PAY-0001"),
                          headers={"x-fake-signature": "forged"})
    assert r.status_code == 401 and r.json()["code"] == "signature_invalid"
    r = await client.post("/v1/rails/fake/callbacks", content=b'{"key": "NOPE", "state": "paid"}',
                          headers=good)
    assert r.status_code == 404
    r = await client.post("/v1/rails/nosuch/callbacks", content=b"{}", headers=good)
    assert r.status_code == 404
    async with hub.engine.connect() as conn:
        notices = (await conn.execute(select(messages.c.type).where(
            messages.c.type == "payment.notice"))).all()
    assert len(notices) == 1  # one notice however many callbacks
    await ledgers_agree(hub, rail)


async def test_lease_lost_completes_nothing_and_pays_once(hub, client, auth, rail,
                                                          clock) -> None:
    from gateway.outbox.claiming import claim
    from gateway.outbox.records import LeaseLost
    from gateway.payments.payout import PayoutHandler
    await instruct(client, auth)
    handler = next(h for h in hub.payments.handlers() if isinstance(h, PayoutHandler))
    [a] = await claim(hub.uow, owner="A", now=clock.now, lease=timedelta(seconds=10), limit=5)
    await later(clock, 60)  # A stalls past its lease; B takes over and finishes first
    [b] = await claim(hub.uow, owner="B", now=clock.now, lease=timedelta(seconds=10), limit=5)
    assert (await handler.handle([b])) == [None]
    [res] = await handler.handle([a])
    assert isinstance(res, LeaseLost)
    assert rail.payouts["PAY-0001"].received == 1  # A saw "submitted" and only asked
    assert (await state_of(client, auth, "PAY-0001"))["state"] == "submitted"
    await ledgers_agree(hub, rail)


async def test_batch_of_many(hub, client, auth, rail, dispatcher, clock) -> None:
    for i in range(120):
        await instruct(client, auth, payment_id=f"PAY-B{i:03d}")
    rail.submit_faults = ["transient", "lost", "unknown_after", "ok"] * 10
    for _ in range(6):
        await dispatcher.run_once()
        for key in list(rail.payouts):
            rail.settle(key)
        await later(clock)
    r = await client.get("/v1/backoffice/payments?limit=500&state=paid", headers=auth)
    assert len(r.json()["payments"]) == 120
    assert set(rail.ledger().values()) == {1} and len(rail.ledger()) == 120
    await ledgers_agree(hub, rail)


async def test_resend_after_crash_finds_the_payout_already_returned(hub, client, auth, rail,
                                                                   dispatcher, clock) -> None:
    """A dispatcher sent the payout and died before recording the answer; by the time the
    task is taken over the rail has paid and returned it. The resend (same key) learns that,
    the payment is returned, the task is done, and nothing was paid twice."""
    from gateway.payments.instruction import build
    from gateway.payments.repository import by_ids

    await instruct(client, auth)
    async with hub.engine.connect() as conn:
        row = (await by_ids(conn, ["PAY-0001"]))["PAY-0001"]
    await rail.submit_each(httpx.AsyncClient(), [build(row)])  # the dead dispatcher's send
    rail.settle("PAY-0001", PayoutState.paid)
    rail.settle("PAY-0001", PayoutState.returned)
    await dispatcher.run_once()
    assert (await state_of(client, auth, "PAY-0001"))["state"] == "returned"
    async with hub.engine.connect() as conn:
        states = set((await conn.execute(select(outbox.c.state).where(
            outbox.c.kind == "payout"))).scalars())
    assert states == {"done"}
    assert rail.payouts["PAY-0001"].received == 2 and rail.ledger() == {"PAY-0001": 1}
    await ledgers_agree(hub, rail)
