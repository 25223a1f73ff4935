"""Ops resolve reconciliation cases: who closed a case, how, and through which proposal.

A case closed by ops (``resolved_by`` set) is not reopened by a later run unless that run finds
its cause again (``gateway.reconciliation.domain.reopens``).

Revision ID: 0009_recon_resolution
Revises: 0008_evidence_guard
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_recon_resolution"
down_revision = "0008_evidence_guard"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("recon_cases") as batch:
        batch.add_column(sa.Column("resolution", sa.String(32), nullable=True))
        batch.add_column(sa.Column("resolved_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("resolved_at", TS, nullable=True))
        batch.add_column(sa.Column("proposal_pk", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recon_cases") as batch:
        for column in ("proposal_pk", "resolved_at", "resolved_by", "resolution"):
            batch.drop_column(column)
