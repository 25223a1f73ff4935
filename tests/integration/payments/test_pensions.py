"""Pension schedules, life certificates and death notifications (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from gateway.composition import Hub
from gateway.storage.tables import messages
from tests.support.payments import payment_body
from tests.support.pensions import NIK, payments_of, pension_body, process, run_pensions

pytestmark = pytest.mark.anyio

_CLOCK: list[Any] = []


@pytest.fixture(autouse=True)
def _run_clock(clock: Any) -> Any:
    """``run`` moves the hub's clock to the run's day: a run for a future day is refused."""
    _CLOCK[:] = [clock]
    yield
    _CLOCK.clear()


async def run(client, auth, today: str) -> int:
    return await run_pensions(client, auth, today, _CLOCK[0])


async def test_schedule_creates_each_period_once(client, auth, rail) -> None:
    r = await client.post("/v1/backoffice/pensions", json=pension_body(), headers=auth)
    assert r.status_code == 201 and r.json()["next_period"] == "2026-08"
    r = await client.post("/v1/backoffice/pensions", json=pension_body(), headers=auth)
    assert r.status_code == 200
    r = await client.post("/v1/backoffice/pensions", headers=auth,
                          json=pension_body(monthly_amount={"amount": "1.00", "currency": "MYR"}))
    assert r.status_code == 409 and r.json()["code"] == "payment_conflict"
    assert await run(client, auth, "2026-10-15") == 3  # Aug, Sep, Oct caught up
    assert await run(client, auth, "2026-10-20") == 0  # never twice
    assert await run(client, auth, "2026-11-01") == 1
    ids = await payments_of(client, auth, pension_ref="PEN-ID-0042")
    assert sorted(ids) == [f"PEN-ID-0042.2026{m}" for m in ("08", "09", "10", "11")]
    p = (await client.get("/v1/backoffice/payments/PEN-ID-0042.202611", headers=auth)).json()
    assert p["amount"] == {"amount": "550.00", "currency": "MYR"} and p["period"] == "2026-11"


async def test_schedule_ends(client, auth, rail) -> None:
    await client.post("/v1/backoffice/pensions", headers=auth,
                      json=pension_body(end_on="2026-09-30", life_certificate_due_on=None))
    assert await run(client, auth, "2027-03-01") == 2
    s = (await client.get("/v1/backoffice/pensions/PEN-ID-0042", headers=auth)).json()
    assert s["state"] == "ended" and s["events"][-1]["cause"] == "schedule_ended"


async def test_overdue_life_certificate_suspends_and_certificate_resumes(
        hub, client, auth, rail, clock) -> None:
    await client.post("/v1/backoffice/pensions", json=pension_body(), headers=auth)
    assert await run(client, auth, "2026-12-01") == 5
    assert await run(client, auth, "2027-01-02") == 0  # certificate was due 2026-12-31
    s = (await client.get("/v1/backoffice/pensions/PEN-ID-0042", headers=auth)).json()
    assert s["state"] == "suspended" and "life_certificate_overdue" in s["reason"]
    from datetime import UTC, datetime
    clock.now = datetime(2027, 1, 5, 4, tzinfo=UTC)  # a certificate is never dated ahead
    await process(hub, "life_certificate.submit", {
        "pension_ref": "PEN-ID-0042", "beneficiary": {"name": "Siti Aminah", "national_id": NIK},
        "certified_on": "2027-01-05", "certified_by": "Kelurahan Cikini", "documents": []})
    s = (await client.get("/v1/backoffice/pensions/PEN-ID-0042", headers=auth)).json()
    assert s["state"] == "active" and s["life_certificate_due_on"] == "2028-01-05"
    assert [e["cause"] for e in s["events"]] == ["instructed", "periods_created",
                                                "life_certificate_overdue",
                                                "life_certificate_received"]
    assert s["events"][1]["detail"] == "2026-08 to 2026-12: 5 payment(s)"
    assert await run(client, auth, "2027-01-06") == 1  # January, in arrears


async def test_death_stops_schedule_and_cancels_unsent_later_payments(
        hub, client, auth, rail, dispatcher) -> None:
    await client.post("/v1/backoffice/pensions", json=pension_body(), headers=auth)
    assert await run(client, auth, "2026-09-01") == 2
    await dispatcher.run_once()  # Aug and Sep go to the rail
    assert await run(client, auth, "2026-11-01") == 2  # Oct, Nov not yet sent
    # Another partner cannot stop this pension.
    await process(hub, "death.notify", {
        "pension_ref": "PEN-ID-0042", "person": {"name": "Siti Aminah", "national_id": NIK},
        "died_on": "2026-09-20", "documents": []}, partner="PK-MOPHRD")
    assert (await client.get("/v1/backoffice/pensions/PEN-ID-0042",
                             headers=auth)).json()["state"] == "active"
    await process(hub, "death.notify", {
        "pension_ref": "PEN-ID-0042", "person": {"name": "Siti Aminah", "national_id": NIK},
        "died_on": "2026-09-20", "documents": []})
    s = (await client.get("/v1/backoffice/pensions/PEN-ID-0042", headers=auth)).json()
    assert s["state"] == "stopped" and s["died_on"] == "2026-09-20"
    assert "death on 2026-09-20" in s["reason"]
    states = await payments_of(client, auth, pension_ref="PEN-ID-0042")
    assert states == {"PEN-ID-0042.202608": "submitted", "PEN-ID-0042.202609": "submitted",
                      "PEN-ID-0042.202610": "cancelled", "PEN-ID-0042.202611": "cancelled"}
    p = (await client.get("/v1/backoffice/payments/PEN-ID-0042.202610", headers=auth)).json()
    assert p["events"][-1]["cause"] == "death_notified"
    assert await run(client, auth, "2027-02-01") == 0  # nothing after a death
    await dispatcher.run_once()
    assert "PEN-ID-0042.202610" not in rail.payouts


async def test_death_notify_by_claim_ref_stops_that_persons_pensions_only(
        hub, client, auth, rail) -> None:
    """A funeral benefit owed to the family is not stopped; the pension awarded on the claim
    to the person who died is (schedules are linked to their claim)."""
    await client.post("/v1/backoffice/payments", headers=auth,
                      json=payment_body(benefit="EI_FUNERAL"))
    r = await client.post("/v1/backoffice/pensions", headers=auth,
                          json=pension_body(claim_ref="CLM-2026-000123"))
    assert r.status_code == 201, r.text
    assert await run(client, auth, "2026-10-01") == 3
    await process(hub, "death.notify", {
        "claim_ref": "CLM-2026-000123", "person": {"name": "Siti Aminah", "national_id": NIK},
        "died_on": "2026-08-20", "documents": []})
    states = await payments_of(client, auth)
    assert states == {"PAY-0001": "instructed", "PEN-ID-0042.202608": "instructed",
                      "PEN-ID-0042.202609": "cancelled", "PEN-ID-0042.202610": "cancelled"}
    s = (await client.get("/v1/backoffice/pensions/PEN-ID-0042", headers=auth)).json()
    assert s["state"] == "stopped"


async def test_death_of_someone_else_does_not_stop_a_pension(hub, client, auth, rail) -> None:
    """A survivors' pension is paid to the spouse: the worker's death notified on the same
    reference is not the beneficiary's and stops nothing."""
    await client.post("/v1/backoffice/pensions", headers=auth,
                      json=pension_body(benefit="INV_SURVIVORS"))
    assert await run(client, auth, "2026-09-01") == 2
    await process(hub, "death.notify", {
        "pension_ref": "PEN-ID-0042",
        "person": {"name": "Budi", "national_id": {"scheme": "ID-NIK",
                                                   "value": "3201141203900003"}},
        "died_on": "2026-07-20", "documents": []})
    s = (await client.get("/v1/backoffice/pensions/PEN-ID-0042", headers=auth)).json()
    assert s["state"] == "active"
    assert set((await payments_of(client, auth)).values()) == {"instructed"}


async def test_payment_confirm_and_beneficiary_update(hub, client, auth, rail,
                                                      dispatcher) -> None:
    await client.post("/v1/backoffice/payments", json=payment_body(), headers=auth)
    await client.post("/v1/backoffice/payments", json=payment_body(
        "PAY-0002", claim_ref="CLM-2026-000999"), headers=auth)
    await process(hub, "beneficiary.update", {
        "claim_ref": "CLM-2026-000123",
        "payout": {"method": "ewallet", "provider": "MTWALLET", "account": "60199999999",
                   "account_name": "Siti A."}})
    await dispatcher.run_once()
    assert rail.payouts["PAY-0001"].instruction.account == "60199999999"
    assert rail.payouts["PAY-0002"].instruction.account == "60123456789"
    await process(hub, "payment.confirm", {"payment_id": "PAY-0001", "outcome": "received",
                                           "confirmed_on": "2026-11-21"})
    await process(hub, "payment.confirm", {"payment_id": "PAY-0002", "outcome": "failed",
                                           "confirmed_on": "2026-11-21"}, partner="PK-MOPHRD")
    p1 = (await client.get("/v1/backoffice/payments/PAY-0001", headers=auth)).json()
    p2 = (await client.get("/v1/backoffice/payments/PAY-0002", headers=auth)).json()
    assert p1["confirmed"] == "received" and p1["events"][-1]["cause"] == "partner_confirmed"
    assert p2["confirmed"] is None  # another partner's payment: ignored


async def test_send_any_hub_message(hub, client, auth) -> None:
    r = await client.post("/v1/backoffice/messages", headers=auth, json={
        "partner_id": "ID-BPJSTK", "type": "life_certificate.request",
        "payload": {"pension_ref": "PEN-ID-0042", "due_on": "2026-12-31"},
        "correlation_id": "PEN-ID-0042"})
    assert r.status_code == 202, r.text
    async with hub.engine.connect() as conn:
        row = (await conn.execute(select(messages.c.type, messages.c.direction))).one()
    assert tuple(row) == ("life_certificate.request", "out")
    r = await client.post("/v1/backoffice/messages", headers=auth, json={
        "partner_id": "ID-BPJSTK", "type": "claim.status", "payload": {"claim_ref": "X"}})
    assert r.status_code == 422 and r.json()["code"] == "schema_violation"
    r = await client.post("/v1/backoffice/messages", headers=auth, json={
        "partner_id": "XX-NOBODY", "type": "claim.status", "payload": {}})
    assert r.status_code == 404




# -- issue 8, finding 5 ------------------------------------------------------------------------

async def test_a_run_for_a_future_day_is_refused(client, auth, rail, clock) -> None:
    await client.post("/v1/backoffice/pensions", json=pension_body(), headers=auth)
    r = await client.post("/v1/backoffice/pensions/run", json={"today": "2027-06-01"},
                          headers=auth)
    assert r.status_code == 422 and r.json()["code"] == "schema_violation"
    assert "future" in r.json()["detail"]
    assert await payments_of(client, auth) == {}


async def test_one_failing_schedule_never_stops_the_others(hub, client, auth, rail) -> None:
    await client.post("/v1/backoffice/pensions", json=pension_body(), headers=auth)
    await client.post("/v1/backoffice/pensions", headers=auth,
                      json=pension_body(pension_ref="PEN-ID-0043"))
    # The first schedule's August id is taken by another payment.
    r = await client.post("/v1/backoffice/payments", headers=auth,
                          json=payment_body("PEN-ID-0042.202608"))
    assert r.status_code == 201
    assert await run(client, auth, "2026-09-01") == 2  # PEN-ID-0043's August and September
    s = (await client.get("/v1/backoffice/pensions/PEN-ID-0042", headers=auth)).json()
    assert s["state"] == "active" and "payment_conflict" not in s["reason"]
    assert "already instructed" in s["reason"] and s["events"][-1]["cause"] == "period_failed"
    assert s["next_period"] == "2026-08"
    assert sorted(await payments_of(client, auth, pension_ref="PEN-ID-0043")) == [
        "PEN-ID-0043.202608", "PEN-ID-0043.202609"]
    await run(client, auth, "2026-09-02")  # the same cause is not recorded again
    s = (await client.get("/v1/backoffice/pensions/PEN-ID-0042", headers=auth)).json()
    assert [e["cause"] for e in s["events"]].count("period_failed") == 1


async def test_periods_follow_the_date_in_malaysia(hub, client, auth, rail, clock) -> None:
    from datetime import UTC, datetime

    from gateway.runtime.jobs import run_pension_schedules
    await client.post("/v1/backoffice/pensions", headers=auth,
                      json=pension_body(start_on="2026-12-01"))
    clock.now = datetime(2026, 11, 30, 17, 30, tzinfo=UTC)  # 01:30 on 1 December in KL
    _, created = await run_pension_schedules(hub)
    assert created == 1
    assert await payments_of(client, auth) == {"PEN-ID-0042.202612": "instructed"}


# -- issue 8, finding 5: the first and last periods, life certificates -------------------------

async def payment(client, auth, payment_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/backoffice/payments/{payment_id}", headers=auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_mid_month_start_and_end_pay_only_the_days_covered(client, auth, rail) -> None:
    await client.post("/v1/backoffice/pensions", headers=auth,
                      json=pension_body(start_on="2026-08-15", end_on="2026-10-10"))
    assert await run(client, auth, "2026-11-01") == 3
    first = await payment(client, auth, "PEN-ID-0042.202608")
    # 550.00 x 17/31 = 301.6129... sen rounded half up
    assert first["amount"] == {"amount": "301.61", "currency": "MYR"}
    derived = [e["detail"] for e in first["events"] if e["cause"] == "pension_prorated"]
    assert derived == ["2026-08: 550.00 MYR x 17/31 days (2026-08-15 to 2026-08-31) = "
                       "301.61 MYR, sen rounded half up"]
    whole = await payment(client, auth, "PEN-ID-0042.202609")
    assert whole["amount"] == {"amount": "550.00", "currency": "MYR"}
    assert "pension_prorated" not in [e["cause"] for e in whole["events"]]
    last = await payment(client, auth, "PEN-ID-0042.202610")
    assert last["amount"] == {"amount": "177.42", "currency": "MYR"}  # 550.00 x 10/31
    assert await run(client, auth, "2026-11-02") == 0  # a re-run derives the same, no conflict


async def test_pro_rating_rounds_half_a_sen_up(client, auth, rail) -> None:
    await client.post("/v1/backoffice/pensions", headers=auth, json=pension_body(
        start_on="2026-09-16", monthly_amount={"amount": "1.01", "currency": "MYR"}))
    assert await run(client, auth, "2026-09-20") == 1
    p = await payment(client, auth, "PEN-ID-0042.202609")
    assert p["amount"] == {"amount": "0.51", "currency": "MYR"}  # 101 x 15/30 = 50.5 sen


async def test_a_part_period_that_rounds_to_nothing_is_recorded_not_paid(
        client, auth, rail) -> None:
    await client.post("/v1/backoffice/pensions", headers=auth, json=pension_body(
        start_on="2026-09-17", monthly_amount={"amount": "0.01", "currency": "MYR"}))
    assert await run(client, auth, "2026-10-01") == 1  # October only: 14/30 of a sen is 0
    s = (await client.get("/v1/backoffice/pensions/PEN-ID-0042", headers=auth)).json()
    assert s["state"] == "active" and s["next_period"] == "2026-11"
    assert [(e["cause"], e["detail"]) for e in s["events"][-2:]] == [
        ("period_not_paid", "2026-09: 14/30 days round to 0"),
        ("periods_created", "2026-09 to 2026-10: 1 payment(s)")]
    assert list(await payments_of(client, auth)) == ["PEN-ID-0042.202610"]


async def certify(hub: Hub, certified_on: str, national_id: dict[str, str] = NIK) -> None:
    await process(hub, "life_certificate.submit", {
        "pension_ref": "PEN-ID-0042",
        "beneficiary": {"name": "Siti Aminah", "national_id": national_id},
        "certified_on": certified_on, "certified_by": "Kelurahan Cikini", "documents": []})


async def schedule(client, auth) -> dict[str, Any]:
    r = await client.get("/v1/backoffice/pensions/PEN-ID-0042", headers=auth)
    return dict(r.json())


async def test_a_life_certificate_dated_in_the_future_is_refused(
        hub, client, auth, rail, clock) -> None:
    from datetime import UTC, datetime
    await client.post("/v1/backoffice/pensions", json=pension_body(), headers=auth)
    clock.now = datetime(2026, 11, 21, 17, 30, tzinfo=UTC)  # 01:30 on 22 November in KL
    await certify(hub, "2026-11-23")
    s = await schedule(client, auth)
    assert s["life_certificate_due_on"] == "2026-12-31"
    assert s["events"][-1]["cause"] == "life_certificate_refused"
    assert s["events"][-1]["detail"] == ("certified on 2026-11-23: dated after today "
                                         "(2026-11-22 in Malaysia)")
    await certify(hub, "2026-11-22")  # today in Malaysia, though not yet in UTC
    s = await schedule(client, auth)
    assert s["life_certificate_due_on"] == "2027-11-22"
    assert s["events"][-1]["cause"] == "life_certificate_received"


async def test_a_life_certificate_before_the_start_or_stale_is_refused(
        hub, client, auth, rail, clock) -> None:
    await client.post("/v1/backoffice/pensions", json=pension_body(), headers=auth)
    assert await run(client, auth, "2026-12-01") == 5
    assert await run(client, auth, "2027-01-02") == 0  # overdue: suspended
    await certify(hub, "2026-07-31")
    s = await schedule(client, auth)
    assert s["state"] == "suspended" and s["life_certificate_due_on"] == "2026-12-31"
    assert s["events"][-1] == {**s["events"][-1], "cause": "life_certificate_refused",
                               "detail": "certified on 2026-07-31: dated before the pension's "
                                         "start on 2026-08-01"}
    await client.post("/v1/backoffice/pensions", headers=auth,
                      json=pension_body(pension_ref="PEN-ID-0043", start_on="2025-01-01"))
    await process(hub, "life_certificate.submit", {
        "pension_ref": "PEN-ID-0043",
        "beneficiary": {"name": "Siti Aminah", "national_id": NIK},
        "certified_on": "2025-12-31", "certified_by": "Kelurahan Cikini", "documents": []})
    s = (await client.get("/v1/backoffice/pensions/PEN-ID-0043", headers=auth)).json()
    assert s["life_certificate_due_on"] == "2026-12-31"
    assert s["events"][-1]["cause"] == "life_certificate_refused"
    assert s["events"][-1]["detail"] == ("certified on 2025-12-31: older than the 12-month "
                                         "interval (valid until 2026-12-31, today 2027-01-02)")
    assert await run(client, auth, "2027-01-03") == 0  # nothing resumed


async def test_a_life_certificate_of_someone_else_never_extends_the_pension(
        hub, client, auth, rail, clock) -> None:
    await client.post("/v1/backoffice/pensions", json=pension_body(), headers=auth)
    assert await run(client, auth, "2026-12-01") == 5
    assert await run(client, auth, "2027-01-03") == 0  # overdue: suspended
    other = {"scheme": "ID-NIK", "value": "3201145403910009"}
    await certify(hub, "2027-01-03", national_id=other)
    s = await schedule(client, auth)
    assert s["state"] == "suspended" and s["life_certificate_due_on"] == "2026-12-31"
    assert s["events"][-1]["cause"] == "life_certificate_refused"
    assert s["events"][-1]["detail"] == ("certified on 2027-01-03: the certificate's "
                                         "beneficiary ID-NIK:3201145403910009 is not the "
                                         "pension's")
    await certify(hub, "2027-01-03")
    s = await schedule(client, auth)
    assert s["state"] == "active" and s["life_certificate_due_on"] == "2028-01-03"


async def test_a_schedule_without_a_national_id_says_its_certificate_was_not_compared(
        hub, client, auth, rail) -> None:
    await client.post("/v1/backoffice/pensions", headers=auth,
                      json=pension_body(beneficiary={"name": "Siti Aminah"}))
    await certify(hub, "2026-11-02")
    s = await schedule(client, auth)
    assert s["life_certificate_due_on"] == "2027-11-02"
    assert s["events"][-1]["detail"] == ("certified on 2026-11-02; next due 2027-11-02; the "
                                         "schedule has no national id, the beneficiary was "
                                         "not compared")
