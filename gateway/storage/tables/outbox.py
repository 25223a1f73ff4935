"""The transactional outbox (written only by gateway.outbox.records)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from gateway.storage.types import PK, TS, metadata

__all__ = ["outbox"]

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
