"""Payments, their events, pension schedules and theirs (gateway.payments)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from gateway.storage.types import PK, TS, metadata

__all__ = [
    "payment_discrepancies", "payment_events", "payments", "pension_events",
    "pension_schedules",
]

# One row per payment instructed by the back office (or created from a pension schedule). The
# rail's idempotency key is derived from payment_id once, at instruction, and never changes.
payments = Table(
    "payments",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("payment_id", String(35), nullable=False),
    Column("idempotency_key", String(35), nullable=False),
    Column("request_sha256", String(64), nullable=False),  # what was instructed (idempotency)
    Column("state", String(16), nullable=False),
    Column("rail", String(32), nullable=False),
    Column("partner_id", String(40), nullable=True),  # the beneficiary's partner institution
    Column("benefit", String(40), nullable=False),
    Column("claim_ref", String(64), nullable=True),
    Column("socso_claim_no", String(64), nullable=True),
    Column("pension_ref", String(64), nullable=True),
    Column("period", String(7), nullable=True),  # YYYY-MM for a pension payment
    Column("beneficiary_name", String(500), nullable=False),
    Column("beneficiary_id", String(120), nullable=True),  # "scheme:value"
    Column("provider", String(64), nullable=False),
    Column("account", String(64), nullable=False),
    Column("account_name", String(500), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),  # what the rail pays, in `currency`
    Column("currency", String(3), nullable=False),
    Column("base_minor", BigInteger, nullable=False),  # the benefit as decided, in MYR
    Column("base_currency", String(3), nullable=False),
    Column("fx_rate", String(40), nullable=True),
    Column("fx_source", String(200), nullable=True),
    Column("fx_at", TS, nullable=True),
    Column("fx_exact", String(40), nullable=True),  # converted amount before rounding
    Column("fx_rounding_minor", BigInteger, nullable=True),  # paid - exact, in minor units
    Column("rail_reference", String(128), nullable=True),
    Column("reason", Text, nullable=True),
    Column("confirmed", String(16), nullable=True),  # the partner's payment.confirm outcome
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("paid_at", TS, nullable=True),
    # The exact instruction first sent (JSON), stored with the submission fact before any rail
    # call: every resend carries these bytes, whatever happened to the account meanwhile.
    Column("instruction", Text, nullable=True),
    UniqueConstraint("payment_id", name="uq_payments_payment_id"),
    UniqueConstraint("idempotency_key", name="uq_payments_idempotency_key"),
    Index("ix_payments_claim_ref", "claim_ref"),
    Index("ix_payments_pension_ref", "pension_ref"),
    # Reconciliation looks payments up by the rail's reference and streams a rail's paid ones.
    Index("ix_payments_rail_reference", "rail_reference"),
    Index("ix_payments_rail_state", "rail", "state", "pk"),
    # The admin list's filters, each ending in its keyset order (migration 0010_admin_indexes).
    Index("ix_payments_state_pk", "state", "pk"),
    Index("ix_payments_rail_pk", "rail", "pk"),
    Index("ix_payments_partner_pk", "partner_id", "pk"),
    Index("ix_payments_created_at_pk", "created_at", "pk"),
)


# Every state change of a payment with its cause; never updated or deleted.
payment_events = Table(
    "payment_events",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("payment_pk", BigInteger, ForeignKey("payments.pk"), nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("cause", String(40), nullable=False),
    Column("detail", Text, nullable=True),
    Column("at", TS, nullable=False),
    # The digest of the payment's changing columns once this event's change is written
    # (gateway.evidence.payments); NULL on events recorded before migration 0016.
    Column("payment_sha256", String(64), nullable=True),
    Index("ix_payment_events_payment", "payment_pk", "pk"),
)


# A rail report that contradicted the record (paid after a cancel, returned after paid...):
# the payment moved to the rail's truth and ops must look. One per payment and kind.
payment_discrepancies = Table(
    "payment_discrepancies",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("payment_pk", BigInteger, ForeignKey("payments.pk"), nullable=False),
    Column("payment_id", String(35), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("recorded_state", String(16), nullable=False),  # what the hub had recorded
    Column("rail_state", String(16), nullable=False),  # what the rail reported
    Column("overpayment", Boolean, nullable=False),  # money left after the hub stopped it
    Column("state", String(16), nullable=False),  # open / resolved
    Column("detail", Text, nullable=True),
    Column("opened_at", TS, nullable=False),
    Column("resolved_at", TS, nullable=True),
    UniqueConstraint("payment_pk", "kind", name="uq_payment_discrepancies_payment_kind"),
    Index("ix_payment_discrepancies_state", "state", "pk"),
    Index("ix_payment_discrepancies_payment_id_pk", "payment_id", "pk"),
)


# Periodic pensions: the payments of each period are created from the schedule. Chained as
# awarded; its changing columns are evidenced by its events (gateway.evidence.pensions).
pension_schedules = Table(
    "pension_schedules",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("pension_ref", String(64), nullable=False),
    Column("request_sha256", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # active / suspended / stopped / ended
    Column("reason", Text, nullable=True),
    Column("partner_id", String(40), nullable=True),
    Column("benefit", String(40), nullable=False),
    Column("beneficiary_name", String(500), nullable=False),
    Column("beneficiary_id", String(120), nullable=True),
    Column("rail", String(32), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("account", String(64), nullable=False),
    Column("account_name", String(500), nullable=False),
    Column("monthly_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("start_on", Date, nullable=False),
    Column("end_on", Date, nullable=True),
    Column("next_period", String(7), nullable=False),  # first period not yet created
    Column("life_certificate_due_on", Date, nullable=True),
    Column("died_on", Date, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("claim_ref", String(64), nullable=True),  # the claim it was awarded on
    UniqueConstraint("pension_ref", name="uq_pension_schedules_pension_ref"),
    Index("ix_pension_schedules_state", "state", "next_period"),
    Index("ix_pension_schedules_claim_ref", "claim_ref"),
)


# Every change of a schedule with its cause; never updated or deleted.
pension_events = Table(
    "pension_events",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("schedule_pk", BigInteger, ForeignKey("pension_schedules.pk"), nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("cause", String(40), nullable=False),
    Column("detail", Text, nullable=True),
    Column("at", TS, nullable=False),
    # The digest of the schedule's changing columns once this event's change is written
    # (gateway.evidence.pensions); NULL on events recorded before migration 0017.
    Column("schedule_sha256", String(64), nullable=True),
    Index("ix_pension_events_schedule", "schedule_pk", "pk"),
)
