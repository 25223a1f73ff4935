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
from sqlalchemy.pool import NullPool

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

def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """Create the async engine for a GATEWAY_DATABASE_URL (SQLite or PostgreSQL)."""
    async_url = async_database_url(url)
    if async_url.startswith("sqlite"):
        engine = create_async_engine(async_url, poolclass=NullPool)
        _tune_sqlite(engine)
        return engine
    return create_async_engine(
        async_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
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
