"""What ops see: messages and their evidence, outbox, breakers, partners, payments; masking;
suspension in effect at once; bad input; and the audit trail that verifies as evidence."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from gateway.composition import Hub
from gateway.evidence.chain import chain_pending, verify_chain
from gateway.storage.tables import breaker_overrides, outbox, partner_suspensions
from tests.integration.admin.conftest import problem, trail
from tests.integration.admin.test_proposals import instruct
from tests.support.partners import TestPartner

pytestmark = pytest.mark.anyio


async def send(client: Any, partner: TestPartner, **over: Any) -> tuple[bytes, Any]:
    body, headers = partner.signed(partner.envelope(**over))
    return body, await client.post("/v1/messages", content=body, headers=headers)


async def test_a_viewer_sees_masked_data_and_cannot_unmask(hub, client, auth, rail,
                                                           as_) -> None:
    await instruct(client, auth)
    vera, olga = as_("vera", "viewer"), as_("olga", "operator")
    [p] = (await client.get("/admin/v1/payments", headers=vera)).json()["payments"]
    assert p["payout"]["account"] == "*******6789" and p["masked"] is True
    assert p["beneficiary"]["id"] == "ID-NIK:**************02"
    problem(await client.get("/admin/v1/payments?unmasked=true", headers=vera), 403,
            "forbidden")
    problem(await client.get("/admin/v1/payments/PAY-0001?unmasked=true", headers=vera), 403,
            "forbidden")
    r = await client.get("/admin/v1/payments/PAY-0001?unmasked=true", headers=olga)
    assert r.json()["payout"]["account"] == "60123456789"
    assert [e["cause"] for e in r.json()["events"]] == ["instructed"]
    problem(await client.get("/admin/v1/payments/NOPE", headers=olga), 404, "not_found")
    records = [(r.actor, r.outcome, r.unmasked) for r in await trail(hub)]
    assert records == [("vera", "ok", False), ("vera", "denied", False),
                       ("vera", "denied", False), ("olga", "ok", True), ("olga", "invalid",
                                                                         False)]


async def test_message_search_and_evidence(hub, client, bpjstk: TestPartner, as_) -> None:
    body, r = await send(client, bpjstk, correlation_id="CASE-9")
    assert r.status_code == 202, r.text
    await send(client, bpjstk, correlation_id="CASE-8")
    vera, audrey = as_("vera", "viewer"), as_("audrey", "auditor")
    page = (await client.get("/admin/v1/messages?partner_id=ID-BPJSTK&direction=in&limit=1",
                             headers=vera)).json()
    assert [m["correlation_id"] for m in page["messages"]] == ["CASE-8"]  # newest first
    page = (await client.get(f"/admin/v1/messages?partner_id=ID-BPJSTK&direction=in&limit=1"
                             f"&cursor={page['next']}", headers=vera)).json()
    assert [m["correlation_id"] for m in page["messages"]] == ["CASE-9"]
    mid = page["messages"][0]["id"]
    r = await client.get("/admin/v1/messages?correlation_id=CASE-9&type=claim.notify",
                         headers=vera)
    assert [m["id"] for m in r.json()["messages"]] == [mid]
    assert (await client.get("/admin/v1/messages?from=2099-01-01T00:00:00Z",
                             headers=vera)).json()["messages"] == []
    masked = (await client.get(f"/admin/v1/messages/{mid}", headers=vera)).json()
    assert masked["masked"] is True and masked["wire_b64"] is None
    assert masked["signature"] and masked["kid"] == "ID-BPJSTK-dev-1"
    assert masked["receipt_b64"] and masked["processing"]["tasks"][0]["kind"] == \
        "process_inbound"
    full = (await client.get(f"/admin/v1/messages/{mid}?unmasked=true", headers=audrey)).json()
    assert base64.b64decode(full["wire_b64"]) == body
    [rec] = [r for r in await trail(hub) if r.unmasked]
    assert rec.actor == "audrey" and f"message:{mid}" in rec.targets


@pytest.mark.parametrize("query", [
    "cursor=abc", "cursor=-1", "direction=sideways", "limit=0", "limit=501",
    "from=2026-01-01T00:00:00", "partner_id=%27%3Bdrop", "from=yesterday",
])
async def test_bad_filters_and_cursors_are_problems(hub, client, as_, query: str) -> None:
    problem(await client.get(f"/admin/v1/messages?{query}", headers=as_("vera", "viewer")),
            422, "schema_violation")
    [rec] = await trail(hub)
    assert rec.outcome == "invalid" and rec.status == 422


async def test_unknown_ids_are_404(client, as_) -> None:
    vera = as_("vera", "viewer")
    problem(await client.get("/admin/v1/messages/424242", headers=vera), 404, "not_found")
    problem(await client.get("/admin/v1/proposals/424242", headers=vera), 404, "not_found")
    problem(await client.post("/admin/v1/partners/XX-NOBODY/suspend", json={"reason": "x"},
                              headers=as_("olga", "operator")), 404, "not_found")
    problem(await client.post("/admin/v1/breakers/nowhere", json={"state": "open",
                              "reason": "x"}, headers=as_("olga", "operator")), 404,
            "not_found")


async def test_suspension_takes_effect_at_once_and_resume_needs_four_eyes(
        hub, client, bpjstk: TestPartner, as_) -> None:
    olga, ann = as_("olga", "operator"), as_("ann", "approver")
    r = await client.post("/admin/v1/partners/ID-BPJSTK/suspend", headers=olga,
                          json={"reason": "key compromise reported"})
    assert r.status_code == 200, r.text
    problem((await send(client, bpjstk))[1], 403, "partner_suspended")
    problem(await client.get("/v1/inbox", headers=bpjstk.token()), 403, "partner_suspended")
    partners = (await client.get("/admin/v1/partners", headers=olga)).json()["partners"]
    [p] = [p for p in partners if p["partner_id"] == "ID-BPJSTK"]
    assert p["suspended"] and p["suspension"]["by"] == "olga" and p["breaker"] == "open"
    r = await client.post("/admin/v1/partners/ID-BPJSTK/resume", headers=olga,
                          json={"reason": "new key in place"})
    assert r.status_code == 201 and r.json()["action"] == "resume_partner"
    problem((await send(client, bpjstk))[1], 403, "partner_suspended")  # not yet approved
    r = await client.post(f"/admin/v1/proposals/{r.json()['id']}/approve", headers=ann)
    assert r.json()["state"] == "executed", r.text
    assert (await send(client, bpjstk))[1].status_code == 202
    suspend = [r for r in await trail(hub) if r.action == "partners.suspend"]
    assert suspend[0].reason == "key compromise reported"


async def test_manual_breaker_holds_a_destination_in_every_dispatcher(
        hub, client, auth, rail, dispatcher, as_) -> None:
    olga = as_("olga", "operator")
    problem(await client.post("/admin/v1/breakers/fake", headers=as_("vera", "viewer"),
                              json={"state": "open", "reason": "x"}), 403, "forbidden")
    r = await client.post("/admin/v1/breakers/fake", headers=olga,
                          json={"state": "open", "reason": "rail maintenance 02:00-03:00"})
    assert r.status_code == 200, r.text
    await instruct(client, auth)
    other = hub.dispatcher(batch=50)  # another process's dispatcher reads the same row
    assert await other.run_once() == 0 and rail.submits == 0
    [b] = [b for b in (await client.get("/admin/v1/breakers", headers=olga)).json()[
        "breakers"] if b["destination"] == "fake"]
    assert b["manual"] == "open" and b["held"] and b["set_by"] == "olga"
    depth = (await client.get("/admin/v1/outbox", headers=olga)).json()["queues"]
    queue = {k: v for k, v in depth[0].items() if k != "oldest_age_seconds"}
    assert queue == {"destination": "fake", "kind": "payout", "waiting": 1, "retrying": 0,
                     "dead": 0}
    await client.post("/admin/v1/breakers/fake", headers=olga,
                      json={"state": "closed", "reason": "maintenance over"})
    assert await hub.dispatcher(batch=50).run_once() == 1 and rail.submits == 1


async def export(client: Any, query: str, headers: dict[str, str],
                 want: int) -> list[dict[str, Any]]:
    """The export's lines, once ``want`` of them are past the visibility horizon.

    On PostgreSQL the export stops below the oldest transaction still running on the server
    (any database's: other tests share it), so a record can wait there a moment; bounded."""
    for _ in range(100):
        r = await client.get(f"/admin/v1/audit/export?{query}", headers=headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [orjson.loads(line) for line in r.content.splitlines()]
        if len(lines) >= want:
            return lines
        await asyncio.sleep(0.1)
    raise AssertionError(f"the export still has {len(lines)} lines")


async def test_the_audit_trail_is_read_by_auditors_exported_and_verifies(
        hub, client, as_, clock) -> None:
    vera, audrey = as_("vera", "viewer"), as_("audrey", "auditor")
    for _ in range(3):
        await client.get("/admin/v1/outbox", headers=vera)
    problem(await client.get("/admin/v1/audit/export", headers=vera), 403, "forbidden")
    page = (await client.get("/admin/v1/audit?actor=vera&limit=2", headers=audrey)).json()
    assert [r["action"] for r in page["records"]] == ["audit.export", "outbox.depth"]
    assert page["records"][0]["outcome"] == "denied"
    problem(await client.get("/admin/v1/audit?cursor=x1", headers=audrey), 422,
            "schema_violation")
    lines = await export(client, "actor=vera", audrey, want=5)
    assert [x.get("action") for x in lines[:-1]] == ["outbox.depth"] * 3 + ["audit.export"]
    resumed = await client.get(f"/admin/v1/audit/export?actor=vera&after={lines[-1]['next']}",
                               headers=audrey)
    assert [orjson.loads(x) for x in resumed.content.splitlines()] == [lines[-1]]
    problem(await client.get("/admin/v1/audit/export?after=1.x", headers=audrey), 422,
            "schema_violation")
    # Every record joins the evidence chain and verifies; a rewrite is detected.
    while await chain_pending(hub.uow, full_sweep=True):
        pass
    report = await verify_chain(hub.uow, settle=timedelta(0), clock=lambda: clock.now)
    assert report.ok and report.checked == len(await trail(hub))
    async with hub.uow() as uow:
        from gateway.storage.tables import admin_audit
        await uow.conn.execute(admin_audit.update().where(admin_audit.c.pk == 1)
                               .values(actor="someone-else"))
        await uow.commit()
    report = await verify_chain(hub.uow, settle=timedelta(0), clock=lambda: clock.now)
    assert report.broken == "admin_audit pk 1: the record was altered"


async def test_dead_letter_list_pages_newest_first(hub, client, auth, rail, dispatcher,
                                                   as_) -> None:
    rail.submit_faults = ["permanent", "permanent"]
    await instruct(client, auth, payment_id="PAY-1")
    await instruct(client, auth, payment_id="PAY-2")
    await dispatcher.run_once()
    vera = as_("vera", "viewer")
    page = (await client.get("/admin/v1/outbox/dead?limit=1&kind=payout", headers=vera)).json()
    assert [d["ref"] for d in page["dead_letters"]] == ["PAY-2"]
    page = (await client.get(f"/admin/v1/outbox/dead?limit=1&cursor={page['next']}",
                             headers=vera)).json()
    assert [d["ref"] for d in page["dead_letters"]] == ["PAY-1"]
    async with hub.engine.connect() as conn:
        assert set((await conn.execute(select(outbox.c.state))).scalars()) == {"dead"}


async def test_simultaneous_breaker_and_suspension_acts_all_succeed(
        hub: Hub, client: httpx.AsyncClient, as_: Any) -> None:
    """Operators acting at once on one destination each get their answer, never a 500: the
    last write is the breaker's state, and the partner is suspended once."""
    op = as_("olga", "operator")
    breakers = await asyncio.gather(*(client.post(
        "/admin/v1/breakers/PK-MOPHRD", headers=op,
        json={"state": "open", "reason": f"maintenance {i}"}) for i in range(6)))
    assert [r.status_code for r in breakers] == [200] * 6, [r.text for r in breakers]
    suspended = await asyncio.gather(*(client.post(
        "/admin/v1/partners/ID-BPJSTK/suspend", headers=op,
        json={"reason": f"incident {i}"}) for i in range(6)))
    assert [r.status_code for r in suspended] == [200] * 6, [r.text for r in suspended]
    assert sorted(r.json()["already"] for r in suspended) == [False] + [True] * 5
    async with hub.engine.connect() as conn:
        [row] = (await conn.execute(select(breaker_overrides))).all()
        assert row.state == "open" and row.reason.startswith("maintenance")
        assert len((await conn.execute(select(partner_suspensions))).all()) == 1
