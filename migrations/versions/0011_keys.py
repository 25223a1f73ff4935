"""Partner keys in the database: rotation (added, active, retired) picked up by every gateway
process within seconds, without a restart.

Revision ID: 0011_keys
Revises: 0010_admin_indexes
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_keys"
down_revision = "0010_admin_indexes"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "partner_keys",
        sa.Column("kid", sa.String(200), primary_key=True),
        sa.Column("partner_id", sa.String(40), nullable=False),
        sa.Column("jwk", sa.Text(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("not_before", TS, nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("added_by", sa.String(200), nullable=False),
        sa.Column("added_at", TS, nullable=False),
        sa.Column("activated_by", sa.String(200), nullable=True),
        sa.Column("activated_at", TS, nullable=True),
        sa.Column("retired_by", sa.String(200), nullable=True),
        sa.Column("retired_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_partner_keys_partner_id", "partner_keys", ["partner_id"])


def downgrade() -> None:
    op.drop_index("ix_partner_keys_partner_id", table_name="partner_keys")
    op.drop_table("partner_keys")
