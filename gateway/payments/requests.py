"""Back-office request models: validated strictly at the edge, trusted inside."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, model_validator

from gateway.protocol.envelope import (
    BenefitCode,
    CalendarDate,
    NationalId,
    PartyId,
    Ref,
    Text,
    WireMoney,
)

__all__ = ["Beneficiary", "FxIn", "PaymentIn", "PayoutAccount", "PensionIn", "canonical_sha256"]

# The rail's idempotency key is the payment id itself, so it must fit every rail's key field
# (pain.001's EndToEndId: at most 35 characters) and be URL-safe.
PaymentId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,34}$")]
# A pension's payment ids are "<pension_ref>.<YYYYMM>", so the reference leaves room for that.
PensionRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,27}$")]
RailName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,32}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Beneficiary(_Model):
    name: Text
    national_id: NationalId | None = None

    def id_text(self) -> str | None:
        return f"{self.national_id.scheme}:{self.national_id.value}" if self.national_id else None


class PayoutAccount(_Model):
    provider: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    account: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+._-]{1,64}$")]
    account_name: Text


class FxIn(_Model):
    """Pay in another currency: the rate (units of ``currency`` per MYR), its source and time."""

    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    rate: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,12}(\.[0-9]{1,12})?$")]
    source: Text
    at: AwareDatetime

    def rate_decimal(self) -> Decimal:
        try:
            return Decimal(self.rate)
        except InvalidOperation:  # pragma: no cover - the pattern already excludes it
            raise ValueError("rate is not a decimal") from None


def _myr(money: WireMoney, what: str) -> None:
    if money.currency != "MYR":
        raise ValueError(f"{what} must be in MYR (benefits are computed in MYR; use fx)")
    if money.value().minor <= 0:
        raise ValueError(f"{what} must be positive")


class PaymentIn(_Model):
    payment_id: PaymentId
    partner_id: PartyId | None = None
    beneficiary: Beneficiary
    benefit: BenefitCode
    claim_ref: Ref | None = None
    socso_claim_no: Ref | None = None
    pension_ref: Ref | None = None
    amount: WireMoney
    rail: RailName
    payout: PayoutAccount
    fx: FxIn | None = None

    @model_validator(mode="after")
    def _check(self) -> PaymentIn:
        if (self.claim_ref is None) == (self.pension_ref is None):
            raise ValueError("give exactly one of claim_ref and pension_ref")
        _myr(self.amount, "amount")
        return self


class PensionIn(_Model):
    pension_ref: PensionRef
    partner_id: PartyId | None = None
    beneficiary: Beneficiary
    benefit: BenefitCode
    monthly_amount: WireMoney
    start_on: CalendarDate
    end_on: CalendarDate | None = None
    rail: RailName
    payout: PayoutAccount
    life_certificate_due_on: CalendarDate | None = None
    claim_ref: Ref | None = None  # the claim the pension was awarded on (death.notify by claim)

    @model_validator(mode="after")
    def _check(self) -> PensionIn:
        _myr(self.monthly_amount, "monthly_amount")
        if self.end_on is not None and self.end_on < self.start_on:
            raise ValueError("end_on is before start_on")
        return self


_ADDED_LATER: dict[str, tuple[str, ...]] = {"PensionIn": ("claim_ref",)}


def canonical_sha256(model: BaseModel) -> str:
    """Return a digest of the request's meaning (same fields, same digest)."""
    import hashlib

    import orjson

    doc: Any = model.model_dump(mode="json")
    # Fields added later count only when given, so a stored request's digest never changes.
    for name in _ADDED_LATER.get(type(model).__name__, ()):
        if doc.get(name) is None:
            doc.pop(name, None)
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()
