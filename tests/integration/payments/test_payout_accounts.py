"""Payout accounts checked by the rail's rule, and the rail's minor units, through the HTTP app
on SQLite and PostgreSQL (issue 13, items 6 and 7)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.composition import Hub
from gateway.payments.accounts import RailPractice
from gateway.storage.tables import payments, pension_events, pension_schedules
from tests.support.fakes import FakeRail
from tests.support.partners import TestPartner
from tests.support.payments import payment_body

pytestmark = pytest.mark.anyio

WALLET = {"account_kind": "mobile", "wallet_country": "MY"}
BANK = {"account_kind": "bank", "account_pattern": "[0-9]{10,16}"}


def practise(hub: Hub, **section: Any) -> None:
    """Give the fake rail the practice a rails file's [rails.fake] section would."""
    hub.payments.config.practices["fake"] = RailPractice.from_section(section)


def payout(account: str) -> dict[str, str]:
    return {"provider": "MTWALLET", "account": account, "account_name": "Siti Aminah"}


async def refused(r: httpx.Response, code: str = "schema_violation") -> str:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code
    return str(r.json()["detail"])


async def account_of(hub: Hub, payment_id: str) -> str:
    async with hub.engine.connect() as conn:
        return str((await conn.execute(select(payments.c.account).where(
            payments.c.payment_id == payment_id))).scalar_one())


async def nothing_stored(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    r = await client.get("/v1/backoffice/payments", headers=auth)
    assert r.json()["payments"] == []


@pytest.mark.parametrize(("account", "why"), [
    ("+60388888888", "landline"),         # a Kuala Lumpur fixed line
    ("+6281234567890", "ID"),             # a mobile, but of Indonesia
    ("FAIL-0001", "not a phone number"),
    ("60130000001", "not a valid"),       # a Malaysian prefix with no such number
])
async def test_a_wallet_payout_needs_a_mobile_of_the_wallets_country(
        hub, client, auth, rail, account: str, why: str) -> None:
    practise(hub, **WALLET)
    detail = await refused(await client.post("/v1/backoffice/payments", headers=auth,
                                             json=payment_body(payout=payout(account))))
    assert detail.startswith("payout.account: ") and why in detail, detail
    assert account not in detail  # an account number is never echoed (logs keep problems)
    await nothing_stored(client, auth)


@pytest.mark.parametrize("account", ["60123456789", "+60123456789", "0123456789"])
async def test_a_malaysian_mobile_is_paid(hub, client, auth, rail, account: str) -> None:
    practise(hub, **WALLET)
    r = await client.post("/v1/backoffice/payments", headers=auth,
                          json=payment_body(payout=payout(account)))
    assert r.status_code == 201, r.text
    assert await account_of(hub, "PAY-0001") == account  # sent to the rail as instructed


async def test_a_bank_payout_follows_the_rails_account_pattern(hub, client, auth, rail) -> None:
    practise(hub, **BANK)
    detail = await refused(await client.post("/v1/backoffice/payments", headers=auth,
                                             json=payment_body(payout=payout("12-34"))))
    assert detail.startswith("payout.account: ") and "[0-9]{10,16}" in detail
    await nothing_stored(client, auth)
    r = await client.post("/v1/backoffice/payments", headers=auth,
                          json=payment_body(payout=payout("0123456789")))
    assert r.status_code == 201, r.text


def pension_body(account: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "pension_ref": "PEN-ID-0042", "partner_id": "ID-BPJSTK",
        "beneficiary": {"name": "Siti Aminah"}, "benefit": "INV_PENSION",
        "monthly_amount": {"amount": "550.00", "currency": "MYR"},
        "start_on": "2026-08-01", "rail": "fake", "payout": payout(account)}
    body.update(over)
    return body


async def test_a_pension_is_refused_with_an_account_its_rail_cannot_pay(
        hub, client, auth, rail) -> None:
    practise(hub, **WALLET)
    detail = await refused(await client.post("/v1/backoffice/pensions", headers=auth,
                                             json=pension_body("+60388888888")))
    assert detail.startswith("payout.account: ") and "landline" in detail
    r = await client.get("/v1/backoffice/pensions/PEN-ID-0042", headers=auth)
    assert r.status_code == 404  # nothing stored
    r = await client.post("/v1/backoffice/pensions", headers=auth,
                          json=pension_body("60123456789"))
    assert r.status_code == 201, r.text


async def update(client: httpx.AsyncClient, partner: TestPartner, hub: Hub,
                 payload: dict[str, Any]) -> None:
    """Send a signed beneficiary.update and let a dispatcher process it."""
    body, headers = partner.signed(partner.envelope("beneficiary.update", payload))
    r = await client.post("/v1/messages", content=body, headers=headers)
    assert r.status_code == 202, r.text
    await hub.dispatcher(batch=50).run_once()


async def test_a_beneficiary_update_to_an_unpayable_account_is_refused_and_recorded(
        hub, client, auth, rail: FakeRail, bpjstk: TestPartner) -> None:
    practise(hub, **WALLET)
    r = await client.post("/v1/backoffice/payments", headers=auth, json=payment_body())
    assert r.status_code == 201, r.text
    r = await client.post("/v1/backoffice/pensions", headers=auth,
                          json=pension_body("60123456789"))
    assert r.status_code == 201, r.text
    landline = {"method": "ewallet", "provider": "MTWALLET", "account": "+60388888888",
                "account_name": "Siti A."}
    await update(client, bpjstk, hub, {"claim_ref": "CLM-2026-000123", "payout": landline})
    await update(client, bpjstk, hub, {"pension_ref": "PEN-ID-0042", "payout": landline})

    p = (await client.get("/v1/backoffice/payments/PAY-0001", headers=auth)).json()
    assert await account_of(hub, "PAY-0001") == "60123456789"
    refusal = [e for e in p["events"] if e["cause"] == "payout_update_refused"]
    assert len(refusal) == 1 and "payout.account: " in refusal[0]["detail"], p["events"]
    assert "landline" in refusal[0]["detail"]
    assert rail.payouts["PAY-0001"].instruction.account == "60123456789"  # what was paid
    async with hub.engine.connect() as conn:
        s = (await conn.execute(select(pension_schedules))).mappings().one()
        events = (await conn.execute(select(pension_events.c.cause, pension_events.c.detail)
                                     .where(pension_events.c.schedule_pk == s.pk))).all()
    assert s.account == "60123456789" and s.account_name == "Siti Aminah"
    assert [e.cause for e in events if "payout.account: " in e.detail] == [
        "payout_update_refused"], events


async def test_a_beneficiary_update_to_a_payable_account_is_applied(
        hub, client, auth, rail: FakeRail, bpjstk: TestPartner) -> None:
    practise(hub, **WALLET)
    r = await client.post("/v1/backoffice/pensions", headers=auth,
                          json=pension_body("60123456789"))
    assert r.status_code == 201, r.text
    await update(client, bpjstk, hub, {"pension_ref": "PEN-ID-0042", "payout": {
        "method": "ewallet", "provider": "MTWALLET", "account": "+60199999999",
        "account_name": "Siti A."}})
    async with hub.engine.connect() as conn:
        s = (await conn.execute(select(pension_schedules))).mappings().one()
    assert (s.account, s.account_name) == ("+60199999999", "Siti A.")


# -- the rail's minor units (item 7) --------------------------------------------------------------

FX = {"currency": "IDR", "rate": "3512.3456", "source": "BNM", "at": "2026-11-20T08:00:00Z"}


async def test_a_whole_unit_rail_rounds_down_and_records_the_difference(
        hub, client, auth, rail) -> None:
    practise(hub, minor_units=0)
    r = await client.post("/v1/backoffice/payments", headers=auth, json=payment_body(
        fx=FX, amount={"amount": "1250.55", "currency": "MYR"}))
    assert r.status_code == 201, r.text
    # 1250.55 * 3512.3456 = 4392363.79008 IDR, paid in whole rupiah on this rail (down)
    assert r.json()["amount"] == {"amount": "4392363.00", "currency": "IDR"}
    assert r.json()["fx"]["rounding_minor"] == -79


async def test_a_rail_paying_cents_pays_them(hub, client, auth, rail) -> None:
    # No minor_units: the currency's ISO 4217 digits, rounded half-even; IDR is not special.
    r = await client.post("/v1/backoffice/payments", headers=auth, json=payment_body(
        fx=FX, amount={"amount": "1250.55", "currency": "MYR"}))
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == {"amount": "4392363.79", "currency": "IDR"}
    assert r.json()["fx"]["exact"] == "4392363.790080"


async def test_per_currency_minor_units_of_a_rail(hub, client, auth, rail) -> None:
    practise(hub, minor_units={"IDR": 0})
    r = await client.post("/v1/backoffice/payments", headers=auth, json=payment_body(
        fx=FX, amount={"amount": "1250.55", "currency": "MYR"}))
    assert r.json()["amount"] == {"amount": "4392363.00", "currency": "IDR"}
    r = await client.post("/v1/backoffice/payments", headers=auth, json=payment_body(
        "PAY-0002", amount={"amount": "10.55", "currency": "MYR"}))
    assert r.status_code == 201 and r.json()["amount"]["amount"] == "10.55"  # MYR: cents


async def test_cents_on_a_whole_unit_rail_without_fx_are_refused(
        hub, client, auth, rail) -> None:
    practise(hub, minor_units=0)
    detail = await refused(await client.post("/v1/backoffice/payments", headers=auth,
                                             json=payment_body(amount={"amount": "10.55",
                                                                       "currency": "MYR"})),
                           "amount_invalid")
    assert detail.startswith("amount: ") and "whole" in detail
    await nothing_stored(client, auth)
    detail = await refused(await client.post("/v1/backoffice/pensions", headers=auth,
                                             json=pension_body("60123456789", monthly_amount={
                                                 "amount": "550.50", "currency": "MYR"})),
                           "amount_invalid")
    assert detail.startswith("monthly_amount: ")
    r = await client.post("/v1/backoffice/payments", headers=auth,
                          json=payment_body(amount={"amount": "10.00", "currency": "MYR"}))
    assert r.status_code == 201, r.text
