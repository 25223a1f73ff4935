"""The logs of a full flow, captured from real processes, never hold the test's personal data,
keys or tokens; they are JSON lines with the request, partner, message and payment ids.

The flow: a signed claim.notify with a known national id, passport, phone and account; a
payment with a known account through the Merchantrade simulator until paid; partner reads with
a bearer token, one with the national id in its path and query; a forged signature. Logged at
DEBUG, so every library's records are in the capture too.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from adapters.simulation import free_port
from gateway.backoffice.auth import write_dev_tokens
from gateway.runtime.bootstrap import dev_key_path
from gateway.sandbox.rails import (
    SIM_CALLBACK_SECRET,
    SIM_REQUEST_SECRET,
    start_rail_sims,
    write_rails_file,
)
from tests.support.partners import TestPartner, claim_payload
from tests.support.payments import payment_body
from tests.support.processes import Server, gateway_env

pytestmark = pytest.mark.e2e

NATIONAL_ID = "3201145403910002"
PASSPORT = "C1234567"
PHONE = "6281234567890"
CLAIM_ACCOUNT = "MT-0042"
PAYMENT_ACCOUNT = "60129876543"
BENEFICIARY = "Nur Aini Binti Contoh"


def test_a_full_flow_logs_ids_and_never_personal_data_keys_or_tokens(
        ops_instance: tuple[Path, dict[str, int]], db_url: str, tmp_path: Path) -> None:
    instance, _ = ops_instance
    token, _ = write_dev_tokens(instance / "backoffice.toml")
    port = free_port()
    sims = start_rail_sims(["merchantrade"], hub_url=f"http://127.0.0.1:{port}",
                           tick_seconds=0.1)
    rails = write_rails_file(tmp_path / "rails.toml", sims.urls(), poll_after=0.3, poll_max=1)
    env = gateway_env(instance, db_url, GATEWAY_LOG_LEVEL="DEBUG", GATEWAY_LOG_FORMAT="json",
                      GATEWAY_RAILS_FILE=str(rails), GATEWAY_DRAIN_SECONDS="0",
                      GATEWAY_BACKOFFICE_TOKENS_FILE=str(instance / "backoffice.toml"))
    partner = TestPartner.from_registry(instance / "partners.toml", "ID-BPJSTK")
    envelope = partner.envelope(sent_at=datetime.now(UTC), payload=claim_payload())
    body, headers = partner.signed(envelope)
    bearer = partner.token(now=datetime.now(UTC))
    server = Server(env, instance, port=port)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            accepted = http.post("/v1/messages", content=body,
                                 headers={**headers, "X-Request-Id": "req-logs-1"})
            assert accepted.status_code == 202
            assert accepted.headers["x-request-id"] == "req-logs-1"
            forged = {**headers, "X-JWS-Signature": headers["X-JWS-Signature"][:-6] + "AAAAAA"}
            assert http.post("/v1/messages", content=body + b"\n", headers=forged
                             ).status_code == 401
            assert http.get(f"/v1/receipts/{envelope['id']}", headers=bearer).status_code == 200
            assert http.get(f"/v1/tracking/{NATIONAL_ID}", params={"nik": NATIONAL_ID},
                            headers=partner.token(now=datetime.now(UTC))).status_code in (
                200, 404)
            office = {"Authorization": f"Bearer {token}"}
            pay = payment_body("PAY-LOG-0001", rail="merchantrade", payout={
                "provider": "MTWALLET", "account": PAYMENT_ACCOUNT,
                "account_name": BENEFICIARY})
            pay["beneficiary"] = {"name": BENEFICIARY,
                                  "national_id": {"scheme": "ID-NIK", "value": NATIONAL_ID}}
            assert http.post("/v1/backoffice/payments", json=pay, headers=office
                             ).status_code == 201
            deadline = time.monotonic() + 60
            state = None
            while time.monotonic() < deadline:
                state = http.get("/v1/backoffice/payments/PAY-LOG-0001",
                                 headers=office).json()["state"]
                if state == "paid":
                    break
                time.sleep(0.2)
            assert state == "paid"
    finally:
        server.stop()
        sims.stop()
    text = server.log.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]

    # What the logs must carry: ids and the access log (so this test can fail).
    access = [r for r in lines if r.get("logger") == "gateway.access"]
    assert {"method": "POST", "route": "/v1/messages", "status": 202,
            "request_id": "req-logs-1"}.items() <= next(
        r for r in access if r.get("request_id") == "req-logs-1").items()
    assert any(r.get("route") == "/v1/tracking/{correlation_id}" for r in access)
    assert any(r.get("partner") == "ID-BPJSTK" and r.get("message_id") == envelope["id"]
               for r in lines)
    assert any(r.get("payment_id") == "PAY-LOG-0001" for r in lines)

    # What they must never carry.
    partner_key = json.loads(dev_key_path(instance / "partners.toml", "ID-BPJSTK").read_text())
    hub_key = json.loads((instance / "hub.jwk.json").read_text())
    secrets = {
        "national id": NATIONAL_ID, "passport": PASSPORT, "phone": PHONE,
        "claim account": CLAIM_ACCOUNT, "payment account": PAYMENT_ACCOUNT,
        "beneficiary name": BENEFICIARY, "worker name": "Siti Rahayu",
        "back-office token": token, "partner bearer token": bearer["Authorization"][7:],
        "message signature": headers["X-JWS-Signature"].split("..")[1],
        "partner private key": partner_key["d"], "hub private key": hub_key["d"],
        "rail request secret": SIM_REQUEST_SECRET, "rail callback secret": SIM_CALLBACK_SECRET,
    }
    leaked = {name: next(line for line in text.splitlines() if value in line)[:300]
              for name, value in secrets.items() if value in text}
    assert not leaked, leaked
