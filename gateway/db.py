"""Tables (SQLAlchemy Core), and the async engine for SQLite and PostgreSQL.

Core rather than the ORM: the intake hot path is one or two INSERTs per request, and the ORM's
unit-of-work bookkeeping would cost more than the SQL itself. The same schema runs on SQLite
(embedded default) and PostgreSQL (production, several gateway processes); Alembic migrations
in ``migrations/`` create it, and a test checks they match these definitions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.config import async_database_url

__all__ = ["create_engine", "metadata"]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants 64 bits.
PK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which stores no offset) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


TS = UTCDateTime()

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
    UniqueConstraint("sender", "message_id", name="uq_messages_sender_message_id"),
    Index("ix_messages_correlation", "correlation_id"),
    Index("ix_messages_partner_direction_pk", "partner_id", "direction", "pk"),
)

# Hash chain over evidence records, appended after commit by the chainer (gateway.evidence).
evidence_chain = Table(
    "evidence_chain",
    metadata,
    Column("seq", PK, primary_key=True, autoincrement=False),
    Column("record_table", String(40), nullable=False),
    Column("record_pk", BigInteger, nullable=False),
    Column("record_sha256", String(64), nullable=False),
    Column("chain_sha256", String(64), nullable=False),
    Column("chained_at", TS, nullable=False),
    UniqueConstraint("record_table", "record_pk", name="uq_evidence_chain_record"),
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

# The transactional outbox: work that must happen after a commit, claimed by dispatchers.
outbox = Table(
    "outbox",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),  # e.g. process_inbound, deliver, payout
    Column("destination", String(64), nullable=False),  # partner id, rail name or "hub"
    Column("ordering_key", String(200), nullable=True),  # FIFO per key (correlation id)
    Column("ref", String(128), nullable=False),  # message pk, payment id ...
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", TS, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", TS, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_outbox_due", "state", "next_attempt_at"),
    Index("ix_outbox_ordering", "ordering_key", "pk"),
    Index("ix_outbox_kind_ref", "kind", "ref"),
)

# Per-message state that changes (processing, delivery); kept apart from evidence.
message_state = Table(
    "message_state",
    metadata,
    Column("message_pk", PK, ForeignKey("messages.pk"), primary_key=True),
    Column("state", String(16), nullable=False),  # received/queued/delivered/acknowledged/...
    Column("detail", Text, nullable=True),
    Column("updated_at", TS, nullable=False),
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

# --- payments (gateway.payments) -------------------------------------------------------------
# One row per payment instructed by the back office (or created from a pension schedule). The
# rail's idempotency key is derived from payment_id once, at instruction, and never changes.
payments = Table(
    "payments",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("payment_id", String(35), nullable=False),
    Column("idempotency_key", String(35), nullable=False),
    Column("request_sha256", String(64), nullable=False),  # what was instructed (idempotency)
    Column("state", String(16), nullable=False),
    Column("rail", String(32), nullable=False),
    Column("partner_id", String(40), nullable=True),  # the beneficiary's partner institution
    Column("benefit", String(40), nullable=False),
    Column("claim_ref", String(64), nullable=True),
    Column("socso_claim_no", String(64), nullable=True),
    Column("pension_ref", String(64), nullable=True),
    Column("period", String(7), nullable=True),  # YYYY-MM for a pension payment
    Column("beneficiary_name", String(500), nullable=False),
    Column("beneficiary_id", String(120), nullable=True),  # "scheme:value"
    Column("provider", String(64), nullable=False),
    Column("account", String(64), nullable=False),
    Column("account_name", String(500), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),  # what the rail pays, in `currency`
    Column("currency", String(3), nullable=False),
    Column("base_minor", BigInteger, nullable=False),  # the benefit as decided, in MYR
    Column("base_currency", String(3), nullable=False),
    Column("fx_rate", String(40), nullable=True),
    Column("fx_source", String(200), nullable=True),
    Column("fx_at", TS, nullable=True),
    Column("fx_exact", String(40), nullable=True),  # converted amount before rounding
    Column("fx_rounding_minor", BigInteger, nullable=True),  # paid - exact, in minor units
    Column("rail_reference", String(128), nullable=True),
    Column("reason", Text, nullable=True),
    Column("confirmed", String(16), nullable=True),  # the partner's payment.confirm outcome
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("paid_at", TS, nullable=True),
    UniqueConstraint("payment_id", name="uq_payments_payment_id"),
    UniqueConstraint("idempotency_key", name="uq_payments_idempotency_key"),
    Index("ix_payments_state_updated", "state", "updated_at"),
    Index("ix_payments_claim_ref", "claim_ref"),
    Index("ix_payments_pension_ref", "pension_ref"),
)

# Every state change of a payment with its cause; never updated or deleted.
payment_events = Table(
    "payment_events",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("payment_pk", BigInteger, ForeignKey("payments.pk"), nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("cause", String(40), nullable=False),
    Column("detail", Text, nullable=True),
    Column("at", TS, nullable=False),
    Index("ix_payment_events_payment", "payment_pk", "pk"),
)

# Periodic pensions: the payments of each period are created from the schedule.
pension_schedules = Table(
    "pension_schedules",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("pension_ref", String(64), nullable=False),
    Column("request_sha256", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # active / suspended / stopped / ended
    Column("reason", Text, nullable=True),
    Column("partner_id", String(40), nullable=True),
    Column("benefit", String(40), nullable=False),
    Column("beneficiary_name", String(500), nullable=False),
    Column("beneficiary_id", String(120), nullable=True),
    Column("rail", String(32), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("account", String(64), nullable=False),
    Column("account_name", String(500), nullable=False),
    Column("monthly_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("start_on", Date, nullable=False),
    Column("end_on", Date, nullable=True),
    Column("next_period", String(7), nullable=False),  # first period not yet created
    Column("life_certificate_due_on", Date, nullable=True),
    Column("died_on", Date, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("pension_ref", name="uq_pension_schedules_pension_ref"),
    Index("ix_pension_schedules_state", "state", "next_period"),
)

pension_events = Table(
    "pension_events",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("schedule_pk", BigInteger, ForeignKey("pension_schedules.pk"), nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("cause", String(40), nullable=False),
    Column("detail", Text, nullable=True),
    Column("at", TS, nullable=False),
    Index("ix_pension_events_schedule", "schedule_pk", "pk"),
)


# --- partners (gateway.claims, gateway.messages.delivery/inbox) ------------------------------
# A claim notified by a partner; the hub assigns socso_claim_no when it records it.
claims = Table(
    "claims",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("partner_id", String(40), nullable=False),
    Column("claim_ref", String(64), nullable=False),  # the partner's reference
    Column("socso_claim_no", String(64), nullable=False),
    Column("benefit", String(40), nullable=False),
    Column("status", String(20), nullable=False),  # received/.../cancelled
    Column("correlation_id", String(128), nullable=True),
    Column("message_pk", BigInteger, ForeignKey("messages.pk"), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("partner_id", "claim_ref", name="uq_claims_partner_claim_ref"),
    UniqueConstraint("socso_claim_no", name="uq_claims_socso_claim_no"),
)

# Documents a partner delivered (document.deliver, or attached to claim.notify).
claim_documents = Table(
    "claim_documents",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("partner_id", String(40), nullable=False),
    Column("claim_ref", String(64), nullable=False),
    Column("request_id", String(64), nullable=True),
    Column("kind", String(40), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("message_pk", BigInteger, ForeignKey("messages.pk"), nullable=False),
    Column("received_at", TS, nullable=False),
    Index("ix_claim_documents_claim", "partner_id", "claim_ref"),
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


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """Create the async engine for a GATEWAY_DATABASE_URL (SQLite or PostgreSQL)."""
    async_url = async_database_url(url)
    if async_url.startswith("sqlite"):
        # A small pool: opening a SQLite connection (and its PRAGMAs) per request is costly;
        # several processes may still share the file, serialised by SQLite's own lock.
        engine = create_async_engine(async_url, pool_size=5, max_overflow=5)
        _tune_sqlite(engine)
        return engine
    return create_async_engine(
        # No pre-ping: it costs a round trip per request; a dead connection raises a
        # disconnect error, SQLAlchemy discards it and the caller's request fails cleanly.
        async_url, pool_size=pool_size, max_overflow=pool_size // 2, pool_recycle=1800
    )


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN IMMEDIATE below is ours.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads then writes can fail
        # with SQLITE_BUSY at once when another process writes, without waiting.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
