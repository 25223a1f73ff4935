"""The demo's scenario, step by step: each step drives the hub over HTTP as a partner or the
back office would, and waits (bounded) until the hub has done what the step expects."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from gateway.sandbox.demo.scenario import (
    AMOUNTS,
    DOCUMENT_REQUESTS,
    PARTNERS,
    PENSION,
    REJECTED,
    SHORT,
    Scenario,
    bar,
    check,
    got,
    payment_states,
    settled,
    track,
)

__all__ = ["STEPS", "Run", "play"]


@dataclass(frozen=True, slots=True)
class Run:
    """What every step drives: the scenario's record, the clients and the simulators."""

    sc: Scenario
    http: httpx.AsyncClient  # as the partners (their own signed requests)
    api: httpx.AsyncClient  # as the back office (base URL of the hub, with its token)
    hub_url: str
    rails: Any  # gateway.sandbox.rails.RailSims
    rail_faults: dict[str, Any]


async def send_claims(run: Run) -> None:
    """Claims from every partner, in its own wire format, signed with its key."""
    sc = run.sc
    sims = sc.sims
    http = run.http
    sc.progress.begin("claims (claim.notify)")
    for partner_id in PARTNERS:
        sim = sims[partner_id]
        envs = [sim.claim(f"DEMO-{SHORT[partner_id]}-{i}") for i in (1, 2)]
        result = (await sim.send_batch(http, envs) if sim.adapter.batch else None)
        receipts = list(result.receipts) if result else []
        if result is None:
            for env in envs:
                r = await sim.send(http, env)
                receipts += r.receipts
                if r.status_code != 202:
                    sc.problems.append(f"{env['correlation_id']}: HTTP {r.status_code} "
                                       f"{r.results}")
        accepted = {r["message_id"] for r in receipts if r["status"] == "accepted"}
        for env in envs:
            payload = env["payload"]
            sc.claims[env["correlation_id"]] = {
                "partner": partner_id, "wire": sim.adapter.name, "message_id": env["id"],
                "receipt": env["id"] in accepted, "payout": payload["payout"],
                "benefit": payload["benefit"], "name": payload["claimant"]["name"],
                "statuses": [], "documents": 0, "payment": None}
            if env["id"] not in accepted:
                sc.problems.append(f"{env['correlation_id']}: no signed 'accepted' receipt")
        sc.progress.update(bar(len(sc.claims), 2 * len(PARTNERS)))
    sc.progress.end(not sc.problems, f"{len(sc.claims)} claims, each with a signed receipt")


async def claims_acknowledged(run: Run) -> None:
    """The hub acknowledges each claim: claim.status received (pushed, or pulled by MM-SSB)."""
    sc = run.sc
    sims = sc.sims
    sc.progress.begin("claim.status received")

    async def acknowledged() -> tuple[int, int]:
        n = 0
        for ref, c in sc.claims.items():
            st = got(sims[c["partner"]], "claim.status", ref, status="received")
            if st:
                c["socso_claim_no"] = st[0]["payload"]["socso_claim_no"]
                n += 1
        return n, len(sc.claims)
    ok = await sc.wait("claim.status received", acknowledged)
    sc.progress.end(ok, "every partner has its SOCSO claim numbers")


async def documents(run: Run) -> None:
    """The back office asks three partners for documents; they deliver them."""
    sc = run.sc
    sims = sc.sims
    http = run.http
    api = run.api
    sc.progress.begin("document.request / deliver")
    requests = {}
    for partner_id in DOCUMENT_REQUESTS:
        ref = f"DEMO-{SHORT[partner_id]}-1"
        request_id = f"REQ-{ref}"
        requests[ref] = request_id
        r = await api.post("/v1/backoffice/messages", json={
            "partner_id": partner_id, "type": "document.request", "correlation_id": ref,
            "payload": {"claim_ref": ref, "request_id": request_id,
                        "due_on": (date.today() + timedelta(days=14)).isoformat(),
                        "documents": [{"kind": "medical_report",
                                       "note": "Full medical report of the incident"}]}})
        check(sc, r, f"document.request {ref}")
    answered: set[str] = set()

    async def delivered() -> tuple[int, int]:
        for ref, request_id in requests.items():
            partner_id = sc.claims[ref]["partner"]
            if ref in answered or not got(sims[partner_id], "document.request", ref):
                continue
            answered.add(ref)
            content = f"Medical report for {ref}".encode()
            sim = sims[partner_id]
            result = await sim.send(http, sim.envelope("document.deliver", {
                "claim_ref": ref, "request_id": request_id, "documents": [{
                    "kind": "medical_report", "sha256": hashlib.sha256(content).hexdigest(),
                    "filename": f"{ref}-medical.pdf", "media_type": "application/pdf",
                    "content_b64": base64.b64encode(content).decode()}]},
                correlation_id=ref))
            if result.status_code not in (200, 202) or not result.receipts:
                sc.problems.append(f"document.deliver {ref}: HTTP {result.status_code}")
            sc.claims[ref]["documents"] = 1
        return len(answered), len(requests)
    ok = await sc.wait("document.deliver", delivered)
    sc.progress.end(ok, f"{len(requests)} requested (NP-FEB, MM-SSB, PK-MOPHRD), all delivered")


async def decisions(run: Run) -> None:
    """Decisions: nine approved, one rejected."""
    sc = run.sc
    api = run.api
    sc.progress.begin("decisions (claim.status)")
    for ref, c in sc.claims.items():
        status = "rejected" if ref == REJECTED else "approved"
        decision: dict[str, Any] = {"claim_ref": ref, "status": status,
                                    "socso_claim_no": c.get("socso_claim_no", "?")}
        if status == "rejected":
            decision["reason"] = "The incident is not covered: it happened outside employment"
        r = await api.post("/v1/backoffice/messages", json={
            "partner_id": c["partner"], "type": "claim.status", "payload": decision,
            "correlation_id": ref})
        check(sc, r, f"claim.status {status} {ref}")
    sc.progress.end(True, f"{len(sc.claims) - 1} approved, 1 rejected ({REJECTED})")


async def payouts(run: Run) -> None:
    """Payments for the approved claims, over the rail that suits the payout; faults injected."""
    sc = run.sc
    api = run.api
    rail_faults = run.rail_faults
    sc.progress.begin("payouts over both rails")
    for ref, c in sc.claims.items():
        if ref == REJECTED:
            continue
        rail = "merchantrade" if c["payout"]["method"] == "ewallet" else "iso20022"
        pid = f"PAY-{ref}"
        c["payment"] = pid
        sc.expected[pid] = "paid"
        r = await api.post("/v1/backoffice/payments", json={
            "payment_id": pid, "partner_id": c["partner"], "beneficiary": {"name": c["name"]},
            "benefit": c["benefit"], "claim_ref": ref, "socso_claim_no": c.get("socso_claim_no"),
            "amount": {"amount": AMOUNTS.get(c["benefit"], "1000.00"), "currency": "MYR"},
            "rail": rail, "payout": {k: c["payout"][k] for k in ("provider", "account",
                                                                   "account_name")}})
        check(sc, r, f"payment {pid}")
    ok = await sc.wait("payouts", lambda: settled(api, sc.expected), timeout=30)
    sc.progress.end(ok, f"{len(sc.expected)} paid despite "
                    f"{sum(sum(f.fired.values()) for f in rail_faults.values())} injected faults")


async def payment_notices(run: Run) -> None:
    """Each partner learns of its payments: payment.notice and claim.status paid."""
    sc = run.sc
    sims = sc.sims
    sc.progress.begin("payment.notice + claim.status paid")

    async def notified() -> tuple[int, int]:
        n = 0
        for ref, c in sc.claims.items():
            if c["payment"] and got(sims[c["partner"]], "payment.notice", ref) and \
                    got(sims[c["partner"]], "claim.status", ref, status="paid"):
                n += 1
        return n, len(sc.expected)
    ok = await sc.wait("payment notices", notified)
    sc.progress.end(ok, "every approved claim's partner was told it is paid")


async def pension_stopped_by_death(run: Run) -> None:
    """A pension started two months back while the bank rail throttles (429); the partner
    notifies the death (last month): the schedule stops, the unsent period is cancelled, the
    rail recovers and pays the earlier periods."""
    sc = run.sc
    sims = sc.sims
    http = run.http
    api = run.api
    rail_faults = run.rail_faults
    sc.progress.begin("pension on schedule (rail throttled)")
    today = datetime.now(UTC).date()
    this_month = today.replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    start = (last_month - timedelta(days=1)).replace(day=1)
    periods = [start, last_month, this_month]
    outage = rail_faults["iso20022"].add("throttle", status=429, retry_after=1)
    pk = sc.claims["DEMO-PK-1"]
    r = await api.post("/v1/backoffice/pensions", json={
        "pension_ref": PENSION, "partner_id": "PK-MOPHRD",
        "beneficiary": {"name": pk["name"],
                        "national_id": {"scheme": "PK-CNIC", "value": "3520212345671"}},
        "benefit": "INV_PENSION", "monthly_amount": {"amount": "950.00", "currency": "MYR"},
        "start_on": start.isoformat(), "rail": "iso20022",
        "payout": {k: pk["payout"][k] for k in ("provider", "account", "account_name")}})
    check(sc, r, "pension schedule")
    pension_ids = [f"{PENSION}.{d:%Y%m}" for d in periods]

    async def scheduled() -> tuple[int, int]:
        r = await api.get("/v1/backoffice/payments", params={"pension_ref": PENSION})
        return len(r.json()["payments"]), len(pension_ids)
    ok = await sc.wait("pension periods", scheduled, timeout=10)
    sc.progress.end(ok, f"the schedule created {', '.join(d.strftime('%Y-%m') for d in periods)}")

    sc.progress.begin("death.notify stops the pension")
    died_on = last_month + timedelta(days=14)
    sim = sims["PK-MOPHRD"]
    result = await sim.send(http, sim.envelope("death.notify", {
        "pension_ref": PENSION, "person": {"name": pk["name"], "national_id": {
            "scheme": "PK-CNIC", "value": "3520212345671"}},
        "died_on": died_on.isoformat(), "documents": []}, correlation_id=PENSION))
    if result.status_code != 202:
        sc.problems.append(f"death.notify: HTTP {result.status_code} {result.results}")

    async def stopped() -> tuple[int, int]:
        s = (await api.get(f"/v1/backoffice/pensions/{PENSION}")).json()
        states = await payment_states(api, pension_ref=PENSION)
        return int(s["state"] == "stopped") + int(states.get(pension_ids[2]) == "cancelled"), 2
    ok = await sc.wait("pension stopped", stopped, timeout=10)
    outage.count = 0  # the rail recovers
    sc.expected.update({pension_ids[0]: "paid", pension_ids[1]: "paid",
                        pension_ids[2]: "cancelled"})
    ok = await sc.wait("pension payments", lambda: settled(api, sc.expected), timeout=25) and ok
    r = await api.post("/v1/backoffice/pensions/run",
                       json={"today": (today + timedelta(days=92)).isoformat()})
    if r.status_code != 422 or r.json().get("code") != "schema_violation":
        sc.problems.append(f"a pension run for the future was not refused: {r.text}")
    r = await api.post("/v1/backoffice/pensions/run", json={})
    if r.status_code != 200 or r.json().get("created") != 0:
        sc.problems.append(f"a pension period was created after the death: {r.text}")
    sc.died_on = died_on
    sc.pension_ids = pension_ids
    sc.progress.end(ok, f"died {died_on}: {pension_ids[2][-6:]} cancelled, earlier paid")


async def deliveries_and_tracking(run: Run) -> None:
    """Every hub message delivered or acknowledged; tracking shows each partner its payments."""
    sc = run.sc
    sims = sc.sims
    http = run.http
    hub_url = run.hub_url
    sc.progress.begin("deliveries and tracking")
    threads = [(c["partner"], ref) for ref, c in sc.claims.items()] + [("PK-MOPHRD", PENSION)]

    async def settled_threads() -> tuple[int, int]:
        n = 0
        for partner_id, ref in threads:
            thread = await track(http, hub_url, sims[partner_id], ref)
            out = [m for m in thread.get("messages", []) if m["direction"] == "out"]
            if out and all(m["state"] in ("delivered", "acknowledged") for m in out):
                n += 1
        return n, len(threads)
    ok = await sc.wait("deliveries", settled_threads, timeout=20, every=0.3)
    for partner_id, ref in threads:
        thread = await track(http, hub_url, sims[partner_id], ref)
        got = {p["payment_id"]: p["state"] for p in thread.get("payments", [])}
        want = {pid: ("failed" if s == "cancelled" else s) for pid, s in sc.expected.items()
                if pid == f"PAY-{ref}" or pid.startswith(f"{ref}.")}
        if got != want:
            sc.problems.append(f"tracking {ref} for {partner_id}: payments {got}, want {want}")
        if ref in sc.claims:
            sc.claims[ref]["statuses"] = [
                m["payload"]["status"] for m in sorted(
                    sims[partner_id].received.values(), key=lambda m: m["sent_at"])
                if m["type"] == "claim.status" and m["payload"]["claim_ref"] == ref]
    other = await track(http, hub_url, sims["BD-WEWB"], "DEMO-ID-1")
    if other.get("code") != "not_found":
        sc.problems.append("BD-WEWB could see ID-BPJSTK's thread DEMO-ID-1")
    sc.progress.end(ok, f"{len(threads)} threads settled; tracking shows each its payments")


STEPS: tuple[Callable[[Run], Awaitable[None]], ...] = (
    send_claims,
    claims_acknowledged,
    documents,
    decisions,
    payouts,
    payment_notices,
    pension_stopped_by_death,
    deliveries_and_tracking,
)


async def play(run: Run) -> None:
    """Run every step in order (a step that fails records its problem; the next still runs)."""
    for step in STEPS:
        await step(run)
