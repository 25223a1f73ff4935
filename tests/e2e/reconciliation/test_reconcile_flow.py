"""Reconciliation end to end, with real processes on loopback (issue 10, "Done when"):

payouts through both rail simulators (merchantrade and iso20022), instructed through the back
office of a ``gateway serve`` process (its embedded dispatcher sends them) and paid; then the
rails return one payout with AC04 and one with AM04 and reverse another, with the callbacks of
those lost (so only the statement tells the hub), and faults are armed on the simulators'
statements of the day: an extra line, a missing line (merchantrade), an amount one minor unit
off on another payout; iso20022's statement of the day before has a closing balance that does
not add up. Then ``gateway scheduler`` runs as a real process (``--every 1``, a lookback of two
days, the rails' ``cutoff = "00:00"``: the scheduler's due dates are today and the lookback's
days whose cut-off in Kuala Lumpur has passed, so today's statement is due at once) until it
has logged a verdict for every due (rail, date). ``gateway reconcile --report-dir`` (a process)
then finds the scheduler's run of each faulted day (same statement, same run: it changes
nothing) and writes its report (the scheduler writes none), which is asserted with the
payments, the cases and the partner's ``payment.notice`` for each return, as sent by the hub and
received by the partner's own simulator. The simulators (both rails', the partner's) run in this
process's threads, driven from here (returns, faults); everything the hub does is in its own
processes. On SQLite and PostgreSQL.

The missing line is ``pending``, not ``missing_on_statement``: the payout was paid today, which
is within the rail's T+1 window (with ``cutoff = "00:00"`` it even counts from tomorrow).
"""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import subprocess
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from adapters.partners.common.simulator import PartnerSimulator
from adapters.rails._statements import CUTOFF
from adapters.simulation import Fault, Faults, LoopbackServer, bind, free_port
from gateway.backoffice.auth import write_dev_tokens
from gateway.clock import utcnow
from gateway.protocol.envelope import HUB_PARTY
from gateway.protocol.keys import load_signer
from gateway.protocol.signing import KeyRing
from gateway.reconciliation.schedule import KL
from gateway.runtime.bootstrap import DEV_PARTNERS, dev_key_path
from gateway.sandbox.rails import RailSims, start_rail_sims, write_rails_file
from gateway.sandbox.simulators import PARTNER_SIMULATORS
from gateway.storage.engine import create_engine
from gateway.storage.migrate import upgrade
from gateway.storage.tables.messages import messages
from tests.support.payments import payment_body
from tests.support.processes import GATEWAY, Server, gateway_env, run_cli

pytestmark = pytest.mark.e2e

RAILS = ("merchantrade", "iso20022")
PARTNER = "ID-BPJSTK"
LOOKBACK = 2


def _partner(instance: Path, hub_url: str) -> tuple[PartnerSimulator, LoopbackServer]:
    """The partner's own simulator on loopback, where the registry says it listens."""
    sock = bind()
    dev = next(p for p in DEV_PARTNERS if p.id == PARTNER)
    registry = instance / "partners.toml"
    old = f'endpoint = "http://127.0.0.1:{dev.port}/'
    assert registry.read_text().count(old) == 1
    registry.write_text(registry.read_text().replace(
        old, f'endpoint = "http://127.0.0.1:{sock.getsockname()[1]}/'))
    ring = KeyRing()
    ring.add_keyset(HUB_PARTY, load_signer(instance / "hub.jwk.json", HUB_PARTY).jwks())
    adapter = dev.adapter
    sim = PARTNER_SIMULATORS[adapter](
        PARTNER, load_signer(dev_key_path(instance / "partners.toml", PARTNER), PARTNER),
        hub_url=hub_url, hub_keys=ring)
    return sim, LoopbackServer(sim.app, sock=sock).start()


def _rails_file(path: Path, sims: RailSims) -> Path:
    """The simulators' rails file, each rail with a cut-off at midnight (today is due)."""
    write_rails_file(path, sims.urls(), poll_after=0.3, poll_max=1.0, batch_size=10)
    text = path.read_text()
    for name in RAILS:
        text = text.replace(f'adapter = "{name}"\n',
                            f'adapter = "{name}"\ncutoff = "00:00"\nsettlement_days = 1\n')
    path.write_text(text)
    return path


def _wait(what: str, check: Any, seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:  # bounded
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def _notices(db_url: str) -> list[dict[str, Any]]:
    """The payloads of the hub's payment.notice messages to the partner."""
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(messages.c.wire, messages.c.canonical).where(
                messages.c.direction == "out", messages.c.type == "payment.notice",
                messages.c.partner_id == PARTNER))).all()
    finally:
        await engine.dispose()
    return [orjson.loads(r.canonical or r.wire)["payload"] for r in rows]


def _scheduler_runs(log: Path) -> Counter[tuple[str, str, str]]:
    found: Counter[tuple[str, str, str]] = Counter()
    for line in log.read_text().splitlines() if log.exists() else []:
        if "reconciliation rail=" in line and "verdict=" in line:
            words = dict(w.split("=", 1) for w in line.split() if "=" in w)
            found[(words["rail"], words["date"], words["verdict"])] += 1
    return found


def test_payouts_faults_scheduler_report_cases_and_returns(instance: Path, db_url: str,
                                                           tmp_path: Path) -> None:
    asyncio.run(upgrade(db_url))
    token, _ = write_dev_tokens(instance / "backoffice.toml")
    hub_port = free_port()
    faults = {name: Faults(seed=3) for name in RAILS}
    sims = start_rail_sims(list(RAILS), hub_url=f"http://127.0.0.1:{hub_port}",
                           tick_seconds=0.15, faults=faults)
    rails = _rails_file(instance / "rails.toml", sims)
    # The simulated rails close their books at 23:30 in Kuala Lumpur (CUTOFF): from then to
    # midnight a payout is booked on tomorrow's statement, which the scheduler does not fetch
    # today. Their clock stops at 23:00 KL, so this test does not depend on the hour it runs.
    closes = datetime.combine(utcnow().astimezone(KL).date(), CUTOFF, KL) - timedelta(minutes=30)
    for sim in sims.sims.values():
        sim.clock = lambda: min(utcnow(), closes)
    partner, partner_server = _partner(instance, f"http://127.0.0.1:{hub_port}")
    env = gateway_env(instance, db_url, GATEWAY_RAILS_FILE=str(rails),
                      GATEWAY_BACKOFFICE_TOKENS_FILE=str(instance / "backoffice.toml"),
                      GATEWAY_LOG_LEVEL="INFO")
    server = None
    scheduler: subprocess.Popen[bytes] | None = None
    api = httpx.Client(base_url=f"http://127.0.0.1:{hub_port}",
                       headers={"Authorization": f"Bearer {token}"}, timeout=10)
    try:
        server = Server(env, instance, port=hub_port)
        today = utcnow().astimezone(KL).date()
        ids = {name: [f"RC-{name[:3].upper()}-{n}" for n in range(7)] for name in RAILS}
        for name in RAILS:
            for n, pid in enumerate(ids[name]):
                body = payment_body(pid, partner_id=PARTNER, rail=name,
                                    claim_ref=f"CLM-RC-{name[:3]}-{n}",
                                    amount={"amount": f"{100 + n}.00", "currency": "MYR"})
                r = api.post("/v1/backoffice/payments", json=body)
                assert r.status_code == 201, r.text
        every = [pid for name in RAILS for pid in ids[name]]

        def all_paid() -> dict[str, dict[str, Any]] | None:
            got = {pid: api.get(f"/v1/backoffice/payments/{pid}").json() for pid in every}
            return got if all(p["state"] == "paid" for p in got.values()) else None

        paid = _wait("every payout paid", all_paid)
        assert today == utcnow().astimezone(KL).date(), "the day changed in Kuala Lumpur"

        # Roles. A merchantrade settlement lists rows by payout reference (the payment id): its
        # first row gets the amount fault and its last row is the one dropped. camt lists the
        # paid entries by the bank's reference, then returns, then reversals: its first entry
        # (the smallest reference) gets the amount fault.
        mt = ids["merchantrade"]
        iso = sorted(ids["iso20022"], key=lambda pid: paid[pid]["rail_reference"])
        roles = {
            "merchantrade": {"mismatch": mt[0], "ac04": mt[1], "am04": mt[2], "reversed": mt[3],
                             "matched": mt[4:6], "missing": mt[6]},
            "iso20022": {"mismatch": iso[0], "ac04": iso[1], "am04": iso[2], "reversed": iso[3],
                         "matched": iso[4:7], "missing": None},
        }
        for name in RAILS:
            sim, role = sims.sims[name], roles[name]
            sim.faults.add(Fault.lost_callback)  # the statement alone tells the hub
            sim.return_payout(role["ac04"], "AC04")
            sim.return_payout(role["am04"], "AM04")
            sim.reverse_payout(role["reversed"])
            path = (f"/v1/settlements/{today}.csv" if name == "merchantrade"
                    else f"/camt053/{today}")
            sim.faults.add(Fault.statement_extra, path=path)
            sim.faults.add(Fault.statement_mismatch, path=path)
            if role["missing"]:
                sim.faults.add(Fault.statement_missing, path=path)
        yesterday = today - timedelta(days=1)
        sims.sims["iso20022"].faults.add(Fault.statement_unbalanced,
                                         path=f"/camt053/{yesterday}")

        # The scheduler, a real process, until it has logged a verdict for every due date.
        log = instance / "scheduler.log"
        due = {(name, (today - timedelta(days=n)).isoformat())
               for name in RAILS for n in range(LOOKBACK + 1)}
        with log.open("wb") as fh:
            scheduler = subprocess.Popen(
                GATEWAY + ["scheduler", "--every", "1", "--lookback-days", str(LOOKBACK),
                           "--give-up-hours", "24"],
                env=env, cwd=instance, stdout=fh, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)

        def all_due_run() -> bool:
            assert scheduler is not None and scheduler.poll() is None, log.read_text()
            return {(r, d) for r, d, _ in _scheduler_runs(log)} >= due

        _wait("a verdict for every due date", all_due_run, seconds=120)
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(timeout=30) == 0, log.read_text()
        text = log.read_text()
        assert "Traceback" not in text, text
        runs = _scheduler_runs(log)
        assert set(runs.values()) == {1}, runs  # each due date run once
        verdicts = {(r, d): v for r, d, v in runs}
        assert verdicts[("merchantrade", today.isoformat())] == "discrepancies", text
        assert verdicts[("iso20022", today.isoformat())] == "discrepancies", text
        assert verdicts[("iso20022", yesterday.isoformat())] == "incomplete", text
        assert verdicts[("merchantrade", yesterday.isoformat())] == "balanced", text

        # The report of each run, written by the operator's command: the same run, found again.
        reports: dict[str, tuple[dict[str, Any], list[dict[str, str]]]] = {}
        for name, day, status in (("merchantrade", today, 1), ("iso20022", today, 1),
                                  ("iso20022", yesterday, 3)):
            out = tmp_path / f"{name}-{day}"
            r = run_cli(["reconcile", "--rail", name, "--date", day.isoformat(),
                         "--report-dir", str(out)], env, instance, timeout=120)
            assert r.returncode == status, (r.stdout, r.stderr)
            summary = json.loads((out / "summary.json").read_text())
            with (out / "items.csv").open(newline="") as f:
                reports[f"{name} {day}"] = (summary, list(csv.DictReader(f)))
        listed = api.get("/v1/backoffice/reconciliation/runs").json()["runs"]
        assert len(listed) == len(due), listed  # `reconcile` found the scheduler's runs

        summary, _ = reports[f"iso20022 {yesterday}"]
        assert summary["verdict"] == "incomplete"
        assert summary["proofs"]["failed"] == 1, summary
        assert "balance" in summary["proofs"]["failures"][0], summary
        assert "does not add up (off by 0.01)" in summary["proofs"]["failures"][0], summary

        for name in RAILS:
            summary, items = reports[f"{name} {today}"]
            role = roles[name]
            assert summary["verdict"] == "discrepancies", summary
            kinds: dict[str, set[str]] = {}
            for row in items:
                kinds.setdefault(row["kind"], set()).add(row["payment_id"])
            assert kinds["matched"] >= set(role["matched"]), items
            assert kinds["amount_mismatch"] == {role["mismatch"]}, items
            assert kinds["returned"] == {role["ac04"], role["am04"]}, items
            assert kinds["reversed"] == {role["reversed"]}, items
            assert kinds["unknown_line"] == {""}, items  # the extra line has no payment
            if role["missing"]:
                assert kinds["pending"] == {role["missing"]}, items
            reason = {row["payment_id"]: row["reason_code"] for row in items
                      if row["kind"] == "returned"}
            assert reason == {role["ac04"]: "AC04", role["am04"]: "AM04"}, items

            state = {pid: api.get(f"/v1/backoffice/payments/{pid}").json()["state"]
                     for pid in ids[name]}
            for pid in role["matched"]:
                assert state[pid] == "reconciled", (pid, state)
            for pid in (role["ac04"], role["am04"], role["reversed"]):
                assert state[pid] == "returned", (pid, state)
            assert state[role["mismatch"]] == "paid", state
            if role["missing"]:
                assert state[role["missing"]] == "paid", state

            cases = api.get("/v1/backoffice/reconciliation/cases",
                            params={"rail": name, "limit": 500}).json()["cases"]
            by_kind: dict[str, list[dict[str, Any]]] = {}
            for case in cases:
                assert case["state"] == "open"
                by_kind.setdefault(case["kind"], []).append(case)
            assert {c["payment_id"] for c in by_kind["returned"]} == {role["ac04"], role["am04"]}
            action = {c["payment_id"]: c["action"] for c in by_kind["returned"]}
            assert action[role["ac04"]] == "new_beneficiary_details", by_kind["returned"]
            assert action[role["am04"]] == "ops_review", by_kind["returned"]
            assert [c["payment_id"] for c in by_kind["reversed"]] == [role["reversed"]]
            assert [c["payment_id"] for c in by_kind["amount_mismatch"]] == [role["mismatch"]]
            assert len(by_kind["unknown_line"]) == 1, by_kind
            assert "missing_on_statement" not in by_kind and "pending" not in by_kind

        # The partner is told of each return: the hub's payment.notice, status returned, sent
        # (the hub's messages) and received by the partner's simulator; of no other payment.
        back = {pid for name in RAILS for pid in
                (roles[name]["ac04"], roles[name]["am04"], roles[name]["reversed"])}
        notices = asyncio.run(_notices(db_url))
        assert {n["payment_id"] for n in notices if n.get("status") == "returned"} == back

        def told() -> set[str] | None:
            got = {m["payload"]["payment_id"] for m in list(partner.received.values())
                   if m["type"] == "payment.notice" and m["payload"].get("status") == "returned"}
            return got if got >= back else None

        assert _wait("the partner told of every return", told) == back
    finally:
        api.close()
        if scheduler is not None and scheduler.poll() is None:
            scheduler.kill()
            scheduler.wait()
        if server is not None:
            server.stop()
        sims.stop()
        partner_server.stop()
