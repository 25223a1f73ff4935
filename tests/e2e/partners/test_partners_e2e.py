"""Each partner sends a claim and receives claim.status and document.request, in its format.

Hub and simulators run on 127.0.0.1 ephemeral ports; signatures are verified both ways (the
simulators verify the hub's, the hub the partners'), and proof of delivery is stored: the
partner's signed receipt (push) or its receipt.ack (pull).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from gateway.protocol.signing import verify_detached
from gateway.storage.tables import claims, delivery_receipts, message_state, messages
from tests.support.partners import NOW
from tests.support.stack import Stack, running_stack

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PARTNERS = ["ID-BPJSTK", "MM-SSB", "NP-FEB", "PK-MOPHRD", "BD-WEWB"]
WIRE_START = {"ID-BPJSTK": b'{"id"', "MM-SSB": b'{"id"', "NP-FEB": b"<?xml",
              "PK-MOPHRD": b'{"header"', "BD-WEWB": b'{"id"'}


@pytest.fixture
async def stack(tmp_path: Path, db_url: str, clock):  # type: ignore[no-untyped-def]
    async with running_stack(tmp_path, db_url, clock) as s:
        yield s


async def _states(stack: Stack, partner_id: str) -> dict[str, str]:
    async with stack.hub.engine.connect() as conn:
        rows = (await conn.execute(
            select(messages.c.type, message_state.c.state)
            .join(message_state, message_state.c.message_pk == messages.c.pk)
            .where(messages.c.partner_id == partner_id, messages.c.direction == "out"))).all()
    return {r.type: r.state for r in rows}


@pytest.mark.parametrize("partner_id", PARTNERS)
async def test_claim_round_trip(stack: Stack, partner_id: str) -> None:
    sim = stack.sims[partner_id]
    ref = f"E2E-{partner_id}-1"
    claim = sim.claim(ref)
    result = await sim.send(stack.client, claim)
    assert result.status_code in (200, 202), result.results
    assert [r["message_id"] for r in result.receipts] == [claim["id"]]
    assert result.receipts[0]["status"] == "accepted"

    await stack.pump()  # process the claim: claim recorded, claim.status queued (+ pushed)
    async with stack.hub.engine.connect() as conn:
        row = (await conn.execute(select(claims).where(claims.c.partner_id == partner_id))).one()
    assert row.claim_ref == ref and row.status == "received"

    await stack.send_hub_message(partner_id, "document.request", {
        "claim_ref": ref, "request_id": "REQ-1", "due_on": "2026-12-31",
        "documents": [{"kind": "medical_report", "note": "Laporan perubatan / ဆေးမှတ်တမ်း"}]},
        ref)
    await stack.pump()

    if sim.adapter.name == "mm_ssb":
        fresh = await sim.poll(stack.client)
        assert [e["type"] for e in fresh] == ["claim.status", "document.request"]
        await stack.pump()  # process the receipt.acks
        assert await _states(stack, partner_id) == {"claim.status": "acknowledged",
                                                    "document.request": "acknowledged"}
        assert await sim.poll(stack.client) == []  # acknowledged: gone from the inbox
    else:
        assert await _states(stack, partner_id) == {"claim.status": "delivered",
                                                    "document.request": "delivered"}
        async with stack.hub.engine.connect() as conn:
            proofs = (await conn.execute(
                select(delivery_receipts.c.body, delivery_receipts.c.signature,
                       messages.c.wire, messages.c.message_id)
                .join(messages, messages.c.pk == delivery_receipts.c.message_pk)
                .where(messages.c.partner_id == partner_id))).all()
        assert len(proofs) == 2
        for p in proofs:  # the stored receipt verifies with the partner's key, names the bytes
            assert verify_detached(p.body, p.signature, stack.hub.registry.keys).party == \
                partner_id
            receipt = sim.adapter.parse_receipt(p.body)
            assert receipt["message_id"] == p.message_id
            assert receipt["body_sha256"] == hashlib.sha256(p.wire).hexdigest()

    got = {e["type"]: e for e in sim.received.values()}
    assert got["claim.status"]["payload"]["claim_ref"] == ref
    assert got["claim.status"]["payload"]["status"] == "received"
    assert got["claim.status"]["payload"]["socso_claim_no"] == row.socso_claim_no
    assert got["document.request"]["payload"]["documents"][0]["note"] == \
        "Laporan perubatan / ဆေးမှတ်တမ်း"
    for wire in sim.received_wire.values():
        assert wire.startswith(WIRE_START[partner_id])

    token = {"Authorization": "Bearer " + sim.signer.token("MY-PERKESO", 60,
                                                           now=NOW.timestamp())}
    track = await stack.client.get(f"{stack.hub_url}/v1/tracking/{ref}", headers=token)
    assert track.status_code == 200, track.text
    types = [(m["direction"], m["type"]) for m in track.json()["messages"]]
    assert types[:3] == [("in", "claim.notify"), ("out", "claim.status"),
                         ("out", "document.request")]


async def test_partner_down_for_an_hour_gets_everything_once_in_order(stack: Stack) -> None:
    """NP-FEB is down for an hour; afterwards every message arrives, in order per thread."""
    sim = stack.sims["NP-FEB"]
    sim.faults.down = True
    sent: dict[str, list[str]] = {"T-A": [], "T-B": []}
    for i in range(3):
        for thread in sent:
            mid = await stack.send_hub_message("NP-FEB", "claim.status", {
                "claim_ref": thread, "socso_claim_no": f"SOCSO-{thread}",
                "status": ["received", "under_review", "approved"][i]}, thread)
            sent[thread].append(mid)
    start = stack.clock.now
    while stack.clock.now < start + timedelta(hours=1):
        await stack.pump()
        stack.clock.now += timedelta(minutes=2)
    assert sim.received == {}
    assert await _states(stack, "NP-FEB") == {"claim.status": "queued"}

    sim.faults.clear()
    sim.faults.set("error_after", 2)  # taken, then answered 500: the hub sends them again
    sim.faults.set("bad_signature", 1)
    for _ in range(40):  # bounded: a few backoff periods of at most 5 minutes
        await stack.pump()
        if len(sim.received) == 6 and not sim.faults.counts.get("error_after") and \
                await _states(stack, "NP-FEB") == {"claim.status": "delivered"}:
            break
        stack.clock.now += timedelta(minutes=5)
    assert await _states(stack, "NP-FEB") == {"claim.status": "delivered"}
    assert len(sim.deliveries) > 6  # some were delivered twice ...
    assert sorted(sim.received) == sorted(sent["T-A"] + sent["T-B"])  # ... but kept once
    for thread, ids in sent.items():
        order = [i for i in dict.fromkeys(sim.deliveries) if i in ids]
        assert order == ids, thread


async def test_mm_ssb_batch_keeps_good_lines(stack: Stack) -> None:
    """A partially bad batch: each line accepted or refused on its own, nothing good lost."""
    sim = stack.sims["MM-SSB"]
    good1, good2 = sim.claim("MM-B-1"), sim.claim("MM-B-2")
    bad = sim.claim("MM-B-3")
    bad["payload"]["worker"]["national_id"]["value"] = "12/OUKAMA(X)123456"
    lines = [sim.wire(good1), sim.wire(bad), b"{not json", sim.wire(good2)]
    resp = await sim.send_raw(stack.client, b"\n".join(lines) + b"\n")
    assert resp.status_code == 200
    results = [orjson.loads(line) for line in resp.content.splitlines()]
    assert [r["status"] for r in results] == ["accepted", "refused", "refused", "accepted"]
    assert results[1]["problem"]["code"] == "schema_violation"
    assert "national_id" in results[1]["problem"]["detail"]
    assert results[2]["problem"]["code"] == "malformed_json"
    again = await sim.send_raw(stack.client, lines[0] + b"\n")
    assert orjson.loads(again.content.splitlines()[0])["status"] == "duplicate"


async def test_mm_ssb_batch_is_chained_evidence(stack: Stack) -> None:
    from gateway.evidence.chain import chain_pending, verify_chain

    sim = stack.sims["MM-SSB"]
    await sim.send_batch(stack.client, [sim.claim("MM-C-1"), sim.claim("MM-C-2")])
    assert await chain_pending(stack.hub.uow, clock=stack.clock) == 3  # batch + 2 lines
    report = await verify_chain(stack.hub.uow, clock=stack.clock)
    assert report.ok and report.checked == 3
