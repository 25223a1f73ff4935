"""``gateway demo``: the whole hub on loopback, a scripted scenario, a summary, exit 0 only if
every invariant held.

Everything runs on 127.0.0.1 in one process, in a temporary folder (``--keep`` keeps it):

- the hub on its embedded default: SQLite, with a dispatcher and the housekeeping jobs inside
  ``serve`` (so pension periods are created by the schedule, not by the script);
- the five partner simulators, each speaking its own wire format and signing with its own key:
  the four push partners serve their endpoints (the demo writes its own registry pointing at
  them), MM-SSB pulls its inbox and acknowledges with ``receipt.ack``;
- both rail simulators (Merchantrade e-wallet, ISO 20022 bank) with faults injected: timeouts,
  5xx before and after acting, resets, throttling, lost and duplicated callbacks; and partner
  faults: a 503, a dropped connection, a 500 after taking the message (re-delivered, then
  de-duplicated by id).

The scenario: each partner sends two claims (``claim.notify``); the hub answers ``claim.status
received``; the back office (its HTTP API and token) requests documents from three partners,
which reply with ``document.deliver``; it approves nine claims and rejects one, and instructs a
payment for each approved claim over the rail that suits the claimant's payout; the partners
get ``payment.notice`` and ``claim.status paid``. Then a pension for PK-MOPHRD's beneficiary
starts two months back while the bank rail is throttling; the schedule creates three periods;
the partner notifies the death (last month), which stops the schedule and cancels the unsent
payment for the period after the death; the rail recovers and pays the others.

Invariants (exit 0 only if all hold): every claim was received and acknowledged; every hub
message was delivered with a stored, verifying signed receipt (push) or acknowledged (pull);
each partner simulator got each of its messages, none missing or extra, each taken once by id;
every payment is paid exactly once by its rail's ledger and in the gateway (the cancelled one
never); no payment for a period after the death; tracking shows each partner its payments; the
evidence chain verifies (chain, then verify, as ``gateway audit chain``/``verify``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

__all__ = ["run_demo"]

PARTNERS = ["ID-BPJSTK", "MM-SSB", "NP-FEB", "PK-MOPHRD", "BD-WEWB"]
SHORT = {"ID-BPJSTK": "ID", "MM-SSB": "MM", "NP-FEB": "NP", "PK-MOPHRD": "PK", "BD-WEWB": "BD"}
RAIL_FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("timeout", {"seconds": 1.0}), ("error_after", {"status": 500}),
    ("error_before", {"status": 503}), ("reset_after", {}), ("throttle", {"status": 429}),
    ("lost_callback", {}), ("duplicate_callback", {})]
PARTNER_FAULTS = {"NP-FEB": "error_5xx", "PK-MOPHRD": "reset", "BD-WEWB": "error_after"}
DOCUMENT_REQUESTS = ["NP-FEB", "MM-SSB", "PK-MOPHRD"]  # first claim of each
REJECTED = "DEMO-BD-2"
AMOUNTS = {"EI_TEMPORARY_DISABLEMENT": "1250.00", "EI_PERMANENT_DISABLEMENT": "8400.00",
           "EI_DEPENDANTS": "5600.00", "INV_PENSION": "3100.00"}
PENSION = "PEN-PK-0001"
TIME_BUDGET = 55.0  # seconds for the whole scenario (the issue asks for under a minute)


class Progress:
    """One live line per phase (on a terminal), then a closing line per phase on stdout."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.live = sys.stderr.isatty()
        self.label = ""

    def begin(self, label: str) -> None:
        self.label = label
        self.update("")

    def update(self, text: str) -> None:
        if self.live:
            sys.stderr.write(f"\r\x1b[K  … {self.label:<34} {text}")
            sys.stderr.flush()

    def end(self, ok: bool, text: str) -> None:
        if self.live:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
        mark = "ok" if ok else "!!"
        print(f"  [{mark}] {self.label:<34} {text:<48} {time.monotonic() - self.started:5.1f}s",
              flush=True)


@dataclass
class Scenario:
    folder: Path
    started: float
    progress: Progress
    problems: list[str] = field(default_factory=list)
    sims: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)  # ref -> facts
    expected: dict[str, str] = field(default_factory=dict)  # payment id -> final state

    def remaining(self) -> float:
        return max(0.5, self.started + TIME_BUDGET - time.monotonic())

    async def wait(self, what: str, check: Callable[[], Awaitable[tuple[int, int]]],
                   timeout: float = 20.0, every: float = 0.2) -> bool:
        """Poll ``check`` (done, total) until done == total; a problem if it times out."""
        deadline = time.monotonic() + min(timeout, self.remaining())
        done, total = 0, 0
        while True:
            done, total = await check()
            self.progress.update(_bar(done, total))
            if done >= total:
                return True
            if time.monotonic() > deadline:
                self.problems.append(f"{what}: only {done} of {total} after waiting")
                return False
            await asyncio.sleep(every)


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = int(width * done / max(total, 1))
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def run_demo(keep: Path | None = None) -> int:
    """Run the scenario; return the process exit code (0: every invariant held)."""
    folder = keep or Path(tempfile.mkdtemp(prefix="px-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(_demo(folder))
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)


async def _demo(folder: Path) -> int:
    import dataclasses

    from adapters.rails._sim import Faults, ThreadedServer
    from gateway.app import create_app
    from gateway.backoffice.auth import write_dev_tokens
    from gateway.config import Settings
    from gateway.protocol.envelope import HUB_PARTY
    from gateway.protocol.keys import load_signer, write_private_key
    from gateway.protocol.signing import KeyRing
    from gateway.runtime.bootstrap import (
        DEV_PARTNERS,
        dev_key_path,
        prepare_instance,
        write_dev_registry,
    )
    from gateway.sandbox.rails import free_port, start_rail_sims, write_rails_file
    from gateway.sandbox.simulators import PARTNER_SIMULATORS
    from gateway.storage.migrate import upgrade

    started = time.monotonic()
    sc = Scenario(folder, started, Progress(started))
    # A partner simulator's injected "reset" drops the connection without answering, which
    # uvicorn reports as an error; that one line is the fault working, not a failure.
    logging.getLogger("uvicorn.error").addFilter(
        lambda record: "without starting response" not in record.getMessage())
    print("PX gateway demo: the hub (SQLite, embedded dispatcher), 5 partner and 2 rail "
          "simulators on loopback")
    sc.progress.begin("start hub and simulators")
    hub_port = free_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    rail_faults = {"merchantrade": Faults(seed=5), "iso20022": Faults(seed=6)}
    for f in rail_faults.values():
        for fault, options in RAIL_FAULTS:
            f.add(fault, rate=0.25, count=1, **options)
    rails = start_rail_sims(list(rail_faults), hub_url=hub_url, tick_seconds=0.3,
                            faults=rail_faults)
    ports = {p.id: free_port() for p in DEV_PARTNERS if p.mode == "push"}
    partners = tuple(dataclasses.replace(p, port=ports[p.id]) if p.id in ports else p
                     for p in DEV_PARTNERS)
    write_private_key(folder / "hub.jwk.json", "MY-PERKESO-demo-1", "EdDSA")
    write_dev_registry(folder / "partners.toml", partners)
    settings = Settings(
        database_url=f"sqlite:///{folder / 'gateway.db'}", partners_file=folder / "partners.toml",
        signing_key_file=folder / "hub.jwk.json",
        backoffice_tokens_file=folder / "backoffice.toml",
        rails_file=write_rails_file(folder / "rails.toml", rails.urls(), read_timeout=0.5,
                                    poll_after=0.5, poll_max=1.0, batch_size=20),
        dispatch_in_serve=True, log_level="WARNING",
        # A demo cannot sit out the production breaker cooldown (30 s) after a burst of
        # injected faults, and it wants its pension periods within a second.
        breaker_cooldown_seconds=1.0, pension_run_every_seconds=0.5)
    token, _ = write_dev_tokens(settings.backoffice_tokens_file)
    prepare_instance(settings)
    await upgrade(settings.database_url)
    hub_ring = KeyRing()
    hub_ring.add_keyset(HUB_PARTY, load_signer(settings.signing_key_file, HUB_PARTY).jwks())
    servers: list[Any] = []
    poller: asyncio.Task[None] | None = None
    code = 1
    try:
        servers.append(ThreadedServer(create_app(settings), port=hub_port).start())
        for p in partners:
            signer = load_signer(dev_key_path(settings.partners_file, p.id), p.id)
            sim = PARTNER_SIMULATORS[p.adapter](p.id, signer, hub_url=hub_url,
                                                 hub_keys=hub_ring)
            sc.sims[p.id] = sim
            if p.mode == "push":
                servers.append(ThreadedServer(sim.app, port=ports[p.id]).start())
        for partner_id, fault in PARTNER_FAULTS.items():
            sc.sims[partner_id].faults.set(fault, 1)
        async with httpx.AsyncClient(timeout=10) as http, httpx.AsyncClient(
                base_url=hub_url, timeout=10,
                headers={"Authorization": f"Bearer {token}"}) as api:
            poller = asyncio.create_task(sc.sims["MM-SSB"].poll_forever(http, 0.3))
            listening = ", ".join(f":{port}" for port in ports.values())
            sc.progress.end(True, f"hub :{hub_port}, partners {listening} + MM-SSB pulling")
            await _scenario(sc, http, api, hub_url, rails, rail_faults)
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        poller = None
        for server in reversed(servers):
            server.stop()
        servers.clear()
        await _final_checks(sc, settings, rails)
        _summary(sc, rails, rail_faults)
    finally:
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        for server in reversed(servers):
            server.stop()
        rails.stop()
    elapsed = time.monotonic() - started
    if sc.problems:
        print(f"\nFAILED after {elapsed:.1f}s:")
        for line in sc.problems:
            print(f"  - {line}")
        return code
    print(f"\nAll invariants held ({elapsed:.1f}s).")
    return 0


# -- the scenario ----------------------------------------------------------------------------------

async def _scenario(sc: Scenario, http: httpx.AsyncClient, api: httpx.AsyncClient,
                    hub_url: str, rails: Any, rail_faults: dict[str, Any]) -> None:
    sims = sc.sims
    # 1. Claims from every partner, in its own wire format, signed with its key.
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
        sc.progress.update(_bar(len(sc.claims), 2 * len(PARTNERS)))
    sc.progress.end(not sc.problems, f"{len(sc.claims)} claims, each with a signed receipt")

    # 2. The hub acknowledges each claim: claim.status received (pushed, or pulled by MM-SSB).
    sc.progress.begin("claim.status received")

    async def acknowledged() -> tuple[int, int]:
        n = 0
        for ref, c in sc.claims.items():
            st = _got(sims[c["partner"]], "claim.status", ref, status="received")
            if st:
                c["socso_claim_no"] = st[0]["payload"]["socso_claim_no"]
                n += 1
        return n, len(sc.claims)
    ok = await sc.wait("claim.status received", acknowledged)
    sc.progress.end(ok, "every partner has its SOCSO claim numbers")

    # 3. The back office asks three partners for documents; they deliver them.
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
        _check(sc, r, f"document.request {ref}")
    answered: set[str] = set()

    async def delivered() -> tuple[int, int]:
        for ref, request_id in requests.items():
            partner_id = sc.claims[ref]["partner"]
            if ref in answered or not _got(sims[partner_id], "document.request", ref):
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

    # 4. Decisions: nine approved, one rejected.
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
        _check(sc, r, f"claim.status {status} {ref}")
    sc.progress.end(True, f"{len(sc.claims) - 1} approved, 1 rejected ({REJECTED})")

    # 5. Payments for the approved claims, over the rail that suits the payout; faults injected.
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
        _check(sc, r, f"payment {pid}")
    ok = await sc.wait("payouts", lambda: _settled(api, sc.expected), timeout=30)
    sc.progress.end(ok, f"{len(sc.expected)} paid despite "
                    f"{sum(sum(f.fired.values()) for f in rail_faults.values())} injected faults")

    # 6. Each partner learns of its payments: payment.notice and claim.status paid.
    sc.progress.begin("payment.notice + claim.status paid")

    async def notified() -> tuple[int, int]:
        n = 0
        for ref, c in sc.claims.items():
            if c["payment"] and _got(sims[c["partner"]], "payment.notice", ref) and \
                    _got(sims[c["partner"]], "claim.status", ref, status="paid"):
                n += 1
        return n, len(sc.expected)
    ok = await sc.wait("payment notices", notified)
    sc.progress.end(ok, "every approved claim's partner was told it is paid")

    # 7. A pension, started two months back, while the bank rail is throttling (429).
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
    _check(sc, r, "pension schedule")
    pension_ids = [f"{PENSION}.{d:%Y%m}" for d in periods]

    async def scheduled() -> tuple[int, int]:
        r = await api.get("/v1/backoffice/payments", params={"pension_ref": PENSION})
        return len(r.json()["payments"]), len(pension_ids)
    ok = await sc.wait("pension periods", scheduled, timeout=10)
    sc.progress.end(ok, f"the schedule created {', '.join(d.strftime('%Y-%m') for d in periods)}")

    # 8. The partner notifies the death (last month): the schedule stops, the unsent payment
    #    for this month is cancelled; the rail recovers and pays the earlier periods.
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
        states = await _states(api, pension_ref=PENSION)
        return int(s["state"] == "stopped") + int(states.get(pension_ids[2]) == "cancelled"), 2
    ok = await sc.wait("pension stopped", stopped, timeout=10)
    outage.count = 0  # the rail recovers
    sc.expected.update({pension_ids[0]: "paid", pension_ids[1]: "paid",
                        pension_ids[2]: "cancelled"})
    ok = await sc.wait("pension payments", lambda: _settled(api, sc.expected), timeout=25) and ok
    r = await api.post("/v1/backoffice/pensions/run",
                       json={"today": (today + timedelta(days=92)).isoformat()})
    if r.status_code != 200 or r.json().get("created") != 0:
        sc.problems.append(f"a pension period was created after the death: {r.text}")
    sc.died_on = died_on  # type: ignore[attr-defined]
    sc.pension_ids = pension_ids  # type: ignore[attr-defined]
    sc.progress.end(ok, f"died {died_on}: {pension_ids[2][-6:]} cancelled, earlier paid")

    # 9. Every hub message delivered or acknowledged; tracking shows each partner its payments.
    sc.progress.begin("deliveries and tracking")
    threads = [(c["partner"], ref) for ref, c in sc.claims.items()] + [("PK-MOPHRD", PENSION)]

    async def settled_threads() -> tuple[int, int]:
        n = 0
        for partner_id, ref in threads:
            thread = await _track(http, hub_url, sims[partner_id], ref)
            out = [m for m in thread.get("messages", []) if m["direction"] == "out"]
            if out and all(m["state"] in ("delivered", "acknowledged") for m in out):
                n += 1
        return n, len(threads)
    ok = await sc.wait("deliveries", settled_threads, timeout=20, every=0.3)
    for partner_id, ref in threads:
        thread = await _track(http, hub_url, sims[partner_id], ref)
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
    other = await _track(http, hub_url, sims["BD-WEWB"], "DEMO-ID-1")
    if other.get("code") != "not_found":
        sc.problems.append("BD-WEWB could see ID-BPJSTK's thread DEMO-ID-1")
    sc.progress.end(ok, f"{len(threads)} threads settled; tracking shows each its payments")


# -- checks after the hub has stopped --------------------------------------------------------------

async def _final_checks(sc: Scenario, settings: Any, rails: Any) -> None:
    from sqlalchemy import select

    from gateway.composition import partner_adapters
    from gateway.evidence.chain import chain_pending, verify_chain
    from gateway.protocol.partners import load_registry
    from gateway.protocol.signing import verify_detached
    from gateway.storage.engine import create_engine
    from gateway.storage.tables import (
        claim_documents,
        claims,
        delivery_receipts,
        message_state,
        messages,
        payments,
    )
    from gateway.storage.uow import factory_for

    sc.progress.begin("invariants and evidence chain")
    registry = load_registry(settings.partners_file, frozenset(partner_adapters()))
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            stored = {(r.partner_id, r.claim_ref): r for r in (await conn.execute(
                select(claims))).all()}
            docs = {(r.partner_id, r.claim_ref) for r in (await conn.execute(
                select(claim_documents))).all()}
            out = (await conn.execute(
                select(messages.c.pk, messages.c.message_id, messages.c.partner_id,
                       messages.c.type, messages.c.correlation_id, messages.c.wire,
                       message_state.c.state)
                .join(message_state, message_state.c.message_pk == messages.c.pk)
                .where(messages.c.direction == "out").order_by(messages.c.pk))).all()
            inbound = (await conn.execute(
                select(messages.c.pk, messages.c.partner_id, messages.c.type,
                       messages.c.correlation_id)
                .where(messages.c.direction == "in").order_by(messages.c.pk))).all()
            receipts = {r.message_pk: r for r in (await conn.execute(
                select(delivery_receipts))).all()}
            rows = list((await conn.execute(select(payments).order_by(payments.c.pk))).all())
        for ref, c in sc.claims.items():
            if (c["partner"], ref) not in stored:
                sc.problems.append(f"claim {ref} of {c['partner']} was not recorded")
            if c["documents"] and (c["partner"], ref) not in docs:
                sc.problems.append(f"documents for {ref} were not recorded")
        sent: dict[str, set[str]] = {p: set() for p in PARTNERS}
        for m in out:
            sent[m.partner_id].add(m.message_id)
            push = registry.get(m.partner_id).mode == "push"  # type: ignore[union-attr]
            if m.state != ("delivered" if push else "acknowledged"):
                sc.problems.append(f"{m.type} {m.message_id} to {m.partner_id} is {m.state}")
            if push:
                proof = receipts.get(m.pk)
                if proof is None:
                    sc.problems.append(f"no delivery receipt for {m.message_id}")
                    continue
                signed = verify_detached(proof.body, proof.signature, registry.keys)
                receipt = sc.sims[m.partner_id].adapter.parse_receipt(proof.body)
                if signed.party != m.partner_id or receipt["message_id"] != m.message_id or \
                        receipt["body_sha256"] != hashlib.sha256(m.wire).hexdigest():
                    sc.problems.append(f"the delivery receipt of {m.message_id} does not match")
        for partner_id, ids in sent.items():
            got = set(sc.sims[partner_id].received)
            if got != ids:
                sc.problems.append(f"{partner_id} got {len(got)} distinct messages, the hub "
                                   f"sent {len(ids)} (missing {len(ids - got)}, extra "
                                   f"{len(got - ids)})")
        ledger = rails.ledger()
        for p in rows:
            want = sc.expected.get(p.payment_id)
            if p.state != want:
                sc.problems.append(f"payment {p.payment_id} is {p.state}, expected {want}")
            times = ledger.get(p.idempotency_key, 0)
            if times != (1 if p.state == "paid" else 0):
                sc.problems.append(f"payment {p.payment_id}: the rail paid it {times} time(s), "
                                   f"the gateway says {p.state}")
            died = getattr(sc, "died_on", None)
            if died and p.pension_ref == PENSION and p.period > f"{died:%Y-%m}" and \
                    p.state not in ("cancelled", "failed"):
                sc.problems.append(f"payment {p.payment_id} is for a period after the death")
        while await chain_pending(factory_for(engine), full_sweep=True):
            pass
        report = await verify_chain(factory_for(engine), settle=timedelta(0))
        if report.broken or report.unchained:
            sc.problems.append(f"evidence chain: broken={report.broken} "
                               f"unchained={report.unchained}")
        sc.out_messages = out  # type: ignore[attr-defined]
        sc.in_messages = inbound  # type: ignore[attr-defined]
        sc.payment_rows = rows  # type: ignore[attr-defined]
        sc.chain = report  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
    head = sc.chain.head  # type: ignore[attr-defined]
    sc.progress.end(not sc.problems, f"chain verified: {sc.chain.checked} records, head "  # type: ignore[attr-defined]
                    f"{head.chain_sha256[:12] if head else '-'}")


# -- summary ---------------------------------------------------------------------------------------

def _summary(sc: Scenario, rails: Any, rail_faults: dict[str, Any]) -> None:
    rows = getattr(sc, "payment_rows", [])
    by_claim = {p.claim_ref: p for p in rows if p.claim_ref}
    print("\nClaims")
    print(f"  {'claim':<12} {'partner':<10} {'wire':<10} {'SOCSO no':<20} {'docs':<5} "
          f"{'payment':<16} statuses seen by the partner")
    for ref, c in sc.claims.items():
        p = by_claim.get(ref)
        print(f"  {ref:<12} {c['partner']:<10} {c['wire']:<10} "
              f"{c.get('socso_claim_no', '-'):<20} {c['documents'] or '-'!s:<5} "
              f"{(p.state if p else '-'):<16} {' > '.join(c['statuses'])}")
    print("\nMessages (hub <-> partners)")
    print(f"  {'partner':<10} {'dir':<4} {'type':<24} {'thread':<14} state")
    both = [(m.pk, "in", m, "received") for m in getattr(sc, "in_messages", [])]
    both += [(m.pk, "out", m, m.state) for m in getattr(sc, "out_messages", [])]
    for _pk, direction, m, state in sorted(both, key=lambda t: t[0]):
        print(f"  {m.partner_id:<10} {direction:<4} {m.type:<24} "
              f"{m.correlation_id or '-':<14} {state}")
    deliveries = {pid: (len(s.deliveries), len(s.received)) for pid, s in sc.sims.items()}
    print("  partner simulators (deliveries incl. re-deliveries / distinct ids taken): " +
          ", ".join(f"{pid} {d}/{u}" for pid, (d, u) in deliveries.items()))
    print("\nPayments")
    print(f"  {'payment':<20} {'partner':<10} {'rail':<12} {'amount':>12}  {'state':<10} "
          f"{'rail paid':<9} note")
    ledger = rails.ledger()
    for p in rows:
        amount = f"{p.amount_minor // 100}.{p.amount_minor % 100:02d} {p.currency}"
        print(f"  {p.payment_id:<20} {p.partner_id:<10} {p.rail:<12} {amount:>12}  "
              f"{p.state:<10} {ledger.get(p.idempotency_key, 0):<9} "
              f"{(p.reason or '')[:60]}")
    fired = {name: dict(sorted((str(k), v) for k, v in f.fired.items()))
             for name, f in rail_faults.items()}
    print(f"\nRail faults fired: {fired}")
    print("Partner faults: " + ", ".join(f"{p} {f}" for p, f in PARTNER_FAULTS.items()))


# -- helpers ---------------------------------------------------------------------------------------

def _got(sim: Any, type_: str, ref: str, **payload: str) -> list[dict[str, Any]]:
    """The messages of ``type_`` on thread ``ref`` that the partner simulator received."""
    return [m for m in list(sim.received.values())
            if m["type"] == type_ and m.get("correlation_id") == ref
            and all(m["payload"].get(k) == v for k, v in payload.items())]


def _check(sc: Scenario, r: httpx.Response, what: str) -> None:
    if r.status_code >= 300:
        sc.problems.append(f"{what}: HTTP {r.status_code} {r.text[:200]}")


async def _states(api: httpx.AsyncClient, **query: str) -> dict[str, str]:
    r = await api.get("/v1/backoffice/payments", params={"limit": 500, **query})
    return {p["payment_id"]: p["state"] for p in r.json()["payments"]}


async def _settled(api: httpx.AsyncClient, expected: dict[str, str]) -> tuple[int, int]:
    states = await _states(api)
    return sum(1 for pid, want in expected.items() if states.get(pid) == want), len(expected)


async def _track(http: httpx.AsyncClient, hub_url: str, sim: Any, ref: str) -> dict[str, Any]:
    from gateway.protocol.envelope import HUB_PARTY

    token = sim.signer.token(HUB_PARTY, ttl=60, now=time.time())
    r = await http.get(f"{hub_url}/v1/tracking/{ref}", headers={
        "Authorization": f"Bearer {token}", "X-Request-Id": str(uuid.uuid4())})
    data: dict[str, Any] = r.json()
    return data
