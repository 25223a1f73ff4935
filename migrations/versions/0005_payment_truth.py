"""Payments tell the truth: the submitted instruction, the discrepancy table, and the claim a
pension schedule was awarded on.

Revision ID: 0005_payment_truth
Revises: 0004_commit_order
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_payment_truth"
down_revision = "0004_commit_order"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("instruction", sa.Text(), nullable=True))
    op.create_table(
        "payment_discrepancies",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("payment_pk", sa.BigInteger(), nullable=False),
        sa.Column("payment_id", sa.String(35), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("recorded_state", sa.String(16), nullable=False),
        sa.Column("rail_state", sa.String(16), nullable=False),
        sa.Column("overpayment", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("resolved_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["payment_pk"], ["payments.pk"],
                                name="fk_payment_discrepancies_payment_pk_payments"),
        sa.UniqueConstraint("payment_pk", "kind", name="uq_payment_discrepancies_payment_kind"),
    )
    op.create_index("ix_payment_discrepancies_state", "payment_discrepancies", ["state", "pk"])
    with op.batch_alter_table("pension_schedules") as batch:
        batch.add_column(sa.Column("claim_ref", sa.String(64), nullable=True))
    op.create_index("ix_pension_schedules_claim_ref", "pension_schedules", ["claim_ref"])


def downgrade() -> None:
    op.drop_index("ix_pension_schedules_claim_ref", table_name="pension_schedules")
    with op.batch_alter_table("pension_schedules") as batch:
        batch.drop_column("claim_ref")
    op.drop_index("ix_payment_discrepancies_state", table_name="payment_discrepancies")
    op.drop_table("payment_discrepancies")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("instruction")
