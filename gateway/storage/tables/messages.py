"""Messages in and out (evidence rows, never updated) and what happens to them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from gateway.storage.types import PK, TS, metadata

__all__ = [
    "batch_lines", "delivery_receipts", "message_cancellations", "message_state", "messages",
    "partner_batches", "token_jtis",
]

# Evidence: every message in or out, with its exact wire bytes. Rows are never updated or
# deleted; what changes about a message (delivery, processing) lives in other tables.
messages = Table(
    "messages",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("direction", String(3), nullable=False),  # "in" (partner -> hub) or "out"
    Column("partner_id", String(40), nullable=False),  # the counterparty
    Column("message_id", String(36), nullable=False),
    Column("sender", String(40), nullable=False),
    Column("recipient", String(40), nullable=False),
    Column("type", String(40), nullable=False),
    Column("correlation_id", String(128), nullable=True),
    Column("sent_at", TS, nullable=False),
    Column("received_at", TS, nullable=False),  # hub time: received (in) or created (out)
    Column("wire", LargeBinary, nullable=False),  # the exact signed bytes
    Column("wire_media_type", String(80), nullable=False),
    Column("canonical", LargeBinary, nullable=True),  # PX/1 envelope bytes, if not == wire
    Column("body_sha256", String(64), nullable=False),
    Column("signature", Text, nullable=False),
    Column("kid", String(128), nullable=False),
    Column("receipt", LargeBinary, nullable=True),  # the hub's signed receipt (in)
    Column("receipt_signature", Text, nullable=True),
    # PostgreSQL: the inserting transaction of a hub message (storage.commit_order), so a pull
    # inbox reads in an order no later commit can overtake. NULL on SQLite and inbound.
    Column("xact_id", BigInteger, nullable=True),
    UniqueConstraint("sender", "message_id", name="uq_messages_sender_message_id"),
    # Each admin search filter has an index ending in its keyset order (pk, or received_at
    # then pk for a time range), so a page reads its rows off the index whatever the table's
    # size (migration 0010_admin_indexes; bench.admin measures it).
    Index("ix_messages_correlation_pk", "correlation_id", "pk"),
    Index("ix_messages_partner_direction_pk", "partner_id", "direction", "pk"),
    Index("ix_messages_partner_pk", "partner_id", "pk"),
    Index("ix_messages_type_pk", "type", "pk"),
    Index("ix_messages_received_at_pk", "received_at", "pk"),
    Index("ix_messages_partner_direction_xact_id", "partner_id", "direction", "xact_id", "pk"),
)


# Bearer-token ids seen, kept until they expire, so a token is never accepted twice.
token_jtis = Table(
    "token_jtis",
    metadata,
    Column("party", String(40), primary_key=True),
    Column("jti", String(128), primary_key=True),
    Column("expires_at", TS, nullable=False),
    Index("ix_token_jtis_expires_at", "expires_at"),
)


# Per-message state that changes (processing, delivery); kept apart from evidence.
message_state = Table(
    "message_state",
    metadata,
    Column("message_pk", PK, ForeignKey("messages.pk"), primary_key=True),
    Column("state", String(16), nullable=False),  # received/queued/delivered/acknowledged/...
    Column("detail", Text, nullable=True),
    Column("updated_at", TS, nullable=False),
    Index("ix_message_state_state_pk", "state", "message_pk"),  # the admin state filter
)


# A partner's signed delivery receipt for a hub message: proof of delivery (evidence).
delivery_receipts = Table(
    "delivery_receipts",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("message_pk", BigInteger, ForeignKey("messages.pk"), nullable=False),
    Column("received_at", TS, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("signature", Text, nullable=False),
    Column("kid", String(128), nullable=False),
    UniqueConstraint("message_pk", name="uq_delivery_receipts_message_pk"),
)


# message.cancel requests (a partner's for its messages, the hub's for its own) and outcome.
message_cancellations = Table(
    "message_cancellations",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("partner_id", String(40), nullable=False),
    Column("sender", String(40), nullable=False),  # whose message is cancelled
    Column("cancelled_message_id", String(36), nullable=False),
    Column("cancel_message_pk", BigInteger, ForeignKey("messages.pk"), nullable=True),
    Column("reason", Text, nullable=False),
    Column("outcome", String(20), nullable=False),  # cancelled / too_late / not_found
    Column("created_at", TS, nullable=False),
    Index("ix_message_cancellations_target", "sender", "cancelled_message_id"),
)


# A batch request (MM-SSB's JSON Lines) exactly as received, with the signature over it: the
# per-line message rows hold their line's bytes, and batch_lines says which batch line it was.
partner_batches = Table(
    "partner_batches",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("partner_id", String(40), nullable=False),
    Column("received_at", TS, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("signature", Text, nullable=False),
    Column("kid", String(128), nullable=False),
)


batch_lines = Table(
    "batch_lines",
    metadata,
    Column("batch_pk", BigInteger, ForeignKey("partner_batches.pk"), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("message_pk", BigInteger, ForeignKey("messages.pk"), nullable=True),
    Column("status", String(16), nullable=False),  # accepted / duplicate / refused
)
