"""Reconciliation: statements as received (in chunks), runs, items and cases.

Revision ID: 0006_reconciliation
Revises: 0005_payment_truth
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_reconciliation"
down_revision = "0005_payment_truth"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_index("ix_payments_rail_reference", "payments", ["rail_reference"])
    op.create_index("ix_payments_rail_state", "payments", ["rail", "state", "pk"])
    op.create_table(
        "recon_statements",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("rail", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(71), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.UniqueConstraint("rail", "sha256", name="uq_recon_statements_rail_sha256"),
    )
    op.create_table(
        "statement_blobs",
        sa.Column("statement_pk", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["statement_pk"], ["recon_statements.pk"],
                                name="fk_statement_blobs_statement_pk_recon_statements"),
    )
    op.create_table(
        "recon_runs",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(20), nullable=False),
        sa.Column("run_key", sa.String(64), nullable=False),
        sa.Column("rail", sa.String(32), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("rule_version", sa.String(40), nullable=False),
        sa.Column("statement_pk", sa.BigInteger(), nullable=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("supersedes_pk", sa.BigInteger(), nullable=True),
        sa.Column("superseded_by_pk", sa.BigInteger(), nullable=True),
        sa.Column("accounts", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("manifest", sa.Text(), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("items", sa.BigInteger(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["statement_pk"], ["recon_statements.pk"],
                                name="fk_recon_runs_statement_pk_recon_statements"),
        sa.UniqueConstraint("run_key", name="uq_recon_runs_run_key"),
        sa.UniqueConstraint("run_id", name="uq_recon_runs_run_id"),
    )
    op.create_index("ix_recon_runs_rail_date", "recon_runs", ["rail", "business_date", "pk"])
    op.create_table(
        "recon_items",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("run_pk", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("payment_pk", sa.BigInteger(), nullable=True),
        sa.Column("payment_id", sa.String(35), nullable=True),
        sa.Column("statement_id", sa.String(140), nullable=True),
        sa.Column("line_no", sa.Integer(), nullable=True),
        sa.Column("line_kind", sa.String(16), nullable=True),
        sa.Column("batch_ref", sa.String(140), nullable=True),
        sa.Column("end_to_end_id", sa.String(140), nullable=True),
        sa.Column("rail_reference", sa.String(140), nullable=True),
        sa.Column("value_on", sa.Date(), nullable=True),
        sa.Column("ledger_minor", sa.BigInteger(), nullable=False),
        sa.Column("ledger_currency", sa.String(3), nullable=True),
        sa.Column("statement_minor", sa.BigInteger(), nullable=False),
        sa.Column("statement_currency", sa.String(3), nullable=True),
        sa.Column("reason_code", sa.String(8), nullable=True),
        sa.Column("proposals", sa.String(200), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_pk"], ["recon_runs.pk"],
                                name="fk_recon_items_run_pk_recon_runs"),
        sa.UniqueConstraint("run_pk", "seq", name="uq_recon_items_run_pk"),
    )
    op.create_index("ix_recon_items_run_kind", "recon_items", ["run_pk", "kind"])
    op.create_index("ix_recon_items_payment", "recon_items", ["payment_pk", "run_pk"])
    op.create_table(
        "recon_cases",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("rail", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("payment_id", sa.String(35), nullable=True),
        sa.Column("line_ref", sa.String(200), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("reason_code", sa.String(8), nullable=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("closed_note", sa.Text(), nullable=True),
        sa.Column("first_run_pk", sa.BigInteger(), nullable=False),
        sa.Column("last_run_pk", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("rail", "subject", "kind", name="uq_recon_cases_rail_subject_kind"),
    )
    op.create_index("ix_recon_cases_state", "recon_cases", ["state", "pk"])
    op.create_index("ix_recon_cases_last_run", "recon_cases", ["last_run_pk"])


def downgrade() -> None:
    op.drop_index("ix_recon_cases_last_run", table_name="recon_cases")
    op.drop_index("ix_recon_cases_state", table_name="recon_cases")
    op.drop_table("recon_cases")
    op.drop_index("ix_recon_items_payment", table_name="recon_items")
    op.drop_index("ix_recon_items_run_kind", table_name="recon_items")
    op.drop_table("recon_items")
    op.drop_index("ix_recon_runs_rail_date", table_name="recon_runs")
    op.drop_table("recon_runs")
    op.drop_table("statement_blobs")
    op.drop_table("recon_statements")
    op.drop_index("ix_payments_rail_state", table_name="payments")
    op.drop_index("ix_payments_rail_reference", table_name="payments")
