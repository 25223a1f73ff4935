"""Statements as received, reconciliation runs, their items and the cases ops work
(gateway.reconciliation)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
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

__all__ = ["recon_cases", "recon_items", "recon_runs", "recon_statements", "statement_blobs"]

# A statement file exactly as received (fetched from the rail or given by path), once per rail
# and content. Its bytes are in statement_blobs; sha256 is over all of them, in order. Evidence:
# chained, and the audit recomputes sha256 from the chunks.
recon_statements = Table(
    "recon_statements",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("rail", String(32), nullable=False),
    Column("sha256", String(71), nullable=False),  # "pending:<uuid>" while being stored
    Column("size", BigInteger, nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("source", String(200), nullable=False),  # fetched:<date> or the file's name
    Column("received_at", TS, nullable=False),
    UniqueConstraint("rail", "sha256", name="uq_recon_statements_rail_sha256"),
)

# The statement's bytes in ~1 MiB chunks, so a file of a million lines is never held in memory
# and every process of a scale-out reads the same bytes.
statement_blobs = Table(
    "statement_blobs",
    metadata,
    Column("statement_pk", BigInteger, ForeignKey("recon_statements.pk"), primary_key=True,
           autoincrement=False),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)

# One reconciliation run: identified by run_key = sha256(rail, business date, the inputs'
# hashes, rule version); written complete in one transaction, so the chainer only ever sees
# finished runs. superseded_by is the only column changed later (not part of its digest).
recon_runs = Table(
    "recon_runs",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("run_id", String(20), nullable=False),  # run_key's first 20 hex digits
    Column("run_key", String(64), nullable=False),
    Column("rail", String(32), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("rule_version", String(40), nullable=False),
    Column("statement_pk", BigInteger, ForeignKey("recon_statements.pk"), nullable=True),
    Column("verdict", String(16), nullable=False),
    Column("supersedes_pk", BigInteger, nullable=True),
    Column("superseded_by_pk", BigInteger, nullable=True),
    Column("accounts", Text, nullable=False),  # JSON {account: last sequence number}
    Column("summary", Text, nullable=False),  # summary.json exactly as written
    Column("manifest", Text, nullable=False),  # canonical JSON: inputs, rules, outputs, counts
    Column("manifest_sha256", String(64), nullable=False),
    Column("items", BigInteger, nullable=False),
    Column("started_at", TS, nullable=False),
    Column("finished_at", TS, nullable=False),
    UniqueConstraint("run_key", name="uq_recon_runs_run_key"),
    UniqueConstraint("run_id", name="uq_recon_runs_run_id"),
    Index("ix_recon_runs_rail_date", "rail", "business_date", "pk"),
)

# Every conclusion of a run, one per statement line and per expected payment, in order (seq).
recon_items = Table(
    "recon_items",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("run_pk", BigInteger, ForeignKey("recon_runs.pk"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(24), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("payment_pk", BigInteger, nullable=True),
    Column("payment_id", String(35), nullable=True),
    Column("statement_id", String(140), nullable=True),
    Column("line_no", Integer, nullable=True),
    Column("line_kind", String(16), nullable=True),
    Column("batch_ref", String(140), nullable=True),
    Column("end_to_end_id", String(140), nullable=True),
    Column("rail_reference", String(140), nullable=True),
    Column("value_on", Date, nullable=True),
    Column("ledger_minor", BigInteger, nullable=False),
    Column("ledger_currency", String(3), nullable=True),
    Column("statement_minor", BigInteger, nullable=False),
    Column("statement_currency", String(3), nullable=True),
    Column("reason_code", String(8), nullable=True),
    Column("proposals", String(200), nullable=True),  # space-separated payment ids
    Column("detail", Text, nullable=False),
    UniqueConstraint("run_pk", "seq", name="uq_recon_items_run_pk"),
    Index("ix_recon_items_run_kind", "run_pk", "kind"),
    Index("ix_recon_items_payment", "payment_pk", "run_pk"),
)

# A discrepancy for ops, one per (rail, subject, kind): opened or updated by each run that
# finds it (never duplicated by re-runs), closed when a superseding or later run no longer does,
# or by ops through a proposal (then reopened only when a run finds its cause again).
recon_cases = Table(
    "recon_cases",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("rail", String(32), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("state", String(16), nullable=False),  # open / closed
    Column("payment_id", String(35), nullable=True),
    Column("line_ref", String(200), nullable=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=True),
    Column("reason_code", String(8), nullable=True),
    Column("action", String(40), nullable=False),
    Column("priority", String(8), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("detail", Text, nullable=False),
    Column("opened_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("closed_at", TS, nullable=True),
    Column("closed_note", Text, nullable=True),
    Column("first_run_pk", BigInteger, nullable=False),
    Column("last_run_pk", BigInteger, nullable=False),
    # Set when ops close it through a proposal (resolve_recon_case); cleared if a run reopens it.
    Column("resolution", String(32), nullable=True),
    Column("resolved_by", String(200), nullable=True),
    Column("resolved_at", TS, nullable=True),
    Column("proposal_pk", BigInteger, nullable=True),
    UniqueConstraint("rail", "subject", "kind", name="uq_recon_cases_rail_subject_kind"),
    Index("ix_recon_cases_state", "state", "pk"),
    Index("ix_recon_cases_last_run", "last_run_pk"),
)
