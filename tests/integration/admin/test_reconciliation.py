"""Reconciliation through the admin API: runs, items and cases to read; cases resolved under
four eyes (the case row records who, how and the proposal); a later run keeps an ops-closed
case closed unless it finds its cause again; the evidence chain verified on demand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from gateway.composition import Hub
from gateway.evidence.chain import chain_pending
from gateway.payments.rails import Settlement
from gateway.reconciliation.service import ReconciliationService
from gateway.storage.tables import admin_proposals, payments, recon_cases, recon_runs
from tests.integration.admin.conftest import problem, trail
from tests.support.recon import ScriptedRail, add_payment, line, proof, record, statement

pytestmark = pytest.mark.anyio
DAY = date(2026, 12, 1)
DAY_NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # 20:00 in Kuala Lumpur


@pytest.fixture
def recon(hub: Hub, clock: Any) -> ReconciliationService:
    clock.now = DAY_NOW
    svc = ReconciliationService(hub.uow, hub.payments.service, {"fake": ScriptedRail()},  # type: ignore[dict-item]
                                {"fake": Settlement(1, "17:00", "KUL")}, clock,
                                lambda: httpx.AsyncClient())
    hub.reconciliation = svc
    return svc


@pytest.fixture
def people(as_: Any) -> dict[str, dict[str, str]]:
    return {"viewer": as_("vera", "viewer"), "alice": as_("alice", "operator"),
            "bob": as_("bob", "operator", "approver"), "carol": as_("carol", "approver"),
            "audrey": as_("audrey", "auditor")}


async def case_of(hub: Hub, subject: str, kind: str) -> Any:
    async with hub.engine.connect() as conn:
        return (await conn.execute(select(recon_cases).where(
            recon_cases.c.subject == subject, recon_cases.c.kind == kind))).mappings().one()


async def payment_state(hub: Hub, pid: str) -> str:
    async with hub.engine.connect() as conn:
        return str((await conn.execute(select(payments.c.state).where(
            payments.c.payment_id == pid))).scalar_one())


async def propose(client: httpx.AsyncClient, who: dict[str, str], case_id: int, outcome: str,
                  **extra: Any) -> httpx.Response:
    return await client.post("/admin/v1/proposals", headers=who, json={
        "action": "resolve_recon_case", "case_id": case_id, "outcome": outcome,
        "reason": "checked with the rail", **extra})


async def resolved(client: httpx.AsyncClient, people: dict[str, dict[str, str]],
                   case_id: int, outcome: str, **extra: Any) -> dict[str, Any]:
    r = await propose(client, people["alice"], case_id, outcome, **extra)
    assert r.status_code == 201, r.text
    done = await client.post(f"/admin/v1/proposals/{r.json()['id']}/approve",
                             headers=people["carol"])
    assert done.status_code == 200, done.text
    body: dict[str, Any] = done.json()
    assert body["state"] == "executed", body
    return body


async def next_day(recon: ReconciliationService, data: bytes) -> Any:
    """The next business day's run, made on that day (at 20:00 in Kuala Lumpur)."""
    recon.clock.now = DAY_NOW + timedelta(days=1)  # type: ignore[attr-defined]
    return await recon.run("fake", DAY + timedelta(days=1), data)


async def test_runs_items_and_cases_are_listed_with_cursors_and_audited(
        hub: Hub, recon: ReconciliationService, client: httpx.AsyncClient,
        people: dict[str, dict[str, str]], backoffice_token: str) -> None:
    await add_payment(hub.uow, "P-1")
    await add_payment(hub.uow, "P-2")
    r1 = await recon.run("fake", DAY, statement([record(), line(1, e2e="P-1"),
                                                 line(2, "3.00")]))
    r2 = await next_day(recon, statement([record(day="2026-12-02")]))
    v = people["viewer"]
    page = (await client.get("/admin/v1/reconciliation/runs", headers=v,
                             params={"limit": 1})).json()
    assert [r["run_id"] for r in page["runs"]] == [r2.run_id]
    rest = (await client.get("/admin/v1/reconciliation/runs", headers=v,
                             params={"limit": 1, "cursor": page["next"]})).json()
    assert [r["run_id"] for r in rest["runs"]] == [r1.run_id]
    by_date = (await client.get("/admin/v1/reconciliation/runs", headers=v,
                                params={"rail": "fake", "date": "2026-12-01"})).json()
    assert [r["run_id"] for r in by_date["runs"]] == [r1.run_id] and by_date["next"] is None
    detail = (await client.get(f"/admin/v1/reconciliation/runs/{r1.run_id}", headers=v)).json()
    assert detail["verdict"] == "discrepancies" and detail["summary"]["verdict"] == "discrepancies"
    items = (await client.get(f"/admin/v1/reconciliation/runs/{r1.run_id}/items", headers=v,
                              params={"limit": 2})).json()
    assert [i["kind"] for i in items["items"]] == ["matched", "unknown_line"]
    more = (await client.get(f"/admin/v1/reconciliation/runs/{r1.run_id}/items", headers=v,
                             params={"cursor": items["next"]})).json()
    assert [i["subject"] for i in more["items"]] == ["P-2"]
    # A position past any item (item numbers are 32-bit, the cursors 64-bit) is an empty page.
    for far in (2**31, 10**18 - 1):
        past = await client.get(f"/admin/v1/reconciliation/runs/{r1.run_id}/items",
                                headers=v, params={"cursor": str(far)})
        assert past.status_code == 200 and past.json()["items"] == [], past.text
    office = {"Authorization": f"Bearer {backoffice_token}"}
    for far in (2**31, 2**63 - 1):
        past = await client.get(f"/v1/backoffice/reconciliation/runs/{r1.run_id}/items",
                                headers=office, params={"after": str(far)})
        assert past.status_code == 200 and past.json()["items"] == [], past.text
    cases = (await client.get("/admin/v1/reconciliation/cases", headers=v,
                              params={"state": "open", "kind": "unknown_line",
                                      "rail": "fake"})).json()
    [case] = cases["cases"]
    assert case["subject"] == "line:S1#2" and case["amount"] == {"amount": "3.00",
                                                                  "currency": "MYR"}
    assert case["resolution"] is None
    one = (await client.get(f"/admin/v1/reconciliation/cases/{case['id']}", headers=v)).json()
    assert one["id"] == case["id"] and one["payment"] is None
    all_open = (await client.get("/admin/v1/reconciliation/cases", headers=v,
                                 params={"limit": 1})).json()
    assert len(all_open["cases"]) == 1 and all_open["next"] is not None
    actions = [(r.actor, r.action, r.outcome) for r in await trail(hub)]
    assert ("vera", "reconciliation.runs", "ok") in actions
    assert ("vera", "reconciliation.items", "ok") in actions
    assert ("vera", "reconciliation.case", "ok") in actions
    [rec] = [r for r in await trail(hub) if r.action == "reconciliation.case"]
    assert f"recon_case:{case['id']}" in rec.targets


@pytest.mark.parametrize("url", [
    "/admin/v1/reconciliation/runs?date=2026-13-01",
    "/admin/v1/reconciliation/runs?cursor=x",
    "/admin/v1/reconciliation/runs?rail=no%20such",
    "/admin/v1/reconciliation/cases?state=pending",
    "/admin/v1/reconciliation/cases?kind=matched",
    "/admin/v1/reconciliation/runs/not-a-run/items",
    "/admin/v1/reconciliation/runs/0123456789abcdef0123/items?kind=nope",
])
async def test_bad_filters_are_problems(client: httpx.AsyncClient, recon: ReconciliationService,
                                        people: dict[str, dict[str, str]], url: str) -> None:
    problem(await client.get(url, headers=people["viewer"]), 422, "schema_violation")


async def test_unknown_run_and_case_are_not_found(
        client: httpx.AsyncClient, recon: ReconciliationService,
        people: dict[str, dict[str, str]]) -> None:
    problem(await client.get("/admin/v1/reconciliation/runs/0123456789abcdef0123",
                             headers=people["viewer"]), 404, "not_found")
    problem(await client.get("/admin/v1/reconciliation/cases/99", headers=people["viewer"]),
            404, "not_found")
    assert (await client.get("/admin/v1/reconciliation/cases")).status_code == 401


async def test_a_viewer_cannot_propose_and_a_maker_cannot_approve(
        hub: Hub, recon: ReconciliationService, client: httpx.AsyncClient,
        people: dict[str, dict[str, str]]) -> None:
    await recon.run("fake", DAY, statement([record(), line(1, "3.00")]))
    case = await case_of(hub, "line:S1#1", "unknown_line")
    problem(await propose(client, people["viewer"], case.pk, "explained", note="a top-up"),
            403, "forbidden")
    r = await propose(client, people["bob"], case.pk, "explained", note="a funding top-up")
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["targets"] == [str(case.pk)]
    preview = p["preview"]
    assert preview["case"]["kind"] == "unknown_line" and preview["case"]["age_days"] == 0
    assert preview["case"]["amount"] == {"amount": "3.00", "currency": "MYR"}
    assert preview["payment"] is None and preview["effect"] == "case closed as explained"
    problem(await client.post(f"/admin/v1/proposals/{p['id']}/approve", headers=people["bob"]),
            403, "four_eyes")
    problem(await client.post(f"/admin/v1/proposals/{p['id']}/approve",
                              headers=people["alice"]), 403, "forbidden")
    assert (await case_of(hub, "line:S1#1", "unknown_line")).state == "open"
    done = await client.post(f"/admin/v1/proposals/{p['id']}/approve", headers=people["carol"])
    assert done.status_code == 200 and done.json()["state"] == "executed", done.text
    closed = await case_of(hub, "line:S1#1", "unknown_line")
    assert (closed.state, closed.resolution, closed.resolved_by, closed.proposal_pk) == (
        "closed", "explained", "bob", p["id"])
    assert "a funding top-up" in closed.closed_note and "carol" in closed.closed_note
    view = (await client.get(f"/admin/v1/reconciliation/cases/{case.pk}",
                             headers=people["viewer"])).json()
    assert view["state"] == "closed"
    assert view["resolution"]["outcome"] == "explained" and view["resolution"]["by"] == "bob"
    assert view["resolution"]["proposal_id"] == p["id"]


async def test_outcomes_must_fit_the_case(
        hub: Hub, recon: ReconciliationService, client: httpx.AsyncClient,
        people: dict[str, dict[str, str]]) -> None:
    await add_payment(hub.uow, "P-3")
    await recon.run("fake", DAY, statement([record(), line(1, "3.00"), line(
        2, e2e="P-3", kind="returned", credit=True, reason="AM04")]))
    unknown = await case_of(hub, "line:S1#1", "unknown_line")
    returned = await case_of(hub, "P-3", "returned")
    alice = people["alice"]
    body = problem(await propose(client, alice, unknown.pk, "failed"), 422, "schema_violation")
    assert "does not fit a unknown_line case" in body["detail"]
    problem(await propose(client, alice, unknown.pk, "explained"), 422, "schema_violation")
    body = problem(await propose(client, alice, unknown.pk, "explained", note=" \t "), 422,
                   "schema_violation")
    assert "needs a note" in body["detail"]
    problem(await propose(client, alice, unknown.pk, "paid"), 422, "schema_violation")
    body = problem(await propose(client, alice, returned.pk, "new_beneficiary_details"),
                   422, "schema_violation")
    assert "AM04" in body["detail"]
    problem(await propose(client, alice, 999, "written_off", note="x"), 404, "not_found")


async def test_money_moved_for_a_failed_payment_marked_paid_through_payment_service(
        hub: Hub, recon: ReconciliationService, client: httpx.AsyncClient,
        people: dict[str, dict[str, str]]) -> None:
    await add_payment(hub.uow, "P-9", state="failed", paid_at=None)
    await recon.run("fake", DAY, statement([record(), line(1, e2e="P-9")]))
    case = await case_of(hub, "P-9", "state_mismatch")
    problem(await propose(client, people["alice"], case.pk, "paid"), 422, "schema_violation")
    r = await propose(client, people["alice"], case.pk, "paid", rail_reference="RR-9")
    assert r.status_code == 201, r.text
    preview = r.json()["preview"]
    assert preview["payment"] == {"payment_id": "P-9", "state": "failed"}
    assert preview["case"]["kind"] == "state_mismatch" and preview["case"]["priority"] == "high"
    assert preview["case"]["age_days"] == 0 and "failed -> paid" in preview["effect"]
    assert preview["case"]["amount"] == {"amount": "100.00", "currency": "MYR"}
    assert await payment_state(hub, "P-9") == "failed"
    done = await client.post(f"/admin/v1/proposals/{r.json()['id']}/approve",
                             headers=people["carol"])
    assert done.json()["result"] == {"case_id": case.pk, "outcome": "paid",
                                     "payment_id": "P-9", "state": "paid"}, done.text
    assert await payment_state(hub, "P-9") == "paid"
    assert (await case_of(hub, "P-9", "state_mismatch")).state == "closed"
    detail = (await client.get("/admin/v1/payments/P-9", headers=people["viewer"])).json()
    assert detail["events"][-1]["cause"] == "ops_resolved"
    assert detail["rail_reference"] == "RR-9"


async def test_the_state_machine_decides_what_a_payment_outcome_may_be(
        hub: Hub, recon: ReconciliationService, client: httpx.AsyncClient,
        people: dict[str, dict[str, str]]) -> None:
    # A payment the ledger says is paid has no way back to failed: ops re-ask the rail.
    await add_payment(hub.uow, "P-6", paid_at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC),
                      rail_reference="RR-6")
    await recon.run("fake", DAY, statement([record()]))
    case = await case_of(hub, "P-6", "missing_on_statement")
    body = problem(await propose(client, people["alice"], case.pk, "failed"),
                   409, "state_conflict")
    assert "paid to failed" in body["detail"]
    # Confirming it paid under another reference than the rail's would rewrite what was paid.
    body = problem(await propose(client, people["alice"], case.pk, "paid",
                                 rail_reference="RR-OTHER"), 409, "state_conflict")
    assert "rail reference RR-6; RR-OTHER contradicts it" in body["detail"]
    same = await propose(client, people["alice"], case.pk, "paid", rail_reference="RR-6")
    assert same.status_code == 201 and same.json()["preview"]["effect"].endswith(
        "stays paid"), same.text


async def test_a_bad_account_return_asks_for_new_beneficiary_details(
        hub: Hub, recon: ReconciliationService, client: httpx.AsyncClient,
        people: dict[str, dict[str, str]]) -> None:
    await add_payment(hub.uow, "P-4")
    await recon.run("fake", DAY, statement([record(), line(
        1, e2e="P-4", kind="returned", credit=True, reason="AC04")]))
    case = await case_of(hub, "P-4", "returned")
    assert case.action == "new_beneficiary_details"
    body = await resolved(client, people, case.pk, "new_beneficiary_details")
    assert body["result"] == {"case_id": case.pk, "outcome": "new_beneficiary_details"}
    after = await case_of(hub, "P-4", "returned")
    assert after.state == "closed" and after.resolution == "new_beneficiary_details"
    assert await payment_state(hub, "P-4") == "returned"  # the run's doing, not ops'


async def test_a_return_its_unproven_statement_did_not_apply_is_not_acted_on(
        hub: Hub, recon: ReconciliationService, client: httpx.AsyncClient,
        people: dict[str, dict[str, str]]) -> None:
    # The statement's balance does not add up: its AC04 return moved nothing and told no
    # partner, so ops may not close the case as "the partner is asked for new details".
    await add_payment(hub.uow, "P-5")
    await recon.run("fake", DAY, statement([record(), line(
        1, e2e="P-5", kind="returned", credit=True, reason="AC04"), proof(False, "balance")]))
    case = await case_of(hub, "P-5", "returned")
    body = problem(await propose(client, people["alice"], case.pk, "new_beneficiary_details"),
                   409, "state_conflict")
    assert body["detail"] == (f"case {case.pk}: payment P-5 is paid, not returned: the return "
                              "was not applied (its statement did not prove itself); reconcile "
                              "the corrected statement first")
    assert await payment_state(hub, "P-5") == "paid"


async def test_a_case_closed_before_approval_is_refused_with_409(
        hub: Hub, recon: ReconciliationService, client: httpx.AsyncClient,
        people: dict[str, dict[str, str]]) -> None:
    await recon.run("fake", DAY, statement([record(), line(1, "3.00")]))
    case = await case_of(hub, "line:S1#1", "unknown_line")
    first = (await propose(client, people["alice"], case.pk, "written_off", note="noise")).json()
    second = (await propose(client, people["bob"], case.pk, "explained",
                            note="a funding top-up")).json()
    await client.post(f"/admin/v1/proposals/{second['id']}/approve", headers=people["carol"])
    body = problem(await client.post(f"/admin/v1/proposals/{first['id']}/approve",
                                     headers=people["carol"]), 409, "state_conflict")
    assert "already closed by bob" in body["detail"]
    after = await case_of(hub, "line:S1#1", "unknown_line")
    assert (after.resolution, after.proposal_pk) == ("explained", second["id"])
    async with hub.engine.connect() as conn:
        state = (await conn.execute(select(admin_proposals.c.state).where(
            admin_proposals.c.pk == first["id"]))).scalar_one()
    assert state == "failed"
    [rec] = [r for r in await trail(hub) if r.proposal_pk == first["id"]
             and r.action == "proposals.approve"]
    assert (rec.outcome, rec.status) == ("invalid", 409)
    # A case a run cleared is refused the same way.
    await recon.run("fake", DAY, statement([record(), line(1, "3.00"), line(2, "4.00")]))
    other = await case_of(hub, "line:S1#2", "unknown_line")
    p = (await propose(client, people["alice"], other.pk, "written_off", note="noise")).json()
    await recon.run("fake", DAY, statement([record(), line(1, "3.00"),  # supersedes: gone
                                            line(3, "1.00", kind="fee")]))
    problem(await client.post(f"/admin/v1/proposals/{p['id']}/approve",
                              headers=people["carol"]), 409, "state_conflict")


async def test_a_rerun_keeps_an_ops_closed_case_closed_unless_its_cause_is_found_again(
        hub: Hub, recon: ReconciliationService, client: httpx.AsyncClient,
        people: dict[str, dict[str, str]]) -> None:
    await recon.run("fake", DAY, statement([record(), line(1, "3.00", ref="R-1"),
                                            line(2, "5.00", ref="R-2")]))
    gone = await case_of(hub, "line:R-1", "unknown_line")
    kept = await case_of(hub, "line:R-2", "unknown_line")
    await resolved(client, people, gone.pk, "explained", note="fee booked late")
    await resolved(client, people, kept.pk, "written_off", note="rail's rounding")
    # A corrected statement of the same day: R-1's line is gone, R-2's still there as it was.
    fixed = await recon.run("fake", DAY, statement([record(), line(2, "5.00", ref="R-2")]))
    assert fixed.summary["supersedes"] is not None
    assert fixed.summary["cases"]["kept_closed"] == 1
    for subject, outcome in (("line:R-1", "explained"), ("line:R-2", "written_off")):
        c = await case_of(hub, subject, "unknown_line")
        assert (c.state, c.resolution, c.resolved_by) == ("closed", outcome, "alice")
        assert "cleared by run" not in c.closed_note
    # The next day's statement books R-2 again on a new line: its cause is found again.
    await next_day(recon, statement([
        record(sid="S2", day="2026-12-02"), line(1, "5.00", ref="R-2", sid="S2",
                                                 day="2026-12-02")]))
    again = await case_of(hub, "line:R-2", "unknown_line")
    assert (again.state, again.resolution, again.line_ref) == ("open", None, "S2#1")
    assert (await case_of(hub, "line:R-1", "unknown_line")).state == "closed"


async def test_a_written_off_missing_payout_stays_closed_on_later_runs(
        hub: Hub, recon: ReconciliationService, client: httpx.AsyncClient,
        people: dict[str, dict[str, str]]) -> None:
    await add_payment(hub.uow, "P-7", paid_at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    await recon.run("fake", DAY, statement([record()]))
    case = await case_of(hub, "P-7", "missing_on_statement")
    await resolved(client, people, case.pk, "written_off", note="recovered off-system")
    await next_day(recon, statement([record(day="2026-12-02")]))
    after = await case_of(hub, "P-7", "missing_on_statement")
    assert (after.state, after.resolution) == ("closed", "written_off")


async def test_a_reasked_case_reopens_when_a_later_run_still_finds_it(
        hub: Hub, recon: ReconciliationService, client: httpx.AsyncClient,
        people: dict[str, dict[str, str]]) -> None:
    await add_payment(hub.uow, "P-8", paid_at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    await recon.run("fake", DAY, statement([record()]))
    case = await case_of(hub, "P-8", "missing_on_statement")
    body = await resolved(client, people, case.pk, "reask")
    assert body["result"]["state"] == "paid"
    await next_day(recon, statement([record(day="2026-12-02")]))
    after = await case_of(hub, "P-8", "missing_on_statement")
    assert (after.state, after.resolution) == ("open", None)


async def _chain_all(hub: Hub) -> None:
    while await chain_pending(hub.uow, full_sweep=True, clock=hub.clock):
        pass


async def test_evidence_verify_on_demand_ok_then_broken(
        hub: Hub, recon: ReconciliationService, client: httpx.AsyncClient,
        people: dict[str, dict[str, str]]) -> None:
    r = await recon.run("fake", DAY, statement([record(), line(1, "3.00")]))
    await _chain_all(hub)
    problem(await client.get("/admin/v1/evidence/verify", headers=people["viewer"]),
            403, "forbidden")
    got = await client.get("/admin/v1/evidence/verify", headers=people["audrey"],
                           params={"settle_minutes": 0})
    assert got.status_code == 200, got.text
    report = got.json()
    assert report["ok"] is True and report["broken"] is None and report["unchained"] == 0
    assert report["checked"] >= 2 and report["head"]["seq"] >= 2
    assert "signatures" not in report
    signed = (await client.get("/admin/v1/evidence/verify", headers=people["audrey"],
                               params={"settle_minutes": 0, "signatures": "true"})).json()
    assert signed["ok"] is True and signed["signatures"]["unverifiable"] == 0
    async with hub.engine.begin() as conn:
        await conn.execute(update(recon_runs).where(recon_runs.c.pk == r.pk).values(
            verdict="balanced"))
    broken = (await client.get("/admin/v1/evidence/verify", headers=people["audrey"],
                               params={"settle_minutes": 0})).json()
    assert broken["ok"] is False and f"recon_runs pk {r.pk}" in broken["broken"]
    problem(await client.get("/admin/v1/evidence/verify", headers=people["audrey"],
                             params={"settle_minutes": -1}), 422, "schema_violation")
    records = [(x.actor, x.action, x.outcome) for x in await trail(hub)
               if x.action == "evidence.verify"]
    assert records == [("vera", "evidence.verify", "denied"),
                       ("audrey", "evidence.verify", "ok"), ("audrey", "evidence.verify", "ok"),
                       ("audrey", "evidence.verify", "ok"),
                       ("audrey", "evidence.verify", "invalid")]
