"""Issue 8: what the gateway records is what the rail did (SQLite and PostgreSQL).

A dispatcher killed mid-submit (``Crash`` from the fake rail: the rail took the payout, the
dispatcher recorded nothing) is the race behind each finding: the payment was ``instructed``
although its money could be at the rail, so a cancel, a death or an account change acted on
a payment the rail was about to pay.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gateway.composition import Hub
from gateway.ports.rail import PayoutState
from gateway.storage.tables import outbox
from tests.integration.payments.test_payouts import instruct, later, state_of
from tests.support.fakes import Crash, FakeRail
from tests.support.pensions import NIK, pension_body, process, run_pensions

pytestmark = pytest.mark.anyio

LEASE = 120  # seconds past any dispatcher lease: the killed dispatcher's task is taken over


async def crash_mid_submit(dispatcher: Any, rail: FakeRail) -> None:
    rail.submit_faults = ["crash"]
    with pytest.raises(Crash):
        await dispatcher.run_once()


async def cancel(client: Any, auth: dict[str, str], pid: str) -> Any:
    return await client.post(f"/v1/backoffice/payments/{pid}/cancel",
                             json={"reason": "sent in error"}, headers=auth)


async def discrepancies(client: Any, auth: dict[str, str]) -> list[dict[str, Any]]:
    r = await client.get("/v1/backoffice/discrepancies", headers=auth)
    assert r.status_code == 200, r.text
    return list(r.json()["discrepancies"])


async def test_the_submission_fact_is_committed_before_the_rail_call(
        client, auth, rail, dispatcher) -> None:
    await instruct(client, auth)
    await crash_mid_submit(dispatcher, rail)
    p = await state_of(client, auth, "PAY-0001")
    assert p["state"] == "sending"
    assert [e["cause"] for e in p["events"]] == ["instructed", "submit_attempt"]


async def test_cancel_while_in_flight_asks_the_rail_and_ends_in_its_truth(
        hub: Hub, client, auth, rail, dispatcher, clock) -> None:
    await instruct(client, auth)
    await crash_mid_submit(dispatcher, rail)
    assert rail.payouts["PAY-0001"].state == PayoutState.accepted  # the rail holds it
    r = await cancel(client, auth, "PAY-0001")
    assert r.status_code == 202 and r.json()["state"] == "cancel_requested"
    await later(clock, LEASE)
    await dispatcher.run_once()
    p = await state_of(client, auth, "PAY-0001")
    assert p["state"] == "cancelled" and rail.cancel_calls == 1
    assert rail.payouts["PAY-0001"].state == PayoutState.cancelled
    assert rail.ledger() == {"PAY-0001": 0}
    assert [(e["to"], e["cause"]) for e in p["events"]][-2:] == [
        ("cancel_requested", "cancelled"), ("cancelled", "rail_cancel")]
    assert await discrepancies(client, auth) == []
    async with hub.engine.connect() as conn:
        assert (await conn.execute(select(outbox.c.state).where(
            outbox.c.kind == "payout"))).scalars().all() == ["done"]


async def test_paid_despite_a_cancel_request_is_recorded_paid_with_a_discrepancy(
        client, auth, rail, dispatcher, clock) -> None:
    await instruct(client, auth)
    await crash_mid_submit(dispatcher, rail)
    rail.settle("PAY-0001")  # the rail pays before the cancel reaches it
    assert (await cancel(client, auth, "PAY-0001")).status_code == 202
    await later(clock, LEASE)
    await dispatcher.run_once()
    p = await state_of(client, auth, "PAY-0001")
    assert p["state"] == "paid" and rail.ledger() == {"PAY-0001": 1}
    [d] = await discrepancies(client, auth)
    assert (d["payment_id"], d["kind"], d["recorded_state"], d["rail_state"],
            d["overpayment"], d["state"]) == ("PAY-0001", "paid_after_cancel_request",
                                              "cancel_requested", "paid", True, "open")


async def test_a_report_contradicting_a_final_state_is_never_dropped(
        client, auth, rail, dispatcher) -> None:
    """The rail cancelled, then paid all the same: the record follows the money."""
    await instruct(client, auth)
    await dispatcher.run_once()
    assert (await cancel(client, auth, "PAY-0001")).status_code == 202
    await dispatcher.run_once()
    assert (await state_of(client, auth, "PAY-0001"))["state"] == "cancelled"
    rail.settle("PAY-0001")
    r = await client.post("/v1/rails/fake/callbacks", content=rail.callback("PAY-0001"),
                          headers={"x-fake-signature": "good"})
    assert r.status_code == 200 and r.json()["changed"] is True
    p = await state_of(client, auth, "PAY-0001")
    assert p["state"] == "paid" and p["events"][-1]["cause"] == "callback"
    [d] = await discrepancies(client, auth)
    assert d["kind"] == "paid_after_cancelled" and d["overpayment"] is True
    # A repeat of the report opens nothing more.
    await client.post("/v1/rails/fake/callbacks", content=rail.callback("PAY-0001"),
                      headers={"x-fake-signature": "good"})
    assert len(await discrepancies(client, auth)) == 1


async def test_a_cancel_that_reaches_the_rail_first_stops_the_late_submit(
        client, auth, rail, dispatcher, clock) -> None:
    """Killed after ``sending`` but before the request left: the rail's cancel records the key
    as cancelled, and nothing with that key can be paid afterwards."""
    rail.submit_faults = ["crash_before"]  # the request never left
    await instruct(client, auth)
    with pytest.raises(Crash):
        await dispatcher.run_once()
    assert (await state_of(client, auth, "PAY-0001"))["state"] == "sending"
    assert (await cancel(client, auth, "PAY-0001")).status_code == 202
    await later(clock, LEASE)
    await dispatcher.run_once()
    assert (await state_of(client, auth, "PAY-0001"))["state"] == "cancelled"
    assert rail.payouts["PAY-0001"].state == PayoutState.cancelled
    assert rail.ledger() == {"PAY-0001": 0}


async def test_a_first_attempt_refused_before_acceptance_is_still_cancelled_at_once(
        client, auth, rail, dispatcher) -> None:
    rail.submit_faults = ["transient"]  # e.g. 429 before acceptance: certainly not taken
    await instruct(client, auth)
    await dispatcher.run_once()
    r = await cancel(client, auth, "PAY-0001")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert "PAY-0001" not in rail.payouts and rail.cancel_calls == 0


async def test_cancel_of_a_known_outcome_conflicts(client, auth, rail, dispatcher,
                                                   clock) -> None:
    await instruct(client, auth)
    await dispatcher.run_once()
    rail.settle("PAY-0001")
    await later(clock)
    await dispatcher.run_once()
    r = await cancel(client, auth, "PAY-0001")
    assert r.status_code == 409 and r.json()["code"] == "state_conflict"


async def test_death_while_a_period_is_in_flight_asks_the_rail(
        hub: Hub, client, auth, rail, dispatcher, clock) -> None:
    await client.post("/v1/backoffice/pensions", json=pension_body(), headers=auth)
    assert await run_pensions(client, auth, "2026-08-01", clock) == 1
    await crash_mid_submit(dispatcher, rail)  # August's payout is at the rail
    rail.settle("PEN-ID-0042.202608")  # and the rail pays it
    await process(hub, "death.notify", {
        "pension_ref": "PEN-ID-0042", "person": {"name": "Siti Aminah", "national_id": NIK},
        "died_on": "2026-07-20", "documents": []})
    p = await state_of(client, auth, "PEN-ID-0042.202608")
    assert p["state"] == "cancel_requested" and p["events"][-1]["cause"] == "death_notified"
    await later(clock, LEASE)
    await dispatcher.run_once()
    p = await state_of(client, auth, "PEN-ID-0042.202608")
    assert p["state"] == "paid"  # booked as the rail did, not as cancelled
    [d] = await discrepancies(client, auth)
    assert d["kind"] == "paid_after_cancel_request" and d["overpayment"] is True


async def test_beneficiary_update_in_flight_keeps_the_sent_account_and_resends_it(
        hub: Hub, client, auth, rail, dispatcher, clock) -> None:
    await instruct(client, auth)
    await crash_mid_submit(dispatcher, rail)
    await process(hub, "beneficiary.update", {
        "claim_ref": "CLM-2026-000123",
        "payout": {"method": "ewallet", "provider": "MTWALLET", "account": "60199999999",
                   "account_name": "Siti A."}})
    p = await state_of(client, auth, "PAY-0001")
    assert p["events"][-1]["cause"] == "payout_update_refused"
    await later(clock, LEASE)
    await dispatcher.run_once()  # the resend carries the first body: the rail knows it
    p = await state_of(client, auth, "PAY-0001")
    assert p["state"] == "submitted"
    assert rail.payouts["PAY-0001"].received == 2
    assert rail.payouts["PAY-0001"].instruction is not None
    assert rail.payouts["PAY-0001"].instruction.account == "60123456789"
    r = await client.get("/v1/backoffice/dead-letters", headers=auth)
    assert r.json()["dead_letters"] == []
    async with hub.engine.connect() as conn:
        from gateway.storage.tables import payments
        account = (await conn.execute(select(payments.c.account).where(
            payments.c.payment_id == "PAY-0001"))).scalar_one()
    assert account == "60123456789"  # the record names the account the rail pays


async def test_stored_instruction_is_resent_exactly(hub: Hub, client, auth, rail, dispatcher,
                                                    clock) -> None:
    """Even if the payment's columns changed after the first attempt (by the hub, with its
    event), the resend is the instruction first sent (never a new body under the same key)."""
    from gateway.payments import repository as payments_repo
    from gateway.payments.domain import Cause
    await instruct(client, auth)
    await crash_mid_submit(dispatcher, rail)
    first = rail.payouts["PAY-0001"].instruction
    async with hub.uow() as uow:
        row = (await payments_repo.by_ids(uow.conn, ["PAY-0001"], lock=True))["PAY-0001"]
        await hub.payments.service.note(uow.conn, row, Cause.payout_updated, "test",
                                        clock.now, account_name="Someone Else")
        await uow.commit()
    clock.now += timedelta(seconds=LEASE)
    await dispatcher.run_once()
    assert rail.payouts["PAY-0001"].instruction == first
    assert (await state_of(client, auth, "PAY-0001"))["state"] == "submitted"


# -- returns after paid (finding 3) -------------------------------------------------------------

async def sent_to_partner(hub: Hub) -> list[tuple[str, dict[str, Any]]]:
    import json

    from gateway.storage.tables import messages
    async with hub.engine.connect() as conn:
        rows = (await conn.execute(select(messages.c.type, messages.c.canonical,
                                          messages.c.wire).where(
            messages.c.direction == "out").order_by(messages.c.pk))).all()
    return [(r.type, json.loads(r.canonical or r.wire)["payload"]) for r in rows]


async def payout_task_state(hub: Hub) -> str:
    async with hub.engine.connect() as conn:
        return str((await conn.execute(select(outbox.c.state).where(
            outbox.c.kind == "payout"))).scalar_one())


async def test_a_return_after_paid_is_found_by_sparse_polls_and_announced(
        hub: Hub, client, auth, rail, dispatcher, clock) -> None:
    await instruct(client, auth)
    await dispatcher.run_once()
    rail.settle("PAY-0001")
    await later(clock)
    await dispatcher.run_once()
    assert (await state_of(client, auth, "PAY-0001"))["state"] == "paid"
    assert await payout_task_state(hub) == "pending"  # still watched for a return
    polls = rail.status_calls
    await later(clock, 3600)
    await dispatcher.run_once()
    assert rail.status_calls == polls  # sparse: not asked again within the hour
    rail.settle("PAY-0001", PayoutState.returned)  # and its callback is lost
    await later(clock, 2 * 86400)
    await dispatcher.run_once()
    assert rail.status_calls == polls + 1
    p = await state_of(client, auth, "PAY-0001")
    assert p["state"] == "returned" and p["events"][-1]["cause"] == "status_poll"
    assert await payout_task_state(hub) == "done"
    [d] = await discrepancies(client, auth)
    assert (d["kind"], d["overpayment"]) == ("returned_after_paid", False)
    sent = await sent_to_partner(hub)
    assert [t for t, _ in sent] == ["payment.notice", "claim.status", "payment.notice",
                                    "claim.status"]
    notice, status = sent[2][1], sent[3][1]
    assert notice["status"] == "returned" and notice["payment_id"] == "PAY-0001"
    assert notice["reason"]
    assert status["status"] == "approved" and "returned" in status["reason"]


async def test_polls_stop_when_the_return_window_has_passed(
        hub: Hub, client, auth, rail, dispatcher, clock) -> None:
    await instruct(client, auth)
    await dispatcher.run_once()
    rail.settle("PAY-0001")
    await later(clock)
    await dispatcher.run_once()
    for _ in range(70):  # bounded: 60 days of daily polls, then the task completes
        if await payout_task_state(hub) == "done":
            break
        await later(clock, 86400)
        await dispatcher.run_once()
    assert await payout_task_state(hub) == "done"
    assert (await state_of(client, auth, "PAY-0001"))["state"] == "paid"
    assert 55 <= rail.status_calls <= 65


# -- the outbox around payouts (finding 6) ------------------------------------------------------

async def test_business_refusals_never_open_the_rails_breaker(
        hub: Hub, client, auth, rail, clock) -> None:
    dispatcher = hub.dispatcher(batch=50)
    for i in range(6):
        await instruct(client, auth, payment_id=f"PAY-BAD{i}")
    rail.submit_faults = ["permanent"] * 6  # six bad accounts in a row
    await dispatcher.run_once()
    assert dispatcher.breakers.open_destinations() == []
    await instruct(client, auth, payment_id="PAY-GOOD")
    await dispatcher.run_once()
    assert (await state_of(client, auth, "PAY-GOOD"))["state"] == "submitted"
    # An outage (no answer at all) still opens it.
    for i in range(6):
        await instruct(client, auth, payment_id=f"PAY-LOST{i}")
    rail.submit_faults = ["lost"] * 6
    await dispatcher.run_once()
    assert dispatcher.breakers.open_destinations() == ["fake"]


async def test_a_rails_retry_after_is_honoured(hub: Hub, client, auth, rail, dispatcher,
                                               clock) -> None:
    rail.submit_faults = ["throttle"]
    await instruct(client, auth)
    await dispatcher.run_once()
    async with hub.engine.connect() as conn:
        task = (await conn.execute(select(outbox).where(outbox.c.kind == "payout"))).one()
    assert task.state == "pending"
    assert task.next_attempt_at.replace(tzinfo=clock.now.tzinfo) >= clock.now + timedelta(
        seconds=600)


async def test_age_never_dead_letters_a_payment_whose_money_may_be_at_the_rail(
        hub: Hub, client, auth, rail, dispatcher, clock, caplog) -> None:
    await instruct(client, auth)
    await dispatcher.run_once()  # submitted, pending at the rail
    await later(clock, 5 * 86400)  # past the outbox's maximum age (3 days)
    rail.status_faults = ["transient"]  # one poll fails
    with caplog.at_level("ERROR"):
        await dispatcher.run_once()
    assert await payout_task_state(hub) == "pending"
    assert any("ALERT" in r.getMessage() for r in caplog.records)
    rail.settle("PAY-0001")
    await later(clock, 3600)
    await dispatcher.run_once()
    assert (await state_of(client, auth, "PAY-0001"))["state"] == "paid"


# -- amounts (finding 7) -------------------------------------------------------------------------

@pytest.mark.parametrize(("over", "code"), [
    ({"amount": {"amount": "999999999999999.99", "currency": "MYR"}}, "amount_over_ceiling"),
    ({"amount": {"amount": "500000.01", "currency": "MYR"}}, "amount_over_ceiling"),
    ({"fx": {"currency": "IDR", "rate": "999999999999.999999999999", "source": "BNM",
             "at": "2026-11-20T00:00:00Z"}}, "amount_invalid"),
    ({"amount": {"amount": "400000.00", "currency": "MYR"},
      "fx": {"currency": "IDR", "rate": "4600.00", "source": "BNM",
             "at": "2026-11-20T00:00:00Z"}}, "amount_over_ceiling"),
    ({"fx": {"currency": "IDR", "rate": "0.000000000001", "source": "BNM",
             "at": "2026-11-20T00:00:00Z"}}, "amount_invalid"),
])
async def test_bad_amounts_are_a_422_with_a_code(client, auth, rail, over: dict[str, Any],
                                                 code: str) -> None:
    from tests.support.payments import payment_body
    r = await client.post("/v1/backoffice/payments", json=payment_body(**over), headers=auth)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code
    r = await client.get("/v1/backoffice/payments", headers=auth)
    assert r.json()["payments"] == []  # nothing stored


async def test_an_amount_at_the_ceiling_is_instructed(client, auth, rail) -> None:
    await instruct(client, auth, amount={"amount": "500000.00", "currency": "MYR"})
