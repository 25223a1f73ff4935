"""Payments, pension schedules and payout rails.

Revision ID: 0003_payments
Revises: 0002_partners
Create Date: 2026-11-21
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_payments"
down_revision = "0002_partners"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("payment_id", sa.String(35), nullable=False),
        sa.Column("idempotency_key", sa.String(35), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("rail", sa.String(32), nullable=False),
        sa.Column("partner_id", sa.String(40), nullable=True),
        sa.Column("benefit", sa.String(40), nullable=False),
        sa.Column("claim_ref", sa.String(64), nullable=True),
        sa.Column("socso_claim_no", sa.String(64), nullable=True),
        sa.Column("pension_ref", sa.String(64), nullable=True),
        sa.Column("period", sa.String(7), nullable=True),
        sa.Column("beneficiary_name", sa.String(500), nullable=False),
        sa.Column("beneficiary_id", sa.String(120), nullable=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("account_name", sa.String(500), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("base_minor", sa.BigInteger, nullable=False),
        sa.Column("base_currency", sa.String(3), nullable=False),
        sa.Column("fx_rate", sa.String(40), nullable=True),
        sa.Column("fx_source", sa.String(200), nullable=True),
        sa.Column("fx_at", TS, nullable=True),
        sa.Column("fx_exact", sa.String(40), nullable=True),
        sa.Column("fx_rounding_minor", sa.BigInteger, nullable=True),
        sa.Column("rail_reference", sa.String(128), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("confirmed", sa.String(16), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("paid_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_payments"),
        sa.UniqueConstraint("payment_id", name="uq_payments_payment_id"),
        sa.UniqueConstraint("idempotency_key", name="uq_payments_idempotency_key"),
    )
    op.create_index("ix_payments_pension_ref", "payments", ["pension_ref"])
    op.create_index("ix_payments_state_updated", "payments", ["state", "updated_at"])
    op.create_index("ix_payments_claim_ref", "payments", ["claim_ref"])
    op.create_table(
        "payment_events",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("payment_pk", sa.BigInteger,
                  sa.ForeignKey("payments.pk", name="fk_payment_events_payment_pk_payments"),
                  nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_payment_events"),
    )
    op.create_index("ix_payment_events_payment", "payment_events", ["payment_pk", "pk"])
    op.create_table(
        "pension_schedules",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("pension_ref", sa.String(64), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("partner_id", sa.String(40), nullable=True),
        sa.Column("benefit", sa.String(40), nullable=False),
        sa.Column("beneficiary_name", sa.String(500), nullable=False),
        sa.Column("beneficiary_id", sa.String(120), nullable=True),
        sa.Column("rail", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("account_name", sa.String(500), nullable=False),
        sa.Column("monthly_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("start_on", sa.Date, nullable=False),
        sa.Column("end_on", sa.Date, nullable=True),
        sa.Column("next_period", sa.String(7), nullable=False),
        sa.Column("life_certificate_due_on", sa.Date, nullable=True),
        sa.Column("died_on", sa.Date, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_pension_schedules"),
        sa.UniqueConstraint("pension_ref", name="uq_pension_schedules_pension_ref"),
    )
    op.create_index("ix_pension_schedules_state", "pension_schedules", ["state", "next_period"])
    op.create_table(
        "pension_events",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("schedule_pk", sa.BigInteger,
                  sa.ForeignKey("pension_schedules.pk",
                                name="fk_pension_events_schedule_pk_pension_schedules"),
                  nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_pension_events"),
    )
    op.create_index("ix_pension_events_schedule", "pension_events", ["schedule_pk", "pk"])


def downgrade() -> None:
    op.drop_table("pension_events")
    op.drop_table("pension_schedules")
    op.drop_table("payment_events")
    op.drop_table("payments")
