"""A test partner: builds envelopes, signs them with its private key, issues bearer tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.protocol.keys import load_signer
from gateway.protocol.signing import Signer
from gateway.runtime.bootstrap import dev_key_path

NOW = datetime(2026, 11, 21, 8, 20, 0, tzinfo=UTC)


def claim_payload(claim_ref: str = "KLM-2026-0042", **over: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "claim_ref": claim_ref,
        "benefit": "EI_PERMANENT_DISABLEMENT",
        "worker": {
            "name": "Siti Rahayu Nur Aini",
            "date_of_birth": "1991-03-14",
            "nationality": "ID",
            "passport_no": "C1234567",
            "national_id": {"scheme": "ID-NIK", "value": "3201145403910002"},
        },
        "incident": {"date": "2026-10-02", "kind": "accident"},
        "claimant": {"relationship": "self", "name": "Siti Rahayu Nur Aini",
                     "phone": "+6281234567890"},
        "payout": {"method": "ewallet", "provider": "merchantrade", "account": "MT-0042",
                   "account_name": "Siti Rahayu Nur Aini"},
        "documents": [],
    }
    payload.update(over)
    return payload


class TestPartner:
    __test__ = False  # not a test class

    def __init__(self, partner_id: str, signer: Signer) -> None:
        self.id = partner_id
        self.signer = signer

    @classmethod
    def from_registry(cls, registry_file: Path, partner_id: str) -> TestPartner:
        return cls(partner_id, load_signer(dev_key_path(registry_file, partner_id), partner_id))

    def envelope(self, type_: str = "claim.notify", payload: dict[str, Any] | None = None,
                 *, sent_at: datetime = NOW, correlation_id: str | None = "KLM-2026-0042",
                 **over: Any) -> dict[str, Any]:
        env: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "type": type_,
            "version": 1,
            "sender": self.id,
            "recipient": "MY-PERKESO",
            "sent_at": sent_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "correlation_id": correlation_id,
            "payload": payload if payload is not None else claim_payload(),
        }
        env.update(over)
        return env

    def sign(self, body: bytes) -> str:
        return self.signer.sign(body)

    def signed(self, envelope: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        body = orjson.dumps(envelope)
        return body, {"X-JWS-Signature": self.sign(body), "Content-Type": "application/json"}

    def token(self, now: datetime = NOW, ttl: int = 120) -> dict[str, str]:
        return {"Authorization": "Bearer " + self.signer.token("MY-PERKESO", ttl,
                                                               now=now.timestamp())}
