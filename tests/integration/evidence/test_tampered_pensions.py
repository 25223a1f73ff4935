"""A pension schedule changed beside the hub is held: no period is created from it and nothing
is written over it until it is restored, so a redirected account or a stopped pension set back
to active never pays. Every change the hub makes is an event with the schedule's digest, and
the schedule as awarded is chained (and guarded on PostgreSQL). Through the HTTP app, on both
databases."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import DBAPIError

from gateway.composition import Hub
from gateway.evidence.chain import chain_pending, verify_chain
from gateway.payments import pensions
from gateway.runtime.jobs import run_pension_schedules
from gateway.storage.engine import create_engine
from gateway.storage.migrate import downgrade, upgrade
from gateway.storage.tables import outbox, payments, pension_events, pension_schedules
from gateway.storage.uow import factory_for
from tests.support.insider import change_payment
from tests.support.partners import TestPartner
from tests.support.pensions import NIK, payments_of, pension_body, process, run_pensions

pytestmark = pytest.mark.anyio

HELD = "pension_schedules pk {pk} (pension {ref}): its state, payout account or another"


async def create(client, auth, ref: str = "PEN-ID-0042", **over: Any) -> None:
    r = await client.post("/v1/backoffice/pensions", json=pension_body(pension_ref=ref, **over),
                          headers=auth)
    assert r.status_code == 201, r.text


async def schedule(hub: Hub, ref: str = "PEN-ID-0042") -> Any:
    async with hub.engine.connect() as conn:
        return (await conn.execute(select(pension_schedules).where(
            pension_schedules.c.pension_ref == ref))).one()


async def events(hub: Hub, ref: str = "PEN-ID-0042") -> list[Any]:
    async with hub.engine.connect() as conn:
        return list((await conn.execute(select(pension_events).join(
            pension_schedules, pension_schedules.c.pk == pension_events.c.schedule_pk).where(
            pension_schedules.c.pension_ref == ref).order_by(pension_events.c.pk))).all())


async def tamper(hub: Hub, ref: str = "PEN-ID-0042", **values: Any) -> None:
    """An insider's UPDATE of columns the hub itself changes (the guard allows them)."""
    async with hub.engine.begin() as conn:
        await conn.execute(update(pension_schedules).where(
            pension_schedules.c.pension_ref == ref).values(**values))


async def verified(hub: Hub) -> Any:
    while await chain_pending(hub.uow, clock=hub.clock):
        pass
    return await verify_chain(hub.uow, clock=hub.clock)


async def test_a_schedule_redirected_beside_the_hub_creates_no_period_until_restored(
        hub: Hub, client, auth, rail, caplog, clock) -> None:
    await create(client, auth)
    await create(client, auth, "PEN-ID-0043")
    assert (await verified(hub)).ok
    before = await schedule(hub)
    await tamper(hub, account="9999999999", account_name="Someone Else")
    n = len(await events(hub))
    with caplog.at_level(logging.ERROR):
        # The other schedule's August and September.
        assert await run(client, auth, clock, "2026-09-15") == 2
    assert sorted(await payments_of(client, auth)) == ["PEN-ID-0043.202608",
                                                       "PEN-ID-0043.202609"]
    held = await schedule(hub)
    assert (held.account, held.next_period) == ("9999999999", "2026-08")
    assert len(await events(hub)) == n  # nothing written over it
    why = HELD.format(pk=held.pk, ref="PEN-ID-0042")
    assert any(r.getMessage().startswith("ALERT pension schedule held: " + why)
               for r in caplog.records)
    report = await verified(hub)
    assert report.broken is not None and report.broken.startswith(why)
    # Restored to what its newest event recorded, the schedule is paid where it stopped.
    await tamper(hub, account=before.account, account_name=before.account_name)
    assert await run(client, auth, clock, "2026-09-16") == 2
    ids = await payments_of(client, auth, pension_ref="PEN-ID-0042")
    assert sorted(ids) == ["PEN-ID-0042.202608", "PEN-ID-0042.202609"]
    report = await verified(hub)
    assert report.ok, report.broken
    assert (report.schedules_compared, report.schedules_uncompared) == (2, 0)


async def test_a_stopped_pension_set_back_to_active_is_never_paid(
        hub: Hub, client, auth, rail, caplog, clock) -> None:
    await create(client, auth)
    assert await run(client, auth, clock, "2026-08-15") == 1
    await process(hub, "death.notify", {
        "pension_ref": "PEN-ID-0042", "person": {"name": "Siti Aminah", "national_id": NIK},
        "died_on": "2026-08-20", "documents": []})
    assert (await schedule(hub)).state == "stopped"
    await tamper(hub, state="active", died_on=None, reason=None)
    with caplog.at_level(logging.ERROR):
        assert await run(client, auth, clock, "2026-11-01") == 0
    assert list(await payments_of(client, auth)) == ["PEN-ID-0042.202608"]
    assert any("ALERT pension schedule held" in r.getMessage() for r in caplog.records)
    assert not (await verified(hub)).ok


async def test_a_death_on_a_changed_schedule_is_held_until_restored_then_stops_it(
        hub: Hub, client, auth, rail, bpjstk: TestPartner, clock) -> None:
    """The death.notify's processing is refused, kept by the outbox (held, never given up,
    with an alert) and applied once the row is restored: the death is not lost meanwhile."""
    await create(client, auth)
    before = await schedule(hub)
    await tamper(hub, account="9999999999")
    env = bpjstk.envelope("death.notify", {
        "pension_ref": "PEN-ID-0042", "person": {"name": "Siti Aminah", "national_id": NIK},
        "died_on": "2026-08-20", "documents": []})
    body, headers = bpjstk.signed(env)
    assert (await client.post("/v1/messages", content=body, headers=headers)).status_code == 202
    dispatcher = hub.dispatcher(batch=50, kinds=["process_inbound"])
    await dispatcher.run_once()
    assert (await schedule(hub)).state == "active"  # nothing of the refused processing kept
    async with hub.engine.connect() as conn:
        task = (await conn.execute(select(outbox).where(
            outbox.c.kind == "process_inbound"))).one()
    assert task.state == "pending"
    assert task.last_error.startswith("EvidenceMismatchError: " + HELD.format(
        pk=before.pk, ref="PEN-ID-0042"))
    await tamper(hub, account=before.account)
    clock.now = task.next_attempt_at + timedelta(seconds=1)
    await dispatcher.run_once()
    s = await schedule(hub)
    assert (s.state, s.died_on.isoformat()) == ("stopped", "2026-08-20")
    assert (await verified(hub)).ok


async def test_a_partner_account_change_of_a_schedule_is_an_event_naming_it(
        hub: Hub, client, auth, rail, clock) -> None:
    await create(client, auth)
    await process(hub, "beneficiary.update", {
        "pension_ref": "PEN-ID-0042",
        "payout": {"method": "bank", "provider": "BANK-BRI", "account": "0987654321",
                   "account_name": "Siti"}})
    assert (await schedule(hub)).account == "0987654321"
    last = (await events(hub))[-1]
    assert last.cause == "payout_updated" and last.schedule_sha256 is not None
    assert "account: ******6789 -> ******4321" in last.detail, last.detail
    assert await run(client, auth, clock, "2026-08-15") == 1
    report = await verified(hub)
    assert report.ok, report.broken


async def test_an_awarded_column_changed_is_found_by_verify(hub: Hub, client, auth,
                                                            rail) -> None:
    """The amount, beneficiary and rail are chained as awarded: on SQLite (no guard) a change
    is found by verify; PostgreSQL refuses it (below)."""
    if hub.engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL's guard refuses the change itself")
    await create(client, auth)
    assert (await verified(hub)).ok
    await tamper(hub, monthly_minor=9_999_999)
    report = await verified(hub)
    assert report.broken is not None and "pension_schedules pk" in report.broken


async def test_postgresql_guards_schedules_and_their_events(hub: Hub, client, auth,
                                                            rail) -> None:
    if hub.engine.dialect.name != "postgresql":
        pytest.skip("the append-only guard is a PostgreSQL trigger")
    await create(client, auth)
    refused = [update(pension_schedules).values(monthly_minor=1),
               update(pension_schedules).values(beneficiary_name="Someone Else"),
               update(pension_schedules).values(end_on=None),
               delete(pension_schedules),
               update(pension_events).values(detail="nothing happened"),
               delete(pension_events)]
    for stmt in refused:
        with pytest.raises(DBAPIError, match="append-only"):
            async with hub.engine.begin() as conn:
                await conn.execute(stmt)
    async with hub.engine.begin() as conn:  # what the hub changes may still change
        await conn.execute(update(pension_schedules).values(state="suspended", reason="test",
                                                            account="1111111111"))
    assert (await schedule(hub)).monthly_minor == 55000


async def run(client: Any, auth: dict[str, str], clock: Any, today: str) -> int:
    return await run_pensions(client, auth, today, clock)


async def test_schedules_present_before_0017_are_chained_and_guarded_after_it(
        empty_db: str) -> None:
    """A database upgraded with schedules in it: the chainer takes them and their events,
    verify counts them as not compared (their events have no digest) until their next event,
    and on PostgreSQL the guard arrives (and leaves) with the migration."""
    await upgrade(empty_db, "0016_payment_event_digest")
    engine = create_engine(empty_db)
    at = datetime(2026, 11, 1, tzinfo=UTC)
    try:
        async with engine.begin() as conn:
            pk = (await conn.execute(insert(pension_schedules).values(
                pension_ref="PEN-OLD-1", request_sha256="0" * 64, state="active",
                partner_id="ID-BPJSTK", benefit="INV_PENSION", beneficiary_name="Siti",
                rail="fake", provider="BANK-BRI", account="0123456789", account_name="Siti",
                monthly_minor=55000, currency="MYR", start_on=date(2026, 8, 1),
                next_period="2026-08", created_at=at, updated_at=at,
            ).returning(pension_schedules.c.pk))).scalar_one()
            await conn.execute(insert(pension_events).values(
                schedule_pk=pk, from_state=None, to_state="active", cause="instructed",
                detail="schedule created", at=at))
        await upgrade(empty_db)
        uow = factory_for(engine)
        while await chain_pending(uow):
            pass
        report = await verify_chain(uow)
        assert report.ok, report.broken
        assert report.tables == {"pension_schedules": 1, "pension_events": 1}
        assert (report.schedules_compared, report.schedules_uncompared) == (0, 1)
        # Its next event records the digest: from then on it is compared.
        async with uow() as u:
            s = (await u.conn.execute(select(pension_schedules))).mappings().one()
            await pensions.change_payout(u.conn, s, None, "payout_update_refused", "test",
                                         at)
            await u.commit()
        while await chain_pending(uow):
            pass
        report = await verify_chain(uow)
        assert report.ok and (report.schedules_compared, report.schedules_uncompared) == (1, 0)
    finally:
        await engine.dispose()
    if not empty_db.startswith("postgresql"):
        return
    raise_amount = update(pension_schedules).values(monthly_minor=1)
    engine = create_engine(empty_db)
    try:
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(raise_amount)
        await engine.dispose()
        await downgrade(empty_db, "0016_payment_event_digest")  # the guard goes with it
        engine = create_engine(empty_db)
        async with engine.begin() as conn:
            await conn.execute(raise_amount)
    finally:
        await engine.dispose()


async def test_held_schedules_never_hold_up_the_schedules_after_them(
        hub: Hub, client, auth, rail, clock, monkeypatch) -> None:
    """A held schedule stays due; the jobs go on by pk past it, batch after batch (a careless
    bulk UPDATE of many schedules must not stop everyone's pension)."""
    monkeypatch.setattr(pensions, "BATCH", 2)
    for ref in ("PEN-ID-0042", "PEN-ID-0043", "PEN-ID-0044", "PEN-ID-0045", "PEN-ID-0046"):
        await create(client, auth, ref)
    for ref in ("PEN-ID-0042", "PEN-ID-0043", "PEN-ID-0044"):
        await tamper(hub, ref, reason="set by hand")
    clock.now = datetime(2026, 8, 15, 4, tzinfo=UTC)
    _, created = await run_pension_schedules(hub)
    assert created == 2
    assert sorted(await payments_of(client, auth)) == ["PEN-ID-0045.202608",
                                                       "PEN-ID-0046.202608"]
    # The back office's run pages the same way.
    await tamper(hub, "PEN-ID-0042", reason=None)
    assert await run(client, auth, clock, "2026-08-16") == 1


async def test_the_payments_of_a_held_schedule_are_held_with_it(
        hub: Hub, client, auth, rail, bpjstk: TestPartner, clock) -> None:
    """A death refused on a changed schedule must not let the periods after it be paid
    meanwhile: every unsent payment of the schedule waits with it."""
    await create(client, auth)
    assert await run(client, auth, clock, "2026-09-15") == 2  # August and September
    before = await schedule(hub)
    await tamper(hub, reason="set by hand")
    dispatcher = hub.dispatcher(batch=50, kinds=["payout"])
    await dispatcher.run_once()
    assert rail.payouts == {}
    async with hub.engine.connect() as conn:
        tasks = (await conn.execute(select(outbox).where(outbox.c.kind == "payout"))).all()
    assert {t.state for t in tasks} == {"pending"}
    assert all(t.last_error.startswith("EvidenceMismatchError: payment PEN-ID-0042.2026")
               and "is held with its schedule: pension_schedules pk" in t.last_error
               for t in tasks)
    env = bpjstk.envelope("death.notify", {
        "pension_ref": "PEN-ID-0042", "person": {"name": "Siti Aminah", "national_id": NIK},
        "died_on": "2026-08-20", "documents": []})
    body, headers = bpjstk.signed(env)
    assert (await client.post("/v1/messages", content=body, headers=headers)).status_code == 202
    await hub.dispatcher(batch=50, kinds=["process_inbound"]).run_once()  # refused: held
    # Restored, the death is processed first (its task is older), then the payouts: only
    # August, before the death, is paid.
    await tamper(hub, reason=before.reason)
    clock.now = clock.now + timedelta(days=1)
    await hub.dispatcher(batch=50, kinds=["process_inbound"]).run_once()
    await dispatcher.run_once()
    assert sorted(rail.payouts) == ["PEN-ID-0042.202608"]
    states = await payments_of(client, auth)
    assert states["PEN-ID-0042.202609"] == "cancelled"


async def test_a_death_stops_the_schedule_even_when_one_of_its_payments_is_held(
        hub: Hub, client, auth, rail, clock) -> None:
    """One payment changed beside the hub does not keep a death from stopping the schedule
    and its other payments; restored, the held one is stopped by the payout worker (the death
    is recorded on the schedule), never sent."""
    await create(client, auth)
    assert await run(client, auth, clock, "2026-10-15") == 3  # August to October
    before = await payment_row(hub, "PEN-ID-0042.202609")
    await change_payment(hub.engine, "PEN-ID-0042.202609", reason="set by hand")
    await process(hub, "death.notify", {
        "pension_ref": "PEN-ID-0042", "person": {"name": "Siti Aminah", "national_id": NIK},
        "died_on": "2026-08-20", "documents": []})
    assert (await schedule(hub)).state == "stopped"
    states = await payments_of(client, auth)
    assert (states["PEN-ID-0042.202609"], states["PEN-ID-0042.202610"]) == (
        "instructed", "cancelled")
    await change_payment(hub.engine, "PEN-ID-0042.202609", reason=before.reason)
    await hub.dispatcher(batch=50, kinds=["payout"]).run_once()
    assert sorted(rail.payouts) == ["PEN-ID-0042.202608"]  # before the death
    p = await payment_row(hub, "PEN-ID-0042.202609")
    assert p.state == "cancelled"
    assert (await verified(hub)).ok


async def payment_row(hub: Hub, payment_id: str) -> Any:
    async with hub.engine.connect() as conn:
        return (await conn.execute(select(payments).where(
            payments.c.payment_id == payment_id))).one()
