"""The canonical PX/1 envelope and the payload model of every message type.

Plain pydantic models with no I/O: adapters translate partner wire formats into these, the hub
stores, signs and dispatches them. Every model refuses unknown fields, so a partner's typo is
a ``schema_violation`` at once rather than a silently lost field.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from gateway.money import AMOUNT_PATTERN, MINOR_UNITS, Money
from gateway.protocol import national_ids as identity
from gateway.protocol.strictjson import forbidden_character

__all__ = [
    "HUB_PARTY",
    "HUB_TO_PARTNER",
    "PARTNER_TO_HUB",
    "PAYLOADS",
    "BenefitCode",
    "CalendarDate",
    "DocumentKind",
    "Envelope",
    "WireMoney",
    "NationalId",
    "Receipt",
]

HUB_PARTY = "MY-PERKESO"



def _one_line(value: str) -> str:
    bad = forbidden_character(value, free_text=False)
    if bad is not None:
        raise ValueError(f"control, line-break or bidi-override character {bad} is refused")
    return value


def _free_text(value: str) -> str:
    bad = forbidden_character(value)
    if bad is not None:
        raise ValueError(f"control or bidi-override character {bad} is refused")
    return value


def _iso_date(value: Any) -> Any:
    # pydantic would also take "2026-01-01T00:00:00" (and drop the time): PX/1 dates are
    # calendar dates, so anything but YYYY-MM-DD is a mistake worth refusing.
    if isinstance(value, str) and not _DATE.fullmatch(value):
        raise ValueError("must be a date YYYY-MM-DD, not a date-time")
    if isinstance(value, datetime) or not isinstance(value, str | date):
        raise ValueError("must be a date YYYY-MM-DD")
    return value


def _integer(value: Any) -> Any:
    # Literal[1] alone would take true and 1.0 (both equal 1 in Python).
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("must be the integer 1")
    return value


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

PartyId = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}-[A-Z0-9]{2,32}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(_one_line)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=4000),
                     AfterValidator(_free_text)]
CalendarDate = Annotated[date, BeforeValidator(_iso_date)]
Ref = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def _uuid(value: str) -> str:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise ValueError("must be a UUID such as 0193a3c4-6f1e-7c2a-9b1d-2f4e5a6b7c8d") from None
    if str(parsed) != value.lower() or len(value) != 36:
        raise ValueError("must be a UUID in its 36-character hyphenated form")
    return value


Uuid = Annotated[str, AfterValidator(_uuid)]
Phone = Annotated[str, AfterValidator(identity.validate_phone)]
PassportNo = Annotated[str, AfterValidator(identity.validate_passport_no)]


def _utc(value: datetime) -> datetime:
    if value.utcoffset() != timedelta(0):
        raise ValueError("must be in UTC (offset Z or +00:00)")
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]


class BenefitCode(StrEnum):
    EI_MEDICAL = "EI_MEDICAL"
    EI_TEMPORARY_DISABLEMENT = "EI_TEMPORARY_DISABLEMENT"
    EI_PERMANENT_DISABLEMENT = "EI_PERMANENT_DISABLEMENT"
    EI_CONSTANT_ATTENDANCE = "EI_CONSTANT_ATTENDANCE"
    EI_FUNERAL = "EI_FUNERAL"
    EI_DEPENDANTS = "EI_DEPENDANTS"
    EI_REHABILITATION = "EI_REHABILITATION"
    INV_PENSION = "INV_PENSION"
    INV_GRANT = "INV_GRANT"
    INV_CONSTANT_ATTENDANCE = "INV_CONSTANT_ATTENDANCE"
    INV_FUNERAL = "INV_FUNERAL"
    INV_SURVIVORS = "INV_SURVIVORS"
    INV_REHABILITATION = "INV_REHABILITATION"
    FUNERAL_REPATRIATION_REFUND = "FUNERAL_REPATRIATION_REFUND"


class DocumentKind(StrEnum):
    medical_report = "medical_report"
    death_certificate = "death_certificate"
    proof_of_life = "proof_of_life"
    identity_document = "identity_document"
    relationship_proof = "relationship_proof"
    police_report = "police_report"
    employer_report = "employer_report"
    bank_or_wallet_proof = "bank_or_wallet_proof"
    other = "other"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class WireMoney(_Model):
    """Money as PX/1 carries it: a decimal string with exactly the currency's minor units.

    Inside the hub amounts are ``gateway.money.Money`` (integer minor units): ``value()``."""

    amount: Annotated[str, StringConstraints(pattern=AMOUNT_PATTERN)]
    currency: Literal["MYR", "IDR", "MMK", "NPR", "PKR", "BDT"]

    @model_validator(mode="after")
    def _exact(self) -> WireMoney:
        Money.parse(self.amount, self.currency)
        return self

    def value(self) -> Money:
        return Money.parse(self.amount, self.currency)


assert set(MINOR_UNITS) == {"MYR", "IDR", "MMK", "NPR", "PKR", "BDT"}


class NationalId(_Model):
    scheme: Literal["ID-NIK", "MM-NRC", "NP-CTZ", "PK-CNIC", "BD-NID"]
    value: Annotated[str, StringConstraints(min_length=1, max_length=64)]

    @model_validator(mode="after")
    def _canonical(self) -> NationalId:
        canonical = identity.normalise_national_id(self.scheme, self.value)
        if canonical != self.value:
            raise ValueError(f"{self.scheme} value must be in canonical form {canonical!r}")
        return self


class Document(_Model):
    kind: DocumentKind
    sha256: Sha256Hex
    filename: Annotated[str, StringConstraints(min_length=1, max_length=255),
                        AfterValidator(_one_line)]
    media_type: Annotated[str, StringConstraints(pattern=r"^[a-z]+/[A-Za-z0-9.+-]+$")]
    content_b64: str | None = None

    @model_validator(mode="after")
    def _content_matches(self) -> Document:
        if self.content_b64 is not None:
            try:
                content = base64.b64decode(self.content_b64, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("content_b64 is not valid base64") from None
            if hashlib.sha256(content).hexdigest() != self.sha256:
                raise ValueError("sha256 does not match the decoded content_b64")
        return self


class Worker(_Model):
    name: Text
    date_of_birth: CalendarDate
    nationality: CountryCode
    passport_no: PassportNo | None = None
    national_id: NationalId | None = None
    socso_no: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{6,20}$")] | None = None
    employer_name: Text | None = None
    employer_code: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9-]{1,32}$")] | None = None

    @model_validator(mode="after")
    def _identified(self) -> Worker:
        if not (self.passport_no or self.national_id or self.socso_no):
            raise ValueError("a worker needs at least one of passport_no, national_id, socso_no")
        if self.national_id is not None and self.national_id.scheme == "ID-NIK":
            identity.check_nik_matches_worker(self.national_id.value, self.date_of_birth)
        return self


class Incident(_Model):
    date: CalendarDate
    kind: Literal["accident", "commuting_accident", "occupational_disease", "invalidity", "death"]
    description: LongText | None = None


class Claimant(_Model):
    relationship: Literal["self", "spouse", "child", "parent", "other"]
    name: Text
    national_id: NationalId | None = None
    phone: Phone | None = None


class Payout(_Model):
    method: Literal["ewallet", "bank"]
    provider: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    account: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+._-]{1,64}$")]
    account_name: Text


class Person(_Model):
    name: Text
    national_id: NationalId


class Contact(_Model):
    phone: Phone | None = None
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    address: LongText | None = None

    @model_validator(mode="after")
    def _something(self) -> Contact:
        if not (self.phone or self.email or self.address):
            raise ValueError("contact needs at least one of phone, email, address")
        return self


class _ClaimOrPension(_Model):
    claim_ref: Ref | None = None
    pension_ref: Ref | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Any:
        if (self.claim_ref is None) == (self.pension_ref is None):
            raise ValueError("give exactly one of claim_ref and pension_ref")
        return self


class Receipt(_Model):
    """The signed acknowledgement of one message (hub's or partner's)."""

    receipt_id: Uuid
    message_id: Uuid
    sender: PartyId
    status: Literal["accepted", "duplicate"]
    received_at: AwareDatetime
    body_sha256: Sha256Hex


# ---- partner -> hub ---------------------------------------------------------------------


class ClaimNotify(_Model):
    claim_ref: Ref
    benefit: BenefitCode
    worker: Worker
    incident: Incident
    claimant: Claimant
    payout: Payout
    documents: list[Document] = Field(max_length=50)


class DocumentDeliver(_Model):
    claim_ref: Ref
    request_id: Ref
    documents: list[Document] = Field(min_length=1, max_length=50)


class LifeCertificateSubmit(_Model):
    pension_ref: Ref
    beneficiary: Person
    certified_on: CalendarDate
    certified_by: Text
    documents: list[Document] = Field(max_length=50)


class BeneficiaryUpdate(_ClaimOrPension):
    payout: Payout | None = None
    contact: Contact | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> BeneficiaryUpdate:
        if self.payout is None and self.contact is None:
            raise ValueError("beneficiary.update needs a new payout and/or contact")
        return self


class PaymentConfirm(_Model):
    payment_id: Ref
    outcome: Literal["received", "failed"]
    confirmed_on: CalendarDate
    reason: Text | None = None


class DeathNotify(_ClaimOrPension):
    person: Person
    died_on: CalendarDate
    documents: list[Document] = Field(max_length=50)


class MessageCancel(_Model):
    message_id: Uuid
    reason: Text


class ReceiptAck(_Model):
    receipt: Receipt


# ---- hub -> partner ---------------------------------------------------------------------


class ClaimStatus(_Model):
    claim_ref: Ref
    socso_claim_no: Ref
    status: Literal["received", "under_review", "needs_documents", "approved", "rejected", "paid"]
    reason: Text | None = None


class RequestedDocument(_Model):
    kind: DocumentKind
    note: Text


class DocumentRequest(_Model):
    claim_ref: Ref
    request_id: Ref
    documents: list[RequestedDocument] = Field(min_length=1, max_length=50)
    due_on: CalendarDate


class MedicalBoardInvite(_Model):
    claim_ref: Ref
    session_at: UtcDatetime
    join_url: Annotated[str, StringConstraints(pattern=r"^https://[^\s]+$", max_length=2000)]
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]


class PaidVia(_Model):
    rail: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,32}$")]
    reference: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class PaymentNotice(_ClaimOrPension):
    payment_id: Ref
    benefit: BenefitCode
    amount: WireMoney
    paid_via: PaidVia
    paid_at: AwareDatetime
    # Where the protocol is silent: a notice of a payment the rail returned after paying it
    # (absent: paid). ``reason`` is the rail's return reason.
    status: Literal["paid", "returned"] | None = None
    reason: Text | None = None


class LifeCertificateRequest(_Model):
    pension_ref: Ref
    due_on: CalendarDate


PARTNER_TO_HUB: dict[str, type[_Model]] = {
    "claim.notify": ClaimNotify,
    "document.deliver": DocumentDeliver,
    "life_certificate.submit": LifeCertificateSubmit,
    "beneficiary.update": BeneficiaryUpdate,
    "payment.confirm": PaymentConfirm,
    "death.notify": DeathNotify,
    "message.cancel": MessageCancel,
    "receipt.ack": ReceiptAck,
}

HUB_TO_PARTNER: dict[str, type[_Model]] = {
    "claim.status": ClaimStatus,
    "document.request": DocumentRequest,
    "medical_board.invite": MedicalBoardInvite,
    "payment.notice": PaymentNotice,
    "life_certificate.request": LifeCertificateRequest,
    "message.cancel": MessageCancel,
}

PAYLOADS: dict[str, type[_Model]] = {**PARTNER_TO_HUB, **HUB_TO_PARTNER}

MessageType = Annotated[str, StringConstraints(pattern=r"^[a-z_]+\.[a-z_]+$")]


class Envelope(_Model):
    """The PX/1 envelope; ``payload`` is validated against its type's model separately."""

    id: Uuid
    type: MessageType
    version: Annotated[Literal[1], BeforeValidator(_integer)]
    sender: PartyId
    recipient: PartyId
    sent_at: AwareDatetime
    correlation_id: Annotated[str, StringConstraints(min_length=1, max_length=128),
                              AfterValidator(_one_line)] | None = None
    payload: dict[str, Any]

    @field_validator("sent_at", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> Any:
        # RFC 3339 requires a full date-time with an offset; pydantic would also take a
        # bare Unix timestamp, which PX/1 does not allow.
        if not isinstance(value, str) or "T" not in value.upper():
            raise ValueError("must be an RFC 3339 date-time with offset, e.g. 2026-11-21T08:15:30Z")
        return value

    def payload_model(self) -> _Model:
        """Validate and return the payload as its type's model (raises on unknown type)."""
        return PAYLOADS[self.type].model_validate(self.payload)


def payload_model_for(direction: Literal["in", "out"], type_: str) -> type[_Model] | None:
    """Return the payload model of a type in one direction, or None if it has none."""
    table = PARTNER_TO_HUB if direction == "in" else HUB_TO_PARTNER
    return table.get(type_)
