"""Partner adapters: claims, delivered documents, cancellations, batch evidence.

Revision ID: 0002_partners
Revises: 0001_core
Create Date: 2026-11-21
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_partners"
down_revision = "0001_core"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _fk_message(column: str, table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["messages.pk"],
                                   name=f"fk_{table}_{column}_messages")


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("partner_id", sa.String(40), nullable=False),
        sa.Column("claim_ref", sa.String(64), nullable=False),
        sa.Column("socso_claim_no", sa.String(64), nullable=False),
        sa.Column("benefit", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=True),
        sa.Column("message_pk", sa.BigInteger, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_claims"),
        _fk_message("message_pk", "claims"),
        sa.UniqueConstraint("partner_id", "claim_ref", name="uq_claims_partner_claim_ref"),
        sa.UniqueConstraint("socso_claim_no", name="uq_claims_socso_claim_no"),
    )
    op.create_table(
        "claim_documents",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("partner_id", sa.String(40), nullable=False),
        sa.Column("claim_ref", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("message_pk", sa.BigInteger, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_claim_documents"),
        _fk_message("message_pk", "claim_documents"),
    )
    op.create_index("ix_claim_documents_claim", "claim_documents", ["partner_id", "claim_ref"])
    op.create_table(
        "message_cancellations",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("partner_id", sa.String(40), nullable=False),
        sa.Column("sender", sa.String(40), nullable=False),
        sa.Column("cancelled_message_id", sa.String(36), nullable=False),
        sa.Column("cancel_message_pk", sa.BigInteger, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_message_cancellations"),
        _fk_message("cancel_message_pk", "message_cancellations"),
    )
    op.create_index("ix_message_cancellations_target", "message_cancellations",
                    ["sender", "cancelled_message_id"])
    op.create_table(
        "partner_batches",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("partner_id", sa.String(40), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("kid", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_partner_batches"),
    )
    op.create_table(
        "batch_lines",
        sa.Column("batch_pk", sa.BigInteger, nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("message_pk", sa.BigInteger, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("batch_pk", "line", name="pk_batch_lines"),
        sa.ForeignKeyConstraint(["batch_pk"], ["partner_batches.pk"],
                                name="fk_batch_lines_batch_pk_partner_batches"),
        _fk_message("message_pk", "batch_lines"),
    )


def downgrade() -> None:
    op.drop_table("batch_lines")
    op.drop_table("partner_batches")
    op.drop_index("ix_message_cancellations_target", table_name="message_cancellations")
    op.drop_table("message_cancellations")
    op.drop_index("ix_claim_documents_claim", table_name="claim_documents")
    op.drop_table("claim_documents")
    op.drop_table("claims")
