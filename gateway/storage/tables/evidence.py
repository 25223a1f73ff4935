"""The hash chain over evidence records, appended after commit (gateway.evidence)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    String,
    Table,
    UniqueConstraint,
)

from gateway.storage.types import PK, TS, metadata

__all__ = ["evidence_chain"]

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
