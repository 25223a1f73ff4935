"""``gateway demo``: the hub on its embedded default (SQLite, dispatcher inside serve) with both
rail simulators on loopback, a scripted payout scenario with injected faults, and a summary.

Scenario: a payment for a claim of every partner, over both rails (Merchantrade e-wallet and
ISO 20022 bank), with timeouts, 5xx, resets, "paid but answered with an error", throttling and
lost/duplicated callbacks injected; a failed and a returned payout; a pension whose beneficiary's
death is notified by the partner (a signed PX/1 ``death.notify``), which stops it. Exit 0 only
if every invariant held: each payment reached its expected state, the rails' ledgers and the
gateway's agree (none paid twice, none lost), and the death stopped every later payment.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

__all__ = ["run_demo"]

PARTNERS = ["ID-BPJSTK", "MM-SSB", "NP-FEB", "PK-MOPHRD", "BD-WEWB"]
FAULTS = [("timeout", {"seconds": 1.0}), ("error_after", {"status": 500}),
          ("error_before", {"status": 503}), ("reset_after", {}), ("throttle", {"status": 429}),
          ("lost_callback", {}), ("duplicate_callback", {})]


def _progress(label: str, done: int, total: int) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r  {label:<28} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()


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
    from adapters.rails._sim import Faults, ThreadedServer
    from gateway.app import create_app
    from gateway.backoffice.auth import write_dev_tokens
    from gateway.bootstrap import dev_key_path, prepare_instance
    from gateway.config import Settings
    from gateway.keys import load_signer
    from gateway.migrate import upgrade
    from gateway.payments.sandbox import free_port, start_rail_sims, write_rails_file

    started = time.monotonic()
    hub_port = free_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    faults = {"merchantrade": Faults(seed=5), "iso20022": Faults(seed=6)}
    for f in faults.values():
        for fault, options in FAULTS:
            # Spread over the run: a burst would rightly open the rail's circuit breaker
            # for its 30 s cooldown, which is correct but makes a slow demo.
            f.add(fault, rate=0.25, count=1, **options)
    print("PX gateway demo: hub on SQLite with both rail simulators on loopback")
    sims = start_rail_sims(list(faults), hub_url=hub_url, tick_seconds=0.3, faults=faults)
    settings = Settings(
        database_url=f"sqlite:///{folder / 'gateway.db'}", partners_file=folder / "partners.toml",
        signing_key_file=folder / "hub.jwk.json",
        backoffice_tokens_file=folder / "backoffice.toml",
        rails_file=write_rails_file(folder / "rails.toml", sims.urls(), read_timeout=0.5,
                                    poll_after=0.5, poll_max=1.0, batch_size=20),
        dispatch_in_serve=True, log_level="WARNING")
    token, _ = write_dev_tokens(settings.backoffice_tokens_file)
    prepare_instance(settings)
    await upgrade(settings.database_url)
    server = ThreadedServer(create_app(settings), port=hub_port).start()
    problems: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=hub_url, timeout=10,
                                     headers={"Authorization": f"Bearer {token}"}) as api:
            expected: dict[str, str] = {}
            # 1. A payment for a claim of every partner, alternating rails.
            n = 0
            for partner in PARTNERS:
                for k, account in enumerate(["6012345%04d", "6019876%04d", "FAIL%04d",
                                             "RET%04d"]):
                    n += 1
                    rail = "merchantrade" if n % 2 else "iso20022"
                    pid = f"DEMO-{partner[:2]}-{k}"
                    acct = account % n
                    expected[pid] = ("failed" if acct.startswith("FAIL") else
                                     "returned|paid" if acct.startswith("RET") else "paid")
                    r = await api.post("/v1/backoffice/payments", json=_payment(
                        pid, partner, rail, acct, claim_ref=f"CLM-{partner}-{k:03d}"))
                    _check(r, problems, pid)
            # 2. A pension, its periods, and the death of its beneficiary.
            r = await api.post("/v1/backoffice/pensions", json={
                "pension_ref": "PEN-ID-0001", "partner_id": "ID-BPJSTK",
                "beneficiary": {"name": "Siti Aminah"}, "benefit": "INV_PENSION",
                "monthly_amount": {"amount": "550.00", "currency": "MYR"},
                "start_on": "2026-08-01", "rail": "iso20022",
                "payout": {"provider": "BANK-BRI", "account": "0101234567",
                           "account_name": "Siti Aminah"}})
            _check(r, problems, "pension")
            r = await api.post("/v1/backoffice/pensions/run", json={"today": "2026-09-15"})
            _check(r, problems, "pension run")
            for period in ("202608", "202609"):
                expected[f"PEN-ID-0001.{period}"] = "paid"
            total = len(expected)
            deadline = time.monotonic() + 40
            print(f"  {total} payments instructed; dispatching with faults injected ...")
            shown = -1
            while time.monotonic() < deadline:
                states = await _states(api)
                done = sum(1 for pid, want in expected.items()
                           if states.get(pid) in want.split("|"))
                if done != shown:
                    _progress("payouts settled", done, total)
                    shown = done
                if done == total:
                    break
                await asyncio.sleep(0.3)
            sys.stderr.write("\n")
            # The partner notifies the death (a signed PX/1 message): later periods stop.
            signer = load_signer(dev_key_path(settings.partners_file, "ID-BPJSTK"), "ID-BPJSTK")
            body = orjson.dumps({
                "id": str(uuid.uuid4()), "type": "death.notify", "version": 1,
                "sender": "ID-BPJSTK", "recipient": "MY-PERKESO",
                "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                # No correlation id: the intake orders a partner's inbound processing behind
                # hub messages of the same thread, and no partner simulator receives those here.
                "payload": {"pension_ref": "PEN-ID-0001",
                            "person": {"name": "Siti Aminah",
                                       "national_id": {"scheme": "ID-NIK",
                                                       "value": "3201145403910002"}},
                            "died_on": "2026-09-20", "documents": []}})
            r = await api.post("/v1/messages", content=body, headers={
                "Content-Type": "application/json", "X-JWS-Signature": signer.sign(body)})
            _check(r, problems, "death.notify")
            for _ in range(50):
                pension = (await api.get("/v1/backoffice/pensions/PEN-ID-0001")).json()
                if pension["state"] == "stopped":
                    break
                await asyncio.sleep(0.2)
            r = await api.post("/v1/backoffice/pensions/run", json={"today": "2026-12-15"})
            if r.json().get("created") != 0:
                problems.append("a pension paid after the death notification")
            if pension["state"] != "stopped":
                problems.append(f"pension not stopped after death.notify: {pension['state']}")
            # Summary and invariants.
            states = await _states(api)
            payments = (await api.get("/v1/backoffice/payments",
                                      params={"limit": 500})).json()["payments"]
        ledger = sims.ledger()
        print("\nPayments")
        print(f"  {'payment':<22} {'partner':<10} {'rail':<12} {'amount':>14}  state"
              f"      events")
        for p in sorted(payments, key=lambda p: p["payment_id"]):
            want = expected.get(p["payment_id"], "?")
            ok = p["state"] in want.split("|")
            if not ok:
                problems.append(f"{p['payment_id']} is {p['state']}, expected {want}")
            paid_here = p["state"] in ("paid", "returned")
            if ledger.get(p["idempotency_key"], 0) != (1 if paid_here else 0):
                problems.append(f"{p['payment_id']}: rail paid it "
                                f"{ledger.get(p['idempotency_key'], 0)} time(s), gateway "
                                f"says {p['state']}")
            amount = f"{p['amount']['amount']} {p['amount']['currency']}"
            print(f"  {p['payment_id']:<22} {p['partner_id'] or '-':<10} {p['rail']:<12} "
                  f"{amount:>14}  {p['state']:<10} {'ok' if ok else 'UNEXPECTED'}")
        if any(v > 1 for v in ledger.values()):
            problems.append("a rail paid a payout twice")
        print(f"\nPension PEN-ID-0001: {pension['state']} ({pension['reason']})")
        fired = {name: {str(k): v for k, v in f.fired.items()} for name, f in faults.items()}
        print(f"Faults injected: {fired}")
        print(f"Rail ledgers: {sum(ledger.values())} payouts paid, "
              f"max {max(ledger.values(), default=0)} per payment")
        del states
    finally:
        server.stop()
        sims.stop()
    elapsed = time.monotonic() - started
    if problems:
        print(f"\nFAILED after {elapsed:.1f}s:")
        for line in problems:
            print(f"  - {line}")
        return 1
    print(f"\nAll invariants held ({elapsed:.1f}s): every payment in its expected state, "
          "paid at most once, ledgers agree, the death stopped the pension.")
    return 0


def _payment(pid: str, partner: str, rail: str, account: str, claim_ref: str) -> dict[str, Any]:
    return {"payment_id": pid, "partner_id": partner, "beneficiary": {"name": "Worker"},
            "benefit": "EI_TEMPORARY_DISABLEMENT", "claim_ref": claim_ref,
            "socso_claim_no": f"S-{claim_ref}", "amount": {"amount": "1250.00", "currency": "MYR"},
            "rail": rail, "payout": {"provider": "MTWALLET", "account": account,
                                     "account_name": "Worker"}}


def _check(r: httpx.Response, problems: list[str], what: str) -> None:
    if r.status_code >= 300:
        problems.append(f"{what}: HTTP {r.status_code} {r.text[:200]}")


async def _states(api: httpx.AsyncClient) -> dict[str, str]:
    r = await api.get("/v1/backoffice/payments", params={"limit": 500})
    return {p["payment_id"]: p["state"] for p in r.json()["payments"]}
