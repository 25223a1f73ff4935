"""Drop ``ix_payments_state_updated``: ``ix_payments_state_pk`` (0010) serves every query that
used it, and each index of ``payments`` is one more entry written on every state change.

Nothing orders or filters payments by ``updated_at``; the one reader of the index, the metrics'
count of payments still moving (``state IN (...)``), is bounded the same by the other index
that leads with ``state``. ``payments`` had 12 indexes, and a state change is never a HOT
update (three of them cover ``state``), so every move writes an entry in each: a
reconciliation run makes one move per statement line.

Revision ID: 0015_drop_payments_state_updated
Revises: 0014_payment_guard_when
Create Date: 2026-12-02
"""
from __future__ import annotations

from alembic import op

revision = "0015_drop_payments_state_updated"
down_revision = "0014_payment_guard_when"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_payments_state_updated", table_name="payments")


def downgrade() -> None:
    op.create_index("ix_payments_state_updated", "payments", ["state", "updated_at"])
