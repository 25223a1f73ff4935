"""Evidence you can prove: signed checkpoints of the chain head, and on PostgreSQL a trigger
that refuses UPDATE, DELETE and TRUNCATE of the evidence tables.

Guarded (every column immutable: nothing in the hub updates or deletes them): messages,
delivery_receipts, partner_batches, evidence_chain, evidence_checkpoints. The trigger function
takes the names of columns that may still change as arguments (a column-level rule), so a table
with a state column can join with ``px_guard_evidence('state', ...)``; none of these has one.
A migration that must rewrite evidence (a backfill) disables the trigger around it, as an
owner can: the guard stops mistakes and applications, not the database's owner, which is what
the signed checkpoints are for.

Revision ID: 0008_evidence_guard
Revises: 0007_admin
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_evidence_guard"
down_revision = "0007_admin"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)

GUARDED = ("messages", "delivery_receipts", "partner_batches", "evidence_chain",
           "evidence_checkpoints")

_FUNCTION = """
CREATE OR REPLACE FUNCTION px_guard_evidence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mutable text[] := coalesce(TG_ARGV, '{}'::text[]);  -- NULL when no columns are named
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF (to_jsonb(NEW) - mutable) IS NOT DISTINCT FROM (to_jsonb(OLD) - mutable) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'evidence table % is append-only: UPDATE of an immutable column',
            TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION 'evidence table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def upgrade() -> None:
    op.create_table(
        "evidence_checkpoints",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("chain_sha256", sa.String(64), nullable=False),
        sa.Column("signed_at", TS, nullable=False),
        sa.Column("kid", sa.String(128), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.UniqueConstraint("seq", name="uq_evidence_checkpoints_seq"),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_FUNCTION)
    for table in GUARDED:
        op.execute(f"CREATE TRIGGER px_guard_{table} BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION px_guard_evidence()")
        op.execute(f"CREATE TRIGGER px_guard_{table}_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION px_guard_evidence()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in GUARDED:
            op.execute(f"DROP TRIGGER IF EXISTS px_guard_{table}_truncate ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS px_guard_{table} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS px_guard_evidence()")
    op.drop_table("evidence_checkpoints")
