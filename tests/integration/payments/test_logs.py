"""Personal data never reaches the logs: a whole flow (intake, processing, payout, and the
failures on the way) is run with every logger captured, then searched for the test's national
ids and account numbers."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import insert, text

from gateway.composition import Hub, inbound_processors
from gateway.ports.processing import ProcessingContext
from gateway.protocol.envelope import Envelope
from gateway.storage.engine import create_engine
from gateway.storage.tables import claims
from tests.support.fakes import FakeRail
from tests.support.partners import TestPartner, claim_payload
from tests.support.payments import payment_body

pytestmark = pytest.mark.anyio

NIK, NIK_POISON, NIK_PAYEE = "3201145403910002", "3201145403917777", "3201145403918888"
ACCOUNT_CLAIM, ACCOUNT_PAYOUT, ACCOUNT_BAD = "MT-7741", "60129988776", "60120000999"
SECRETS = (NIK, NIK_POISON, NIK_PAYEE, ACCOUNT_CLAIM, ACCOUNT_PAYOUT, ACCOUNT_BAD)


async def test_a_failing_statement_logs_no_parameters(db_url: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            with caplog.at_level(logging.DEBUG):
                try:
                    await conn.execute(text("SELECT CAST(:v AS INTEGER) + no_such_column"),
                                       {"v": NIK})
                except Exception:
                    logging.getLogger("test").exception("statement failed")
    finally:
        await engine.dispose()
    assert "statement failed" in caplog.text and NIK not in caplog.text


async def test_whole_flow_logs_no_national_id_or_account(
        hub: Hub, client, auth, rail: FakeRail, bpjstk: TestPartner,
        caplog: pytest.LogCaptureFixture) -> None:
    good = inbound_processors()["claim.notify"]

    async def claim_or_poison(ctx: ProcessingContext, envelope: Envelope) -> None:
        if isinstance(envelope.payload, dict) and envelope.payload["claim_ref"] == "POISON":
            # A constraint violated with a national id among the statement's parameters.
            await ctx.conn.execute(insert(claims).values(
                partner_id=None, claim_ref=NIK_POISON, socso_claim_no="S", benefit="x",
                status="received", message_pk=ctx.message_pk, created_at=ctx.now,
                updated_at=ctx.now))
        await good(ctx, envelope)

    hub.processors = {**inbound_processors(), "claim.notify": claim_or_poison}
    caplog.set_level(logging.DEBUG)
    worker = claim_payload("KLM-LOG-1")
    worker["worker"]["national_id"]["value"] = NIK
    worker["payout"]["account"] = ACCOUNT_CLAIM
    for payload in (worker, claim_payload("POISON")):
        body, headers = bpjstk.signed(bpjstk.envelope(payload=payload,
                                                      correlation_id=payload["claim_ref"]))
        assert (await client.post("/v1/messages", content=body, headers=headers)
                ).status_code == 202
    pay = payment_body("PAY-LOG-1", beneficiary={
        "name": "Siti Aminah", "national_id": {"scheme": "ID-NIK", "value": NIK_PAYEE}},
        payout={"provider": "MTWALLET", "account": ACCOUNT_PAYOUT, "account_name": "Siti"})
    assert (await client.post("/v1/backoffice/payments", json=pay, headers=auth)
            ).status_code == 201
    # A value a database may refuse (PostgreSQL text cannot hold NUL): refused or stored, but
    # the error, if any, must not carry the request's other values.
    bad = payment_body("PAY-LOG-2", beneficiary={
        "name": "Siti\u0000", "national_id": {"scheme": "ID-NIK", "value": NIK_PAYEE}},
        payout={"provider": "MTWALLET", "account": ACCOUNT_BAD, "account_name": "Siti\u0000"})
    r = await client.post("/v1/backoffice/payments", json=bad, headers=auth)
    assert r.status_code in (201, 422, 500)
    dispatcher = hub.dispatcher(batch=50)
    for _ in range(20):
        if await dispatcher.run_once() == 0:
            break
    assert rail.payouts, "the payout flow ran"
    assert any("dead-lettered" in rec.getMessage() for rec in caplog.records)
    leaked = [s for s in SECRETS if s in caplog.text]
    assert leaked == [], f"personal data in the logs: {leaked}"
