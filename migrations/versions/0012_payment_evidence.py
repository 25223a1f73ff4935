"""Payments and their events join the evidence: on PostgreSQL the append-only guard of 0008
(``px_guard_evidence``) on both.

``payment_events`` is guarded whole: nothing in the hub updates or deletes an event.
``payments`` is guarded on the columns the evidence chain's digest covers (what was
instructed): an UPDATE may change only the columns named here, the ones the hub changes after
instruction (``gateway.payments.repository._UPDATABLE``; a test compares the two), and DELETE
and TRUNCATE are refused. The list is written out, not imported: a migration installs what was
true at its revision, and a later change to the mutable columns is a migration of its own.

Rows already present are not touched: the chainer finds every payment and event above the
newest chained pk of its table (none yet), so its next ticks chain them all. SQLite has no
guard.

Revision ID: 0012_payment_evidence
Revises: 0011_keys
Create Date: 2026-12-02
"""
from __future__ import annotations

from alembic import op

revision = "0012_payment_evidence"
down_revision = "0011_keys"
branch_labels = None
depends_on = None

MUTABLE = ("state", "rail_reference", "reason", "paid_at", "updated_at", "provider", "account",
           "account_name", "confirmed", "instruction")
GUARDED = {"payments": MUTABLE, "payment_events": ()}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, mutable in GUARDED.items():
        args = ", ".join(f"'{c}'" for c in mutable)
        op.execute(f"CREATE TRIGGER px_guard_{table} BEFORE UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION px_guard_evidence({args})")
        op.execute(f"CREATE TRIGGER px_guard_{table}_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION px_guard_evidence()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in GUARDED:
        op.execute(f"DROP TRIGGER IF EXISTS px_guard_{table}_truncate ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS px_guard_{table} ON {table}")
