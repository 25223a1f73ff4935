"""Maker-checker through HTTP: frozen targets, four eyes, editors, expiry, and each action."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gateway.composition import Hub
from gateway.outbox import records
from gateway.storage.tables import outbox
from tests.integration.admin.conftest import problem, trail
from tests.support.fakes import FakeRail
from tests.support.insider import change_payment
from tests.support.payments import payment_body

pytestmark = pytest.mark.anyio


async def instruct(client: Any, auth: dict[str, str], **over: Any) -> None:
    r = await client.post("/v1/backoffice/payments", json=payment_body(**over), headers=auth)
    assert r.status_code == 201, r.text


async def dead_payout(client: Any, auth: dict[str, str], rail: FakeRail, dispatcher: Any,
                      pid: str = "PAY-0001") -> int:
    rail.submit_faults = ["permanent"]
    await instruct(client, auth, payment_id=pid)
    await dispatcher.run_once()
    async with dispatcher.uow(read_only=True) as uow:
        [row] = await records.dead_page(uow.conn)
    return int(row.pk)


async def task_state(hub: Hub, pk: int) -> str:
    async with hub.engine.connect() as conn:
        return str((await conn.execute(select(outbox.c.state).where(outbox.c.pk == pk)))
                   .scalar_one())


async def test_replay_needs_four_eyes_and_executes_on_approval(
        hub, client, auth, rail, dispatcher, as_) -> None:
    pk = await dead_payout(client, auth, rail, dispatcher)
    alice = as_("alice", "operator", "approver")  # may do both, never on one proposal
    bob = as_("bob", "operator", "approver")
    carol = as_("carol", "approver")
    r = await client.post("/admin/v1/proposals", headers=alice, json={
        "action": "replay", "task_ids": [pk], "reason": "rail fixed the account check"})
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["state"] == "pending" and p["target_count"] == 1 and p["targets"] == [str(pk)]
    assert p["preview"]["tasks"][0]["ref"] == "PAY-0001"
    assert "invalid_account" in p["preview"]["tasks"][0]["last_error"]
    problem(await client.post(f"/admin/v1/proposals/{p['id']}/approve", headers=alice),
            403, "four_eyes")
    r = await client.patch(f"/admin/v1/proposals/{p['id']}", headers=bob,
                           json={"reason": "rail fixed the account check (ticket 42)"})
    assert r.status_code == 200 and r.json()["editors"] == ["bob"]
    problem(await client.post(f"/admin/v1/proposals/{p['id']}/approve", headers=bob),
            403, "four_eyes")
    assert await task_state(hub, pk) == "dead"
    r = await client.post(f"/admin/v1/proposals/{p['id']}/approve", headers=carol,
                          json={"note": "checked with the rail"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "executed" and r.json()["result"]["replayed"] == [pk]
    assert await task_state(hub, pk) == "pending"
    problem(await client.post(f"/admin/v1/proposals/{p['id']}/approve", headers=carol),
            409, "state_conflict")
    actions = [(r.actor, r.action, r.outcome, r.proposal_pk) for r in await trail(hub)]
    assert actions == [
        ("alice", "proposals.create", "ok", p["id"]),
        ("alice", "proposals.approve", "denied", p["id"]),
        ("bob", "proposals.edit", "ok", p["id"]),
        ("bob", "proposals.approve", "denied", p["id"]),
        ("carol", "proposals.approve", "ok", p["id"]),
        ("carol", "proposals.approve", "invalid", p["id"]),
    ]
    [create] = [r for r in await trail(hub) if r.action == "proposals.create"]
    assert create.reason == "rail fixed the account check" and f"replay:{pk}" in create.targets


async def test_the_target_set_is_frozen_at_creation(hub, client, auth, rail, dispatcher,
                                                    as_) -> None:
    first = await dead_payout(client, auth, rail, dispatcher, "PAY-0001")
    r = await client.post("/admin/v1/proposals", headers=as_("olga", "operator"), json={
        "action": "replay", "kind": "payout", "reason": "replay every dead payout"})
    assert r.status_code == 201 and r.json()["targets"] == [str(first)]
    rail.submit_faults = ["permanent"]
    await instruct(client, auth, payment_id="PAY-0002")
    await dispatcher.run_once()  # a second dead payout after the proposal
    r = await client.post(f"/admin/v1/proposals/{r.json()['id']}/approve",
                          headers=as_("ann", "approver"))
    assert r.json()["result"] == {"replayed": [first], "no_longer_dead": []}
    async with hub.engine.connect() as conn:
        states = dict((await conn.execute(select(outbox.c.ref, outbox.c.state))).all())
    assert states == {"PAY-0001": "pending", "PAY-0002": "dead"}


async def test_an_expired_proposal_cannot_be_approved(hub, client, auth, rail, dispatcher,
                                                      clock, as_) -> None:
    pk = await dead_payout(client, auth, rail, dispatcher)
    r = await client.post("/admin/v1/proposals", headers=as_("olga", "operator"), json={
        "action": "replay", "task_ids": [pk], "reason": "retry", "expires_in_hours": 1})
    pid = r.json()["id"]
    clock.now += timedelta(hours=2)
    problem(await client.post(f"/admin/v1/proposals/{pid}/approve",
                              headers=as_("ann", "approver")), 409, "proposal_expired")
    r = await client.get(f"/admin/v1/proposals/{pid}", headers=as_("vera", "viewer"))
    assert r.json()["state"] == "expired"
    r = await client.get("/admin/v1/proposals?state=expired", headers=as_("vera", "viewer"))
    assert [p["id"] for p in r.json()["proposals"]] == [pid]  # stored as expired
    assert await task_state(hub, pk) == "dead"
    assert [r.outcome for r in await trail(hub) if r.action == "proposals.approve"] == [
        "invalid"]


async def test_the_state_filter_reads_proposals_as_they_stand_now(hub, client, auth, rail,
                                                                  dispatcher, clock,
                                                                  as_) -> None:
    # One lapses untouched (still stored pending), one stays open: each is listed under the
    # state its view shows, never under the one stored.
    pk = await dead_payout(client, auth, rail, dispatcher)
    olga = as_("olga", "operator")
    lapsing = (await client.post("/admin/v1/proposals", headers=olga, json={
        "action": "replay", "task_ids": [pk], "reason": "retry",
        "expires_in_hours": 1})).json()
    assert lapsing["state"] == "pending", lapsing
    clock.now += timedelta(hours=2)
    fresh = (await client.post("/admin/v1/proposals", headers=olga, json={
        "action": "replay", "task_ids": [pk], "reason": "retry"})).json()
    vera = as_("vera", "viewer")

    async def listed(state: str) -> list[tuple[int, str]]:
        r = await client.get(f"/admin/v1/proposals?state={state}", headers=vera)
        assert r.status_code == 200, r.text
        return [(p["id"], p["state"]) for p in r.json()["proposals"]]

    assert await listed("expired") == [(lapsing["id"], "expired")]
    assert await listed("pending") == [(fresh["id"], "pending")]


async def test_reason_is_required_and_unknown_targets_are_404(client, as_) -> None:
    olga = as_("olga", "operator")
    problem(await client.post("/admin/v1/proposals", headers=olga, json={
        "action": "replay", "task_ids": [1], "reason": ""}), 422, "schema_violation")
    problem(await client.post("/admin/v1/proposals", headers=olga, json={
        "action": "replay", "task_ids": [1]}), 422, "schema_violation")
    problem(await client.post("/admin/v1/proposals", headers=olga, json={
        "action": "replay", "task_ids": [999], "reason": "x"}), 404, "not_found")
    problem(await client.post("/admin/v1/proposals", headers=olga, json={
        "action": "launch_rockets", "reason": "x"}), 422, "schema_violation")
    problem(await client.post("/admin/v1/proposals", headers=olga, json={
        "action": "cancel_payments", "payment_ids": ["NOPE"], "reason": "x"}), 404,
        "not_found")
    problem(await client.post("/admin/v1/proposals/77/approve",
                              headers=as_("ann", "approver")), 404, "not_found")
    problem(await client.get("/admin/v1/proposals/abc", headers=olga), 422,
            "schema_violation")


async def test_a_draft_is_submitted_then_rejected(hub, client, auth, rail, dispatcher,
                                                  as_) -> None:
    pk = await dead_payout(client, auth, rail, dispatcher)
    olga, ann = as_("olga", "operator"), as_("ann", "approver")
    r = await client.post("/admin/v1/proposals", headers=olga, json={
        "action": "replay", "task_ids": [pk], "reason": "retry", "draft": True})
    pid = r.json()["id"]
    assert r.json()["state"] == "draft"
    problem(await client.post(f"/admin/v1/proposals/{pid}/approve", headers=ann), 409,
            "state_conflict")
    r = await client.post(f"/admin/v1/proposals/{pid}/submit", headers=olga)
    assert r.json()["state"] == "pending"
    problem(await client.post(f"/admin/v1/proposals/{pid}/reject", headers=ann, json={}),
            422, "schema_violation")
    r = await client.post(f"/admin/v1/proposals/{pid}/reject", headers=ann,
                          json={"note": "the account is still wrong"})
    assert r.json()["state"] == "rejected" and r.json()["decided_by"] == "ann"
    assert await task_state(hub, pk) == "dead"


async def _blocked_case(hub: Hub) -> tuple[int, int]:
    """A dead delivery holding back a later one of its case; return both pks."""
    now = hub.clock()
    async with hub.uow() as uow:
        first = await records.enqueue(uow.conn, kind="deliver", destination="ID-BPJSTK",
                                      ref="1", now=now, ordering_key="CASE-1")
        second = await records.enqueue(uow.conn, kind="deliver", destination="ID-BPJSTK",
                                       ref="2", now=now, ordering_key="CASE-1")
        [task] = await records.take_leases(uow.conn, [first], owner="t", now=now,
                                           lease=timedelta(seconds=60))
        await records.dead_letter(uow.conn, task, now, "PermanentDeliveryError: HTTP 400 "
                                  "account 60123456789 refused")
        await uow.commit()
    return first, second


async def test_skip_shows_its_consequences_and_unblocks_the_case(hub, client, as_) -> None:
    first, second = await _blocked_case(hub)
    viewer = as_("vera", "viewer")
    [dead] = (await client.get("/admin/v1/outbox/dead", headers=viewer)).json()["dead_letters"]
    assert dead["id"] == first and dead["blocking"] == 1
    assert "60123456789" not in dead["last_error"]  # sanitised
    r = await client.post("/admin/v1/proposals", headers=as_("olga", "operator"), json={
        "action": "skip", "task_id": first, "reason": "partner confirmed it has the message"})
    assert r.status_code == 201, r.text
    consequences = r.json()["preview"]["consequences"]
    assert any("1 later task(s) of case CASE-1" in c for c in consequences)
    r = await client.post(f"/admin/v1/proposals/{r.json()['id']}/approve",
                          headers=as_("ann", "approver"))
    assert r.json()["state"] == "executed", r.text
    assert await task_state(hub, first) == "done"
    async with hub.uow(read_only=True) as uow:
        assert [b.task_pk for b in await records.blocked_cases(uow.conn)] == []
    assert await task_state(hub, second) == "pending"


async def test_cancel_and_resolve_payments_through_the_payment_service(
        hub, client, auth, rail, dispatcher, as_) -> None:
    olga, ann = as_("olga", "operator"), as_("ann", "approver")
    await instruct(client, auth, payment_id="PAY-A")
    await instruct(client, auth, payment_id="PAY-B")
    rail.submit_faults = ["lost"]  # PAY-A: sent, no answer
    await dispatcher.run_once()
    r = await client.post("/admin/v1/proposals", headers=olga, json={
        "action": "cancel_payments", "payment_ids": ["PAY-B"], "reason": "duplicate claim"})
    assert r.json()["preview"]["payments"][0]["state"] == "submitted"
    r = await client.post(f"/admin/v1/proposals/{r.json()['id']}/approve", headers=ann)
    assert r.json()["result"] == {"payments": {"PAY-B": "cancel_requested"}}
    # PAY-A's outcome is unknown: ops learnt from the rail it failed.
    pay = (await client.get("/admin/v1/payments/PAY-A", headers=olga)).json()
    assert pay["state"] == "unknown"
    problem(await client.post("/admin/v1/proposals", headers=olga, json={
        "action": "resolve_payment", "payment_id": "PAY-A", "outcome": "paid",
        "reason": "rail says paid"}), 422, "schema_violation")  # paid needs the reference
    r = await client.post("/admin/v1/proposals", headers=olga, json={
        "action": "resolve_payment", "payment_id": "PAY-A", "outcome": "failed",
        "rail_reference": "RAIL-77", "reason": "rail's ops desk: rejected"})
    assert r.json()["preview"]["effect"] == "unknown -> failed"
    r = await client.post(f"/admin/v1/proposals/{r.json()['id']}/approve", headers=ann)
    assert r.json()["state"] == "executed" and r.json()["result"]["state"] == "failed"
    pay = (await client.get("/admin/v1/payments/PAY-A", headers=olga)).json()
    assert pay["events"][-1]["cause"] == "ops_resolved" and pay["rail_reference"] == "RAIL-77"
    problem(await client.post("/admin/v1/proposals", headers=olga, json={
        "action": "resolve_payment", "payment_id": "PAY-A", "outcome": "paid",
        "rail_reference": "R", "reason": "x"}), 409, "state_conflict")  # failed -> paid? no


async def test_a_discrepancy_is_resolved_under_four_eyes(hub, client, auth, rail, dispatcher,
                                                         clock, as_) -> None:
    olga, ann = as_("olga", "operator"), as_("ann", "approver")
    await instruct(client, auth)
    await dispatcher.run_once()  # submitted
    r = await client.post("/v1/backoffice/payments/PAY-0001/cancel", headers=auth,
                          json={"reason": "sent in error"})
    assert r.json()["state"] == "cancel_requested"
    rail.settle("PAY-0001")  # the rail paid it before the cancel arrived
    clock.now += timedelta(hours=2)
    await dispatcher.run_once()
    [d] = (await client.get("/admin/v1/discrepancies?state=open", headers=olga)).json()[
        "discrepancies"]
    assert d["kind"] == "paid_after_cancel_request"
    r = await client.post("/admin/v1/proposals", headers=olga, json={
        "action": "resolve_discrepancy", "discrepancy_id": d["id"], "outcome": "paid",
        "rail_reference": "FK000001", "reason": "rail statement shows the payout"})
    assert r.status_code == 201, r.text
    assert r.json()["preview"]["effect"] == "stays paid"
    r = await client.post(f"/admin/v1/proposals/{r.json()['id']}/approve", headers=ann)
    assert r.json()["state"] == "executed", r.text
    [d] = (await client.get("/admin/v1/discrepancies", headers=olga)).json()["discrepancies"]
    assert d["state"] == "resolved" and "ops: paid" in d["detail"]
    problem(await client.post("/admin/v1/proposals", headers=olga, json={
        "action": "resolve_discrepancy", "discrepancy_id": d["id"], "outcome": "reask",
        "reason": "again"}), 409, "state_conflict")


async def test_an_act_that_fails_on_approval_rolls_back_and_is_recorded(
        hub, client, auth, as_) -> None:
    first, _second = await _blocked_case(hub)
    r = await client.post("/admin/v1/proposals", headers=as_("olga", "operator"), json={
        "action": "skip", "task_id": first, "reason": "partner has it"})
    # Meanwhile someone retried the dead letter through the back office.
    assert (await client.post(f"/v1/backoffice/dead-letters/{first}/retry",
                              headers=auth)).status_code == 200
    r = await client.post(f"/admin/v1/proposals/{r.json()['id']}/approve",
                          headers=as_("ann", "approver"))
    assert r.status_code == 200 and r.json()["state"] == "failed"
    assert "no longer dead" in r.json()["result"]["error"]
    assert await task_state(hub, first) == "pending"  # not skipped
    [rec] = [x for x in await trail(hub) if x.action == "proposals.approve"]
    assert rec.outcome == "failed" and "state_conflict" in rec.detail


async def test_an_act_on_a_payment_changed_beside_the_hub_fails_and_names_it(
        hub, client, auth, rail, dispatcher, as_) -> None:
    olga, ann = as_("olga", "operator"), as_("ann", "approver")
    await instruct(client, auth, payment_id="PAY-A")
    rail.submit_faults = ["lost"]  # sent, no answer: unknown
    await dispatcher.run_once()
    r = await client.post("/admin/v1/proposals", headers=olga, json={
        "action": "resolve_payment", "payment_id": "PAY-A", "outcome": "failed",
        "rail_reference": "RAIL-77", "reason": "rail's ops desk: rejected"})
    assert r.status_code == 201, r.text
    await change_payment(hub.engine, "PAY-A", account="60199990000")
    r = await client.post(f"/admin/v1/proposals/{r.json()['id']}/approve", headers=ann)
    assert r.status_code == 200 and r.json()["state"] == "failed", r.text
    assert r.json()["result"]["error"].startswith("evidence_mismatch: payments pk ")
    assert (await client.get("/admin/v1/payments/PAY-A", headers=olga)).json()["state"] \
        == "unknown"
    [rec] = [x for x in await trail(hub) if x.action == "proposals.approve"]
    assert rec.outcome == "failed" and "evidence_mismatch" in rec.detail


async def test_a_bulk_cancel_stops_the_others_when_one_payment_is_held(
        hub, client, auth, rail, as_) -> None:
    """In an incident the payment changed beside the hub is likely to be in the list: it is
    held (named in the result) and every other payment of the proposal is stopped."""
    olga, ann = as_("olga", "operator"), as_("ann", "approver")
    await instruct(client, auth, payment_id="PAY-A")
    await instruct(client, auth, payment_id="PAY-B")
    r = await client.post("/admin/v1/proposals", headers=olga, json={
        "action": "cancel_payments", "payment_ids": ["PAY-A", "PAY-B"], "reason": "fraud"})
    assert r.status_code == 201, r.text
    await change_payment(hub.engine, "PAY-B", account="60199990000")
    r = await client.post(f"/admin/v1/proposals/{r.json()['id']}/approve", headers=ann)
    assert r.status_code == 200 and r.json()["state"] == "executed", r.text
    done = r.json()["result"]["payments"]
    assert done["PAY-A"] == "cancelled"
    assert done["PAY-B"].startswith("not stopped: evidence_mismatch: payments pk ")
    assert (await client.get("/admin/v1/payments/PAY-B", headers=olga)).json()["state"] \
        == "instructed"
