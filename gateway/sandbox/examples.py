"""Sample messages in each partner's identities and scripts: ``gateway example`` and the tests.

``sample_payload`` is deterministic (the recorded fixtures under ``tests/fixtures/partners/``
are generated from it). ``example`` builds on it for a person sending by hand: a fresh message
id, ``sent_at`` now, dates relative to today and fresh references, so two examples are two
different messages the hub accepts.

A type a partner sends (``PARTNER_TO_HUB``) becomes a PX/1 envelope from the partner, in
its own wire format or as the canonical JSON that ``schemas/`` describes. A type only the hub
sends (``HUB_TO_PARTNER``) becomes the body of ``POST /v1/backoffice/messages``, the one way
to have the hub send it.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import orjson

from adapters.partners.mm_ssb.simulator import sample_claim as mm_claim
from adapters.partners.np_feb.simulator import sample_claim as np_claim
from adapters.partners.pk_mophrd.simulator import sample_claim as pk_claim
from adapters.partners.px1.simulator import SAMPLES as PX1_SAMPLES
from gateway.composition import partner_adapters
from gateway.errors import ConfigError
from gateway.protocol.envelope import HUB_PARTY, HUB_TO_PARTNER, PARTNER_TO_HUB
from gateway.protocol.partners import PartnerRegistry

__all__ = ["CLAIMS", "PERSONS", "Example", "example", "sample_payload"]

CLAIMS = {"ID-BPJSTK": PX1_SAMPLES["ID-BPJSTK"], "BD-WEWB": PX1_SAMPLES["BD-WEWB"],
          "MM-SSB": mm_claim, "NP-FEB": np_claim, "PK-MOPHRD": pk_claim}

PERSONS: dict[str, dict[str, Any]] = {
    "ID-BPJSTK": {"name": "Siti Rahayu Nur Aini",
                  "national_id": {"scheme": "ID-NIK", "value": "3201145403910002"}},
    "BD-WEWB": {"name": "মোহাম্মদ রহিম উদ্দিন",
                "national_id": {"scheme": "BD-NID", "value": "1987654321"}},
    "MM-SSB": {"name": "ဒေါ်ခင်မြင့်",
               "national_id": {"scheme": "MM-NRC", "value": "12/BAHANA(N)654321"}},
    "NP-FEB": {"name": "सीता कुमारी श्रेष्ठ",
               "national_id": {"scheme": "NP-CTZ", "value": "KASKI:41-02-75-00123"}},
    "PK-MOPHRD": {"name": "Ayesha Bibi",
                  "national_id": {"scheme": "PK-CNIC", "value": "3520298765432"}},
}

_DOC = b"%PDF-1.4 sample"


def _document(kind: str = "medical_report") -> dict[str, Any]:
    return {"kind": kind, "sha256": hashlib.sha256(_DOC).hexdigest(), "filename": "report.pdf",
            "media_type": "application/pdf"}


def sample_payload(partner_id: str, type_: str) -> dict[str, Any]:
    """A valid canonical payload of ``type_`` for ``partner_id``."""
    person = PERSONS[partner_id]
    ref = f"{partner_id[:2]}-CLM-0001"
    payloads: dict[str, dict[str, Any]] = {
        "claim.notify": CLAIMS[partner_id](ref),
        "document.deliver": {"claim_ref": ref, "request_id": "REQ-1",
                             "documents": [_document()]},
        "life_certificate.submit": {"pension_ref": "PEN-0001", "beneficiary": person,
                                    "certified_on": "2026-11-02",
                                    "certified_by": "Ward office / " + person["name"],
                                    "documents": [_document("proof_of_life")]},
        "beneficiary.update": {"pension_ref": "PEN-0001", "contact": {
            "phone": CLAIMS[partner_id](ref)["claimant"]["phone"],
            "address": person["name"] + ", 12 Main Road"}},
        "payment.confirm": {"payment_id": "PAY-0001", "outcome": "received",
                            "confirmed_on": "2026-11-20"},
        "death.notify": {"claim_ref": ref, "person": person, "died_on": "2026-11-01",
                         "documents": [_document("death_certificate")]},
        "message.cancel": {"message_id": "0193a3c4-6f1e-7c2a-9b1d-2f4e5a6b7c8d",
                           "reason": "sent in error: " + person["name"]},
        "receipt.ack": {"receipt": {
            "receipt_id": "0193a3c4-6f1e-7c2a-9b1d-2f4e5a6b7c8e",
            "message_id": "0193a3c4-6f1e-7c2a-9b1d-2f4e5a6b7c8f", "sender": "MY-PERKESO",
            "status": "accepted", "received_at": "2026-11-21T08:15:31.204Z",
            "body_sha256": hashlib.sha256(b"x").hexdigest()}},
        "claim.status": {"claim_ref": ref, "socso_claim_no": "SOCSO-2026-00000042",
                         "status": "needs_documents", "reason": "Medical report missing"},
        "document.request": {"claim_ref": ref, "request_id": "REQ-1", "due_on": "2027-01-15",
                             "documents": [{"kind": "medical_report",
                                            "note": "Latest report, any language"}]},
        "medical_board.invite": {"claim_ref": ref, "session_at": "2026-12-03T02:30:00Z",
                                 "join_url": "https://meet.perkeso.example/mb/42",
                                 "language": "ne"},
        "payment.notice": {"payment_id": "PAY-0001", "claim_ref": ref,
                           "benefit": "EI_PERMANENT_DISABLEMENT",
                           "amount": {"amount": "1250.00", "currency": "MYR"},
                           "paid_via": {"rail": "merchantrade", "reference": "MT-77881"},
                           "paid_at": "2026-11-21T03:00:00.250Z"},
        "life_certificate.request": {"pension_ref": "PEN-0001", "due_on": "2027-03-31"},
    }
    return payloads[type_]


Form = Literal["wire", "canonical"]


@dataclass(frozen=True, slots=True)
class Example:
    """What ``gateway example`` writes, and how to send it."""

    body: bytes
    media_type: str
    path: str  # where it is POSTed on the hub
    backoffice: bool  # True: a back-office request (service token), not a signed message


def _fresh(payload: dict[str, Any], type_: str, ref: str, now: datetime) -> dict[str, Any]:
    """Today's dates and fresh references in a sample payload (a copy)."""
    out: dict[str, Any] = orjson.loads(orjson.dumps(payload))
    today = now.date()

    def day(offset: int) -> str:
        return (today + timedelta(days=offset)).isoformat()

    if "claim_ref" in out:
        out["claim_ref"] = ref
    if type_ == "claim.notify":
        out["incident"]["date"] = day(-30)
    elif type_ == "life_certificate.submit":
        out["certified_on"] = day(-1)
    elif type_ == "payment.confirm":
        out["confirmed_on"] = day(0)
    elif type_ == "death.notify":
        out["died_on"] = day(-7)
    elif type_ == "message.cancel":
        out["message_id"] = str(uuid.uuid4())
    elif type_ == "receipt.ack":
        out["receipt"].update(receipt_id=str(uuid.uuid4()), message_id=str(uuid.uuid4()),
                              received_at=now.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    elif type_ == "document.request":
        out["due_on"] = day(30)
    elif type_ == "medical_board.invite":
        out["session_at"] = (now + timedelta(days=7)).strftime("%Y-%m-%dT02:30:00Z")
    elif type_ == "payment.notice":
        out["paid_at"] = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    elif type_ == "life_certificate.request":
        out["due_on"] = _month_end(today + timedelta(days=90)).isoformat()
    return out


def _month_end(d: date) -> date:
    first_next = (d.replace(day=1) + timedelta(days=32)).replace(day=1)
    return first_next - timedelta(days=1)


def example(type_: str, partner_id: str, registry: PartnerRegistry, *, form: Form = "wire",
            ref: str | None = None, now: datetime | None = None) -> Example:
    """Build a sendable example of ``type_`` for ``partner_id``.

    Raises:
        ConfigError: the type is not a PX/1 type, the partner is not registered or has no
            sample identities, or the partner may not send the type.
    """
    partner = registry.get(partner_id)
    if partner is None:
        known = ", ".join(sorted(p.id for p in registry))
        raise ConfigError(f"partner {partner_id!r} is not in the registry (one of {known})")
    if type_ not in PARTNER_TO_HUB and type_ not in HUB_TO_PARTNER:
        known = ", ".join(sorted({*PARTNER_TO_HUB, *HUB_TO_PARTNER}))
        raise ConfigError(f"unknown message type {type_!r} (one of {known})")
    if partner_id not in PERSONS:
        raise ConfigError(f"no sample identities for {partner_id} (samples exist for "
                          f"{', '.join(sorted(PERSONS))})")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    ref = ref or f"{partner_id[:2]}-CLM-{secrets.token_hex(3).upper()}"
    payload = _fresh(sample_payload(partner_id, type_), type_, ref, now)
    if type_ not in PARTNER_TO_HUB:
        body = {"partner_id": partner_id, "type": type_, "payload": payload,
                "correlation_id": payload.get("claim_ref") or payload.get("pension_ref")}
        return Example(orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n",
                       "application/json", "/v1/backoffice/messages", backoffice=True)
    if not partner.allows(type_):
        raise ConfigError(f"{partner_id} may not send {type_} (its allowed_types)")
    envelope = {"id": str(uuid.uuid4()), "type": type_, "version": 1, "sender": partner_id,
                "recipient": HUB_PARTY, "sent_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "correlation_id": payload.get("claim_ref") or payload.get("pension_ref"),
                "payload": payload}
    canonical = orjson.dumps(envelope, option=orjson.OPT_INDENT_2) + b"\n"
    if form == "canonical":
        return Example(canonical, "application/json", "/v1/messages", backoffice=False)
    adapter = partner_adapters()[partner.adapter]
    wire = adapter.encode(canonical)
    if adapter.batch:
        wire += b"\n"  # a batch of one: every line ends with a newline
    return Example(wire, adapter.wire_media_type, "/v1/messages", backoffice=False)
