"""Every table, by the noun that owns it (SQLAlchemy Core).

Core rather than the ORM: the intake hot path is one or two INSERTs per request, and the ORM's
unit-of-work bookkeeping would cost more than the SQL itself. The same schema runs on SQLite
(embedded default) and PostgreSQL (production, several gateway processes); Alembic migrations
in ``migrations/`` create it, and a test checks they match these definitions.
"""

from gateway.storage.tables.admin import (
    admin_audit,
    admin_proposals,
    breaker_overrides,
    partner_keys,
    partner_suspensions,
)
from gateway.storage.tables.claims import claim_documents, claims
from gateway.storage.tables.evidence import evidence_chain, evidence_checkpoints
from gateway.storage.tables.messages import (
    batch_lines,
    delivery_receipts,
    message_cancellations,
    message_state,
    messages,
    partner_batches,
    token_jtis,
)
from gateway.storage.tables.outbox import outbox
from gateway.storage.tables.payments import (
    payment_discrepancies,
    payment_events,
    payments,
    pension_events,
    pension_schedules,
)
from gateway.storage.tables.reconciliation import (
    recon_cases,
    recon_items,
    recon_runs,
    recon_statements,
    statement_blobs,
)
from gateway.storage.types import metadata

__all__ = [
    "admin_audit", "admin_proposals", "breaker_overrides", "partner_keys",
    "partner_suspensions",
    "batch_lines", "claim_documents", "claims", "delivery_receipts", "evidence_chain",
    "evidence_checkpoints",
    "message_cancellations", "message_state", "messages", "metadata", "outbox",
    "partner_batches", "payment_discrepancies", "payment_events", "payments", "pension_events",
    "pension_schedules", "recon_cases", "recon_items", "recon_runs", "recon_statements",
    "statement_blobs", "token_jtis",
]
