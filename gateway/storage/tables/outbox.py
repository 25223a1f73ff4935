"""The transactional outbox (written only by gateway.outbox.records)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)

from gateway.storage.types import PK, TS, metadata

__all__ = ["outbox"]

_DEAD = text("state = 'dead'")
_OPEN = text("state IN ('pending', 'leased', 'dead')")
_CLAIMABLE = text("state IN ('pending', 'leased')")

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
    # Dead letters are few among millions of finished tasks: a partial index in the admin
    # list's keyset order bounds every page of them, filtered by kind or destination or not,
    # by their number (migration 0010_admin_indexes).
    Index("ix_outbox_dead_pk", "pk", postgresql_where=_DEAD, sqlite_where=_DEAD),
    # The claim reads only open work, whatever the number of finished tasks: the claimable
    # tasks in claim (pk) order, and the unfinished tasks of a case for its order check
    # (gateway.outbox.claiming; migration 0013_outbox_claim_indexes).
    Index("ix_outbox_claimable_pk", "pk", postgresql_where=_CLAIMABLE,
          sqlite_where=_CLAIMABLE),
    Index("ix_outbox_unfinished_ordering", "ordering_key", "pk", postgresql_where=_OPEN,
          sqlite_where=_OPEN),
    # Depth and partner health count only unfinished and dead work, off this index alone.
    Index("ix_outbox_open_destination_kind", "destination", "kind", "state", "attempts",
          "created_at", postgresql_where=_OPEN, sqlite_where=_OPEN),
)
