"""Each payment event records the digest of its payment's changing columns.

A payment's chained digest covers what was instructed; its state, payout account and rail
reference change, each change an event. Nothing tied the row as it is to those events, so an
UPDATE that bypassed the hub (an account redirected before the payout, a state set by hand)
went unseen by ``gateway audit verify``. ``payment_events.payment_sha256`` is that tie
(``gateway.evidence.payments``): verify compares each payment with its newest event's.

Nullable, and nothing is backfilled: events are append-only (and guarded on PostgreSQL) and
already chained, and the chain's digest takes an added column only when it is not NULL, so
existing chains still verify. A payment whose newest event predates this revision is counted as
not compared until its next event.

Revision ID: 0016_payment_event_digest
Revises: 0015_drop_payments_state_updated
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_payment_event_digest"
down_revision = "0015_drop_payments_state_updated"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payment_events") as batch:
        batch.add_column(sa.Column("payment_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payment_events") as batch:
        batch.drop_column("payment_sha256")
