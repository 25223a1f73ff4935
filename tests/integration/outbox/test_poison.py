"""A message that can never be processed is dead-lettered at once and stops no one else.

The failing processors are injected through the hub's routing table (``processors=``), so
these tests do not depend on what the edge refuses at intake.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import insert, select

from gateway.app import create_app
from gateway.composition import Hub, build_hub, inbound_processors
from gateway.config import Settings
from gateway.errors import ConflictError
from gateway.outbox.records import blocked_cases
from gateway.ports.processing import ProcessingContext, Processor
from gateway.protocol.envelope import Envelope
from gateway.storage.tables import claims, outbox
from tests.conftest import FrozenClock
from tests.support.partners import TestPartner, claim_payload

pytestmark = pytest.mark.anyio

POISON_REF = "KLM-POISON-1"
NATIONAL_ID = "3201145403919999"


async def violates_constraint(ctx: ProcessingContext, envelope: Envelope) -> None:
    # NOT NULL violated on both databases, with a personal value among the parameters.
    await ctx.conn.execute(insert(claims).values(
        partner_id=None, claim_ref=NATIONAL_ID, socso_claim_no="S", benefit="x",
        status="received", message_pk=ctx.message_pk, created_at=ctx.now, updated_at=ctx.now))


async def refuses(ctx: ProcessingContext, envelope: Envelope) -> None:
    raise ConflictError("state_conflict", "the claim is closed")


async def crashes(ctx: ProcessingContext, envelope: Envelope) -> None:
    raise RuntimeError("a bug, or the database went away")


def poison_when_ref(bad: Processor) -> dict[str, Processor]:
    """The real routing table, with claim.notify for POISON_REF going to ``bad``."""
    table = inbound_processors()
    good = table["claim.notify"]

    async def route(ctx: ProcessingContext, envelope: Envelope) -> None:
        payload = envelope.payload
        if isinstance(payload, dict) and payload.get("claim_ref") == POISON_REF:
            await bad(ctx, envelope)
        else:
            await good(ctx, envelope)

    return {**table, "claim.notify": route}


@pytest.fixture
async def make_hub(settings: Settings, clock: FrozenClock) -> AsyncIterator[object]:
    hubs: list[Hub] = []

    def make(bad: Processor) -> Hub:
        hubs.append(build_hub(settings, clock=clock, processors=poison_when_ref(bad)))
        return hubs[-1]

    yield make
    for h in hubs:
        await h.close()


async def _send(hub: Hub, partner: TestPartner, claim_ref: str, correlation_id: str) -> None:
    app = create_app(hub=hub, background_jobs=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
        env = partner.envelope(payload=claim_payload(claim_ref), correlation_id=correlation_id)
        body, headers = partner.signed(env)
        assert (await c.post("/v1/messages", content=body, headers=headers)).status_code == 202


async def _inbound_tasks(hub: Hub) -> list[dict[str, object]]:
    async with hub.uow(read_only=True) as uow:
        rows = (await uow.conn.execute(select(outbox).where(outbox.c.kind == "process_inbound")
                                       .order_by(outbox.c.pk))).mappings()
        return [dict(r) for r in rows]


async def _pump(hub: Hub, rounds: int = 20) -> None:
    dispatcher = hub.dispatcher()
    for _ in range(rounds):
        if await dispatcher.run_once() == 0:
            return


@pytest.mark.parametrize("bad", [violates_constraint, refuses], ids=["integrity", "refusal"])
async def test_deterministic_failure_is_dead_at_once_sanitised_and_alerted(
        make_hub, bpjstk: TestPartner, caplog: pytest.LogCaptureFixture, bad: Processor) -> None:
    hub = make_hub(bad)
    await _send(hub, bpjstk, POISON_REF, "KLM-POISON-1")
    with caplog.at_level(logging.INFO):
        await _pump(hub)
    [task] = await _inbound_tasks(hub)
    assert task["state"] == "dead" and task["attempts"] == 1
    error = str(task["last_error"])
    assert "INSERT" not in error.upper() and NATIONAL_ID not in error
    assert "deterministic" in error
    assert NATIONAL_ID not in caplog.text and "INSERT INTO" not in caplog.text
    alerts = [r for r in caplog.records if r.levelno >= logging.ERROR
              and "dead-lettered" in r.getMessage()]
    assert len(alerts) == 1 and str(task["pk"]) in alerts[0].getMessage()


async def test_poison_messages_never_open_the_hub_breaker(make_hub, bpjstk: TestPartner) -> None:
    hub = make_hub(violates_constraint)
    dispatcher = hub.dispatcher()
    for i in range(dispatcher.breakers.threshold * 2):
        await _send(hub, bpjstk, POISON_REF, f"CASE-POISON-{i}")
    await _send(hub, bpjstk, "KLM-GOOD-1", "KLM-GOOD-1")
    for _ in range(20):
        if await dispatcher.run_once() == 0:
            break
    assert dispatcher.breakers.open_destinations() == []
    states = [t["state"] for t in await _inbound_tasks(hub)]
    assert states == ["dead"] * (dispatcher.breakers.threshold * 2) + ["done"]
    async with hub.uow(read_only=True) as uow:
        refs = list((await uow.conn.execute(select(claims.c.claim_ref))).scalars())
    assert refs == ["KLM-GOOD-1"]


async def test_internal_failures_are_retried_but_never_open_the_hub_breaker(
        make_hub, bpjstk: TestPartner, clock: FrozenClock) -> None:
    hub = make_hub(crashes)
    dispatcher = hub.dispatcher()
    for i in range(dispatcher.breakers.threshold * 2):
        await _send(hub, bpjstk, POISON_REF, f"CASE-CRASH-{i}")
    await dispatcher.run_once()
    tasks = await _inbound_tasks(hub)
    assert [t["state"] for t in tasks] == ["pending"] * len(tasks)  # retried, not dead
    assert dispatcher.breakers.open_destinations() == []


async def test_dead_task_blocking_its_case_is_reported(make_hub, bpjstk: TestPartner,
                                                       backoffice_token: str) -> None:
    hub = make_hub(refuses)
    await _send(hub, bpjstk, POISON_REF, "KLM-SHARED")
    await _pump(hub)
    await _send(hub, bpjstk, "KLM-LATER", "KLM-SHARED")
    await _send(hub, bpjstk, "KLM-LATER-2", "KLM-SHARED")
    await _pump(hub)
    dead, *waiting = await _inbound_tasks(hub)
    assert [t["state"] for t in waiting] == ["pending", "pending"]
    async with hub.uow(read_only=True) as uow:
        report = await blocked_cases(uow.conn)
    assert [(b.task_pk, b.ordering_key, b.waiting) for b in report] == [
        (dead["pk"], "in:ID-BPJSTK:KLM-SHARED", 2)]
    app = create_app(hub=hub, background_jobs=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
        r = await c.get("/v1/backoffice/dead-letters",
                        headers={"Authorization": f"Bearer {backoffice_token}"})
    assert r.status_code == 200
    [letter] = r.json()["dead_letters"]
    assert letter["id"] == dead["pk"] and letter["blocking"] == 2
