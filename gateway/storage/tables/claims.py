"""Claims and their documents as notified by partners (gateway.claims)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
)

from gateway.storage.types import PK, TS, metadata

__all__ = ["claim_documents", "claims"]

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
