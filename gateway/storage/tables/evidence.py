"""The hash chain over evidence records, appended after commit (gateway.evidence)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from gateway.storage.types import PK, TS, metadata

__all__ = ["evidence_chain", "evidence_checkpoints"]

# Hash chain over evidence records, appended after commit by the chainer (gateway.evidence.chain).
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


# The chain head signed by the hub's key on a schedule (gateway.evidence.checkpoints): kept here
# and exported off the database, so a rewrite of chained history shows against them.
evidence_checkpoints = Table(
    "evidence_checkpoints",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("seq", BigInteger, nullable=False),
    Column("chain_sha256", String(64), nullable=False),
    Column("signed_at", TS, nullable=False),
    Column("kid", String(128), nullable=False),
    Column("payload", Text, nullable=False),  # the exact signed JSON
    Column("signature", Text, nullable=False),  # detached JWS over payload's UTF-8 bytes
    UniqueConstraint("seq", name="uq_evidence_checkpoints_seq"),
)
