"""PX/1 core: messages (evidence), hash chain, token jtis, outbox, message state, receipts.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-21
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("partner_id", sa.String(40), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("sender", sa.String(40), nullable=False),
        sa.Column("recipient", sa.String(40), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=True),
        sa.Column("sent_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("wire", sa.LargeBinary, nullable=False),
        sa.Column("wire_media_type", sa.String(80), nullable=False),
        sa.Column("canonical", sa.LargeBinary, nullable=True),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("kid", sa.String(128), nullable=False),
        sa.Column("receipt", sa.LargeBinary, nullable=True),
        sa.Column("receipt_signature", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_messages"),
        sa.UniqueConstraint("sender", "message_id", name="uq_messages_sender_message_id"),
    )
    op.create_index("ix_messages_correlation", "messages", ["correlation_id"])
    op.create_index("ix_messages_partner_direction_pk", "messages",
                    ["partner_id", "direction", "pk"])
    op.create_table(
        "evidence_chain",
        sa.Column("seq", PK, primary_key=True, autoincrement=False),
        sa.Column("record_table", sa.String(40), nullable=False),
        sa.Column("record_pk", sa.BigInteger, nullable=False),
        sa.Column("record_sha256", sa.String(64), nullable=False),
        sa.Column("chain_sha256", sa.String(64), nullable=False),
        sa.Column("chained_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_evidence_chain"),
        sa.UniqueConstraint("record_table", "record_pk", name="uq_evidence_chain_record"),
    )
    op.create_table(
        "token_jtis",
        sa.Column("party", sa.String(40), nullable=False),
        sa.Column("jti", sa.String(128), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("party", "jti", name="pk_token_jtis"),
    )
    op.create_index("ix_token_jtis_expires_at", "token_jtis", ["expires_at"])
    op.create_table(
        "outbox",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("ordering_key", sa.String(200), nullable=True),
        sa.Column("ref", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", TS, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_outbox"),
    )
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at"])
    op.create_index("ix_outbox_ordering", "outbox", ["ordering_key", "pk"])
    op.create_index("ix_outbox_kind_ref", "outbox", ["kind", "ref"])
    op.create_table(
        "message_state",
        sa.Column("message_pk", PK, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("message_pk", name="pk_message_state"),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.pk"],
                                name="fk_message_state_message_pk_messages"),
    )
    op.create_table(
        "delivery_receipts",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("message_pk", sa.BigInteger, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("kid", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_delivery_receipts"),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.pk"],
                                name="fk_delivery_receipts_message_pk_messages"),
        sa.UniqueConstraint("message_pk", name="uq_delivery_receipts_message_pk"),
    )


def downgrade() -> None:
    for table in ("delivery_receipts", "message_state", "outbox", "token_jtis",
                  "evidence_chain", "messages"):
        op.drop_table(table)
