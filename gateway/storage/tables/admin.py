"""The ops admin API's tables (gateway.admin): audit trail, proposals, and the overrides every
gateway process reads (partner suspensions, manual circuit breakers, partner keys)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from gateway.storage.types import PK, TS, metadata

__all__ = ["admin_audit", "admin_proposals", "breaker_overrides", "partner_keys",
           "partner_suspensions"]

# Evidence: one row per admin request (reads, denied calls and acts alike). Rows are never
# updated or deleted; the evidence chainer hashes them into the chain (gateway.evidence.chain).
admin_audit = Table(
    "admin_audit",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("at", TS, nullable=False),
    Column("actor", String(200), nullable=False),  # the token's subject ("-" if none proved)
    Column("issuer", String(300), nullable=False),
    Column("roles", String(200), nullable=False),  # comma-separated, as the token granted
    Column("action", String(80), nullable=False),  # e.g. messages.search, proposals.approve
    Column("method", String(8), nullable=False),
    Column("path", String(500), nullable=False),
    Column("targets", Text, nullable=False),  # JSON list of what the request named or touched
    Column("client_ip", String(64), nullable=False),
    Column("reason", Text, nullable=True),  # the operator's why, when the act takes one
    Column("outcome", String(16), nullable=False),  # ok / denied / invalid / failed
    Column("status", Integer, nullable=False),  # the HTTP status answered
    Column("detail", Text, nullable=True),  # the problem code and detail of a refusal
    Column("unmasked", Boolean, nullable=False),  # personal data was shown unmasked
    Column("proposal_pk", BigInteger, nullable=True),
    # PostgreSQL: the inserting transaction (storage.commit_order), so the export follows the
    # trail in an order no later commit can overtake. NULL on SQLite.
    Column("xact_id", BigInteger, nullable=True),
    Index("ix_admin_audit_actor_pk", "actor", "pk"),
    Index("ix_admin_audit_action_pk", "action", "pk"),
    Index("ix_admin_audit_xact_id_pk", "xact_id", "pk"),
    Index("ix_admin_audit_outcome_pk", "outcome", "pk"),  # 0010_admin_indexes
    Index("ix_admin_audit_at_pk", "at", "pk"),
)


# Maker-checker proposals (gateway.admin.proposals): the target set is frozen at creation.
admin_proposals = Table(
    "admin_proposals",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("action", String(40), nullable=False),
    Column("state", String(16), nullable=False),
    Column("maker", String(200), nullable=False),
    Column("editors", Text, nullable=False),  # JSON list of users who edited it
    Column("reason", Text, nullable=False),
    Column("params", Text, nullable=False),  # JSON: the action's parameters
    Column("targets", Text, nullable=False),  # JSON list, frozen at creation
    Column("target_count", Integer, nullable=False),
    Column("preview", Text, nullable=False),  # JSON: what it will touch, shown to approvers
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("decided_by", String(200), nullable=True),
    Column("decided_at", TS, nullable=True),
    Column("decision_note", Text, nullable=True),
    Column("result", Text, nullable=True),  # JSON: what executing it did, or why it failed
    Index("ix_admin_proposals_state_pk", "state", "pk"),
    Index("ix_admin_proposals_action_pk", "action", "pk"),  # 0010_admin_indexes
)


# A partner suspended by an operator: the intake path reads this (with a short cache) in every
# gateway process, in addition to the registry's static ``suspended``.
partner_suspensions = Table(
    "partner_suspensions",
    metadata,
    Column("partner_id", String(40), primary_key=True),
    Column("suspended_by", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("suspended_at", TS, nullable=False),
)


# A manual circuit-breaker state per destination; every dispatcher reads it (short cache).
breaker_overrides = Table(
    "breaker_overrides",
    metadata,
    Column("destination", String(64), primary_key=True),
    Column("state", String(8), nullable=False),  # open / closed
    Column("set_by", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("set_at", TS, nullable=False),
)


# A partner's public signing key and where it is in its rotation (gateway.messages.partner_keys).
# Seeded from the partners file's keys; every gateway process reads the table with a short
# cache. Keys are never deleted: a retired key still verifies the records it signed.
partner_keys = Table(
    "partner_keys",
    metadata,
    Column("kid", String(200), primary_key=True),  # unique across all parties
    Column("partner_id", String(40), nullable=False),
    Column("jwk", Text, nullable=False),  # the public JWK, JSON
    Column("state", String(8), nullable=False),  # added / active / retired
    Column("not_before", TS, nullable=True),  # not activated before this
    Column("expires_at", TS, nullable=True),  # when it is to be replaced (reported only)
    Column("added_by", String(200), nullable=False),
    Column("added_at", TS, nullable=False),
    Column("activated_by", String(200), nullable=True),
    Column("activated_at", TS, nullable=True),
    Column("retired_by", String(200), nullable=True),
    Column("retired_at", TS, nullable=True),
    Column("updated_at", TS, nullable=False),
    Index("ix_partner_keys_partner_id", "partner_id"),
)
