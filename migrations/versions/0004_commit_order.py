"""Commit order: the inserting transaction of each hub message (PostgreSQL pull inbox).

Revision ID: 0004_commit_order
Revises: 0003_payments
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_commit_order"
down_revision = "0003_payments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("xact_id", sa.BigInteger, nullable=True))
    # Messages stored before this revision are all committed: 0 orders them first.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE messages SET xact_id = 0 WHERE direction = 'out'")
    op.create_index("ix_messages_partner_direction_xact_id", "messages",
                    ["partner_id", "direction", "xact_id", "pk"])


def downgrade() -> None:
    op.drop_index("ix_messages_partner_direction_xact_id", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("xact_id")
