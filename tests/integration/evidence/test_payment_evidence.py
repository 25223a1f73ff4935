"""Payments and their events in the evidence chain, through the HTTP app on both databases:
what was instructed and every event verify, an altered or deleted one is named, an account
change is named in its chained event; on PostgreSQL the append-only guard; a database that
already held payments when it was upgraded has them chained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from gateway.composition import Hub
from gateway.evidence.chain import chain_pending, verify_chain
from gateway.evidence.payments import CHANGING, check_payments
from gateway.storage.engine import create_engine
from gateway.storage.migrate import downgrade, upgrade
from gateway.storage.tables import evidence_chain, messages, payment_events, payments
from gateway.storage.types import UTCDateTime
from gateway.storage.uow import factory_for
from tests.support.fakes import FakeRail
from tests.support.insider import unguard
from tests.support.partners import TestPartner
from tests.support.payments import payment_body, update_payout
from tests.support.recon import add_payment

pytestmark = pytest.mark.anyio


async def instruct(client: httpx.AsyncClient, auth: dict[str, str],
                   payment_id: str = "PAY-0001") -> None:
    r = await client.post("/v1/backoffice/payments", json=payment_body(payment_id),
                          headers=auth)
    assert r.status_code == 201, r.text


async def chain_all(hub: Hub) -> None:
    while await chain_pending(hub.uow, clock=hub.clock):
        pass


async def payment_pk(hub: Hub, payment_id: str) -> int:
    async with hub.engine.connect() as conn:
        return int((await conn.execute(select(payments.c.pk).where(
            payments.c.payment_id == payment_id))).scalar_one())


async def events(hub: Hub, pk: int) -> list[Any]:
    async with hub.engine.connect() as conn:
        return list((await conn.execute(select(payment_events).where(
            payment_events.c.payment_pk == pk).order_by(payment_events.c.pk))).all())


async def test_a_paid_payment_and_every_event_verify(client, hub: Hub, auth, rail: FakeRail,
                                                      clock) -> None:
    await instruct(client, auth)
    await chain_all(hub)  # chained while instructed: what changes later is outside the digest
    dispatcher = hub.dispatcher(batch=50)
    assert await dispatcher.run_once() == 1
    rail.settle("PAY-0001")
    clock.now = clock.now + timedelta(hours=2)
    assert await dispatcher.run_once() >= 1
    pk = await payment_pk(hub, "PAY-0001")
    got = await events(hub, pk)
    assert [e.cause for e in got] == ["instructed", "submit_attempt", "rail_answer",
                                      "status_poll"]
    assert got[2].detail.endswith("rail_reference: (none) -> FK000001"), got[2].detail
    await chain_all(hub)
    report = await verify_chain(hub.uow, clock=hub.clock)
    assert report.ok, report.broken
    # The payment, its four events, and the payment.notice and claim.status it caused.
    assert report.tables == {"payments": 1, "payment_events": 4, "messages": 2}
    assert report.checked == 7


@pytest.mark.parametrize(("column", "value"), [
    ("amount_minor", 1), ("currency", "USD"), ("beneficiary_name", "Someone Else"),
    ("beneficiary_id", "ID-NIK:9999999999999999"), ("created_at", None),
])
async def test_an_altered_instruction_is_found_and_named(client, hub: Hub, auth, rail,
                                                          column: str, value: Any) -> None:
    await instruct(client, auth, "PAY-0001")
    await instruct(client, auth, "PAY-0002")
    await chain_all(hub)
    pk = await payment_pk(hub, "PAY-0002")
    if value is None:  # a time: a second earlier
        async with hub.engine.connect() as conn:
            value = (await conn.execute(select(payments.c[column]).where(
                payments.c.pk == pk))).scalar_one() - timedelta(seconds=1)
    async with hub.engine.begin() as conn:
        await unguard(conn)
        await conn.execute(update(payments).where(payments.c.pk == pk).values({column: value}))
    report = await verify_chain(hub.uow, clock=hub.clock)
    assert report.broken == f"payments pk {pk} (payment PAY-0002): the record was altered"
    assert report.checked == 1  # one chainer tick: the payments in pk order, then events


async def test_a_deleted_payment_event_is_found_and_named(client, hub: Hub, auth,
                                                          rail) -> None:
    await instruct(client, auth)
    assert await hub.dispatcher(batch=50).run_once() == 1
    await chain_all(hub)
    pk = await payment_pk(hub, "PAY-0001")
    submit = (await events(hub, pk))[1]
    assert submit.cause == "submit_attempt"
    async with hub.engine.begin() as conn:
        await unguard(conn)
        await conn.execute(delete(payment_events).where(payment_events.c.pk == submit.pk))
        seq = (await conn.execute(select(evidence_chain.c.seq).where(
            evidence_chain.c.record_table == "payment_events",
            evidence_chain.c.record_pk == submit.pk))).scalar_one()
    report = await verify_chain(hub.uow, clock=hub.clock)
    assert report.broken == (f"chain entry seq {seq} (payment_events pk {submit.pk}): "
                             "the record was deleted")


async def test_an_account_change_is_named_in_its_chained_event(
        client, hub: Hub, auth, rail: FakeRail, bpjstk: TestPartner) -> None:
    await instruct(client, auth)
    env = await update_payout(client, hub, bpjstk)
    pk = await payment_pk(hub, "PAY-0001")
    changed = (await events(hub, pk))[-1]
    assert changed.cause == "payout_updated"
    assert changed.detail == (
        f"payout account changed by beneficiary.update {env['id']} from ID-BPJSTK; "
        "provider: MTWALLET -> BOOST; account: *******6789 -> *******1234; "
        "account_name: Siti Aminah -> Siti A.")
    await chain_all(hub)
    assert (await verify_chain(hub.uow, clock=hub.clock)).ok
    # Who and to what, in full: the partner's signed message the event names is chained too.
    async with hub.engine.connect() as conn:
        chained = {(r.record_table, r.record_pk) for r in await conn.execute(
            select(evidence_chain.c.record_table, evidence_chain.c.record_pk))}
        message_pk = (await conn.execute(select(messages.c.pk).where(
            messages.c.message_id == env["id"]))).scalar_one()
    assert ("payment_events", changed.pk) in chained and ("messages", message_pk) in chained
    assert await hub.dispatcher(batch=50, kinds=["payout"]).run_once() == 1
    assert rail.payouts["PAY-0001"].instruction.account == "60199991234"


async def paid(client: httpx.AsyncClient, hub: Hub, auth: dict[str, str], rail: FakeRail,
               clock: Any, payment_id: str = "PAY-0001") -> int:
    """Instruct ``payment_id``, pay it through the dispatcher and the rail; return its pk."""
    await instruct(client, auth, payment_id)
    dispatcher = hub.dispatcher(batch=50)
    assert await dispatcher.run_once() >= 1
    rail.settle(payment_id)
    clock.now = clock.now + timedelta(hours=2)
    assert await dispatcher.run_once() >= 1
    return await payment_pk(hub, payment_id)


# What an insider or a mistake could change in place: every column the hub itself changes,
# each only with an event.
CHANGED_WITHOUT_AN_EVENT = [
    ("account", "60199990000"), ("account_name", "Someone Else"), ("provider", "BOOST"),
    ("state", "instructed"), ("rail_reference", "FK999999"), ("reason", "none"),
    ("confirmed", "received"), ("instruction", '{"account": "60199990000"}'),
    ("paid_at", None), ("updated_at", None),
]


@pytest.mark.parametrize(("column", "value"), CHANGED_WITHOUT_AN_EVENT,
                         ids=[c for c, _ in CHANGED_WITHOUT_AN_EVENT])
async def test_a_payment_changed_without_an_event_is_found_and_named(
        client, hub: Hub, auth, rail: FakeRail, clock, column: str, value: Any) -> None:
    """The columns the hub changes are outside the payment's chained digest (they must
    change) and the PostgreSQL guard lets them change; each event records what they became,
    so a change made beside the hub is found."""
    await paid(client, hub, auth, rail, clock, "PAY-0001")
    pk = await paid(client, hub, auth, rail, clock, "PAY-0002")
    await chain_all(hub)
    report = await verify_chain(hub.uow, clock=hub.clock)
    assert report.ok, report.broken
    assert (report.payments_compared, report.payments_uncompared) == (2, 0)
    newest = (await events(hub, pk))[-1]
    if value is None:  # a time: a second later
        async with hub.engine.connect() as conn:
            value = (await conn.execute(select(payments.c[column]).where(
                payments.c.pk == pk))).scalar_one() + timedelta(seconds=1)
    async with hub.engine.begin() as conn:  # no unguard: the guard allows these columns
        await conn.execute(update(payments).where(payments.c.pk == pk).values({column: value}))
    report = await verify_chain(hub.uow, clock=hub.clock)
    assert report.broken == (
        f"payments pk {pk} (payment PAY-0002): its state, payout account or another changing "
        f"column is not what its newest event (payment_events pk {newest.pk}, "
        f"{newest.cause}) recorded: it was changed without an event")
    assert report.payments_compared == 1  # PAY-0001, before it


async def test_every_writer_of_payment_events_records_the_payment_as_written(
        client, hub: Hub, auth, rail: FakeRail, clock, bpjstk: TestPartner) -> None:
    """Instruction, the dispatcher's transitions, a partner's account change (a note) and a
    reconciliation's batched move (one SQL statement on PostgreSQL): each event's digest is
    the payment as it is after that event, so verify compares every payment."""
    pk = await paid(client, hub, auth, rail, clock, "PAY-0001")
    await instruct(client, auth, "PAY-0002")
    await update_payout(client, hub, bpjstk)
    async with hub.uow() as u:
        row = (await u.conn.execute(select(payments).where(payments.c.pk == pk))).one()
        await hub.payments.service.reconcile_many(u.conn, [row._mapping], "test run",
                                                   clock.now)
        await u.commit()
    async with hub.engine.connect() as conn:
        states = dict((await conn.execute(select(payments.c.payment_id, payments.c.state)))
                      .all())
        unrecorded = (await conn.execute(select(func.count()).select_from(payment_events)
                                         .where(payment_events.c.payment_sha256.is_(None))
                                         )).scalar_one()
    assert states == {"PAY-0001": "reconciled", "PAY-0002": "instructed"}
    assert (await events(hub, pk))[-1].cause == "reconciled"
    assert unrecorded == 0
    await chain_all(hub)
    report = await verify_chain(hub.uow, clock=hub.clock)
    assert report.ok, report.broken
    assert (report.payments_compared, report.payments_uncompared) == (2, 0)


async def test_a_payment_whose_newest_event_predates_the_digest_is_not_compared(
        client, hub: Hub, auth, rail) -> None:
    """Events recorded before migration 0016 carry no digest: the payment is counted as not
    compared (it is compared again from its next event on); a payment with no event at all
    was not written by the hub."""
    await instruct(client, auth, "PAY-0001")
    await instruct(client, auth, "PAY-0002")
    pk = await payment_pk(hub, "PAY-0002")
    async with hub.engine.begin() as conn:
        await conn.execute(insert(payment_events).values(
            payment_pk=pk, from_state="instructed", to_state="instructed", cause="payout_updated",
            detail="recorded before 0016", at=datetime(2026, 12, 1, tzinfo=UTC)))
        await conn.execute(update(payments).where(payments.c.pk == pk).values(
            account="60199990000"))
    await chain_all(hub)
    report = await verify_chain(hub.uow, clock=hub.clock)
    assert report.ok, report.broken
    assert (report.payments_compared, report.payments_uncompared) == (1, 1)
    async with hub.engine.begin() as conn:
        await unguard(conn)
        await conn.execute(delete(payment_events).where(payment_events.c.payment_pk == pk))
    async with hub.engine.connect() as conn:  # the chain would name the deleted events first
        found = await check_payments(conn)
    assert found.problem == (f"payments pk {pk} (payment PAY-0002): it has no event, so it "
                             "was not written by the hub")


async def test_postgresql_refuses_changing_what_was_instructed(client, hub: Hub, auth,
                                                                rail) -> None:
    if hub.engine.dialect.name != "postgresql":
        pytest.skip("the append-only guard is a PostgreSQL trigger")
    await instruct(client, auth)
    refused = [
        update(payments).values(amount_minor=1),
        update(payments).values(currency="USD"),
        update(payments).values(beneficiary_name="Someone Else"),
        delete(payments),
        text("TRUNCATE payments CASCADE"),
        update(payment_events).values(detail="nothing happened"),
        delete(payment_events),
        text("TRUNCATE payment_events"),
    ]
    for stmt in refused:
        with pytest.raises(DBAPIError, match="append-only"):
            async with hub.engine.begin() as conn:
                await conn.execute(stmt)
    # What the hub changes after instruction may still change, each column of it.
    async with hub.engine.begin() as conn:
        await conn.execute(update(payments).values(state="failed", reason="test"))
        await conn.execute(update(payments).values(account="60199991234", provider="BOOST"))
        args = (await conn.execute(text(
            "SELECT tgargs FROM pg_trigger WHERE tgname = 'px_guard_payments'"))).scalar_one()
    assert tuple(a.decode() for a in bytes(args).split(b"\x00") if a) == CHANGING
    async with hub.engine.connect() as conn:
        row = (await conn.execute(select(payments))).one()
        assert (row.amount_minor, row.state, row.account) == (125000, "failed", "60199991234")
        assert (await conn.execute(select(payment_events.c.detail))).scalar_one() \
            == "1250.00 MYR via fake"


def _other(column: Any, value: Any) -> Any:
    """A value of ``column``'s type that differs from ``value``."""
    if isinstance(column.type, UTCDateTime):
        return (value or datetime(2026, 1, 1, tzinfo=UTC)) + timedelta(days=1)
    if column.type.python_type is int:
        return (value or 0) + 1
    length = getattr(column.type, "length", None) or 8
    return ("Z" * length) if value != "Z" * length else ("Y" * length)


async def test_postgresql_refuses_changing_each_column_not_listed_as_updatable(
        client, hub: Hub, auth, rail) -> None:
    """Every column of ``payments`` outside the code's updatable list, one at a time: the
    guard names its immutable columns (0014's WHEN clause), so one added to the table but
    not to a guard migration would be updatable, and this test fails."""
    if hub.engine.dialect.name != "postgresql":
        pytest.skip("the append-only guard is a PostgreSQL trigger")
    await instruct(client, auth)
    async with hub.engine.connect() as conn:
        row = (await conn.execute(select(payments))).one()._mapping
    guarded = [c for c in payments.c if c.name not in CHANGING]
    assert len(guarded) == len(payments.c) - len(CHANGING)
    for column in guarded:
        with pytest.raises(DBAPIError, match="append-only"):
            async with hub.engine.begin() as conn:
                await conn.execute(update(payments).values(
                    {column.name: _other(column, row[column.name])}))
    async with hub.engine.connect() as conn:
        assert dict((await conn.execute(select(payments))).one()._mapping) == dict(row)


# -- a database that held payments before 0012 --------------------------------------------------

async def _set_amount(url: str, minor: int) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(payments).where(payments.c.payment_id == "OLD-1")
                               .values(amount_minor=minor))
    finally:
        await engine.dispose()


async def test_payments_present_before_the_upgrade_are_chained_by_the_sweep(
        empty_db: str) -> None:
    await upgrade(empty_db, "0011_keys")
    engine = create_engine(empty_db)
    try:
        uow = factory_for(engine)
        for i in range(3):
            await add_payment(uow, f"OLD-{i}", before_0016=True)
        await upgrade(empty_db)
        counts = []
        while n := await chain_pending(uow, batch=2):
            counts.append(n)
        assert counts == [4, 2]  # two of each table per batch, then the rest
        report = await verify_chain(uow)
        assert report.ok and report.tables == {"payments": 3, "payment_events": 3}
        # Their events predate the digest of a payment's changing columns (0016).
        assert (report.payments_compared, report.payments_uncompared) == (0, 3)
    finally:
        await engine.dispose()
    if not empty_db.startswith("postgresql"):
        return
    with pytest.raises(DBAPIError, match="append-only"):
        await _set_amount(empty_db, 1)
    await downgrade(empty_db, "0011_keys")  # the guard goes with its migration
    await _set_amount(empty_db, 2)
    await upgrade(empty_db)
    with pytest.raises(DBAPIError, match="append-only"):
        await _set_amount(empty_db, 3)
