"""The ops admin API: audit trail, maker-checker proposals, partner suspensions and manual
circuit breakers.

Revision ID: 0007_admin
Revises: 0006_reconciliation
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_admin"
down_revision = "0006_reconciliation"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "admin_audit",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("issuer", sa.String(300), nullable=False),
        sa.Column("roles", sa.String(200), nullable=False),
        sa.Column("action", sa.String(80), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.Column("client_ip", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("unmasked", sa.Boolean(), nullable=False),
        sa.Column("proposal_pk", sa.BigInteger(), nullable=True),
        sa.Column("xact_id", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_admin_audit_actor_pk", "admin_audit", ["actor", "pk"])
    op.create_index("ix_admin_audit_action_pk", "admin_audit", ["action", "pk"])
    op.create_index("ix_admin_audit_xact_id_pk", "admin_audit", ["xact_id", "pk"])
    op.create_table(
        "admin_proposals",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("maker", sa.String(200), nullable=False),
        sa.Column("editors", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.Column("target_count", sa.Integer(), nullable=False),
        sa.Column("preview", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
    )
    op.create_index("ix_admin_proposals_state_pk", "admin_proposals", ["state", "pk"])
    op.create_table(
        "partner_suspensions",
        sa.Column("partner_id", sa.String(40), primary_key=True),
        sa.Column("suspended_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("suspended_at", TS, nullable=False),
    )
    op.create_table(
        "breaker_overrides",
        sa.Column("destination", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("set_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("breaker_overrides")
    op.drop_table("partner_suspensions")
    op.drop_index("ix_admin_proposals_state_pk", table_name="admin_proposals")
    op.drop_table("admin_proposals")
    op.drop_index("ix_admin_audit_xact_id_pk", table_name="admin_audit")
    op.drop_index("ix_admin_audit_action_pk", table_name="admin_audit")
    op.drop_index("ix_admin_audit_actor_pk", table_name="admin_audit")
    op.drop_table("admin_audit")
