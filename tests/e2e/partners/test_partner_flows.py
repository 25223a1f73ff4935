"""Inbox paging and rules, tracking isolation, cancellations both ways, delivery failures."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.storage.tables import claims, message_cancellations, message_state, messages, outbox
from tests.support.partners import NOW
from tests.support.stack import Stack, running_stack

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.fixture
async def stack(tmp_path: Path, db_url: str, clock):  # type: ignore[no-untyped-def]
    async with running_stack(tmp_path, db_url, clock) as s:
        yield s


def _token(stack: Stack, pid: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + stack.sims[pid].signer.token(
        "MY-PERKESO", 60, now=NOW.timestamp())}


async def _state(stack: Stack, message_id: str) -> str:
    async with stack.hub.engine.connect() as conn:
        return (await conn.execute(
            select(message_state.c.state)
            .join(messages, messages.c.pk == message_state.c.message_pk)
            .where(messages.c.message_id == message_id))).scalar_one()


async def test_inbox_rules_and_paging(stack: Stack) -> None:
    c, url = stack.client, stack.hub_url
    r = await c.get(f"{url}/v1/inbox", headers=_token(stack, "NP-FEB"))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    r = await c.get(f"{url}/v1/inbox?limit=501", headers=_token(stack, "MM-SSB"))
    assert r.status_code == 422 and "limit" in r.json()["detail"]
    r = await c.get(f"{url}/v1/inbox?after=x1", headers=_token(stack, "MM-SSB"))
    assert r.status_code == 422
    assert (await c.get(f"{url}/v1/inbox")).status_code == 401
    ids = [await stack.send_hub_message("MM-SSB", "life_certificate.request",
                                        {"pension_ref": f"PEN-{i}", "due_on": "2027-01-31"},
                                        f"PEN-{i}") for i in range(3)]
    # On PostgreSQL the inbox reads below the cluster-wide transaction horizon: a transaction
    # open anywhere on the server (another process's, on this shared machine) holds messages
    # back, and they appear on a later read from the same cursor. So an empty page is read
    # again, for a bounded while, until the three have come; none may come twice.
    seen, after = [], ""
    deadline = time.monotonic() + 60
    while len(seen) < 3 and time.monotonic() < deadline:
        r = await c.get(f"{url}/v1/inbox?limit=2&after={after}",
                        headers=_token(stack, "MM-SSB"))
        page = r.json()
        if not page["messages"]:
            assert page["next"] == (after or "0")  # the cursor stays where it was
            await asyncio.sleep(0.1)
            continue
        seen += [m["signature"] for m in page["messages"]]
        after = page["next"]
    assert len(seen) == 3 and len(set(seen)) == 3
    r = await c.get(f"{url}/v1/inbox?limit=2&after={after}", headers=_token(stack, "MM-SSB"))
    assert r.json()["messages"] == []
    fresh = await stack.sims["MM-SSB"].poll(stack.client)
    assert [e["id"] for e in fresh] == ids  # stable order; signatures verified by the sim
    await stack.pump()
    assert {await _state(stack, i) for i in ids} == {"acknowledged"}


async def test_tracking_is_per_partner(stack: Stack) -> None:
    sim = stack.sims["ID-BPJSTK"]
    await sim.send(stack.client, sim.claim("SHARED-REF"))
    other = stack.sims["BD-WEWB"]
    await other.send(stack.client, other.claim("OTHER-REF"))
    r = await stack.client.get(f"{stack.hub_url}/v1/tracking/SHARED-REF",
                               headers=_token(stack, "BD-WEWB"))
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await stack.client.get(f"{stack.hub_url}/v1/tracking/SHARED-REF",
                               headers=_token(stack, "ID-BPJSTK"))
    assert [m["state"] for m in r.json()["messages"]] == ["received"]
    assert r.json()["payments"] == []


async def test_hub_cancels_an_undelivered_message(stack: Stack) -> None:
    sim = stack.sims["PK-MOPHRD"]
    sim.faults.down = True
    doomed = await stack.send_hub_message("PK-MOPHRD", "document.request", {
        "claim_ref": "PK-1", "request_id": "R1", "due_on": "2027-01-01",
        "documents": [{"kind": "other", "note": "n"}]}, "PK-1")
    await stack.pump()
    assert await _state(stack, doomed) == "queued"
    cancel = await stack.send_hub_message("PK-MOPHRD", "message.cancel", {
        "message_id": doomed, "reason": "sent in error"}, "PK-1")
    assert await _state(stack, doomed) == "cancelled"
    sim.faults.clear()
    for _ in range(10):
        stack.clock.now += timedelta(minutes=5)
        await stack.pump()
    assert doomed not in sim.received and cancel in sim.received
    assert await _state(stack, cancel) == "delivered"


async def test_partner_cancels_its_claim(stack: Stack) -> None:
    sim = stack.sims["NP-FEB"]
    claim = sim.claim("NP-CANCEL-1")
    await sim.send(stack.client, claim)
    await stack.pump()
    cancel = sim.envelope("message.cancel", {"message_id": claim["id"],
                                             "reason": "गल्तीले पठाइयो"},
                          correlation_id="NP-CANCEL-1")
    assert (await sim.send(stack.client, cancel)).status_code == 202
    await stack.pump()
    async with stack.hub.engine.connect() as conn:
        assert (await conn.execute(select(claims.c.status))).scalar_one() == "cancelled"
        row = (await conn.execute(select(message_cancellations))).one()
    assert row.outcome == "cancelled" and row.reason == "गल्तीले पठाइयो"


@pytest.mark.parametrize(("fault", "error"), [
    ("error_5xx", "TransientDeliveryError"), ("reset", "OutcomeUnknownError"),
    ("bad_signature", "OutcomeUnknownError")])
async def test_delivery_failures_are_classified_and_retried(stack: Stack, fault: str,
                                                            error: str) -> None:
    sim = stack.sims["BD-WEWB"]
    sim.faults.set(fault, 1)
    mid = await stack.send_hub_message("BD-WEWB", "life_certificate.request",
                                       {"pension_ref": "PEN-9", "due_on": "2027-01-31"}, None)
    await stack.pump()
    async with stack.hub.engine.connect() as conn:
        task = (await conn.execute(select(outbox.c.state, outbox.c.last_error)
                                   .where(outbox.c.kind == "deliver"))).one()
    assert task.state == "pending" and task.last_error.startswith(error)
    stack.clock.now += timedelta(minutes=10)
    await stack.pump()
    assert await _state(stack, mid) == "delivered"
    assert list(sim.received) == [mid]
