"""Pension schedules and their events join the evidence, as payments did (0012, 0014, 0016).

A schedule creates a payment every month from its own columns: its beneficiary, amount and
rail as awarded, its payout account, its state. Until now none of it was evidence: an UPDATE
beside the hub could redirect every future period, raise the amount or set a stopped pension
(a death) back to active, and the payments it then created were chained as if instructed so.
Now the chain holds each schedule as awarded and each of its events whole, and each event
records ``schedule_sha256``, the digest of the schedule's changing columns after it
(``gateway.evidence.pensions``), so the schedule as it is must match its newest event.

On PostgreSQL the append-only guard of 0008 (``px_guard_evidence``) refuses an UPDATE of any
column the hub never changes (decided by the trigger's WHEN, as 0014 does for payments), any
DELETE and TRUNCATE; ``pension_events`` is guarded whole. The column lists are written out:
what was true at this revision (a test compares them with the code's).

Nothing is backfilled: the chainer chains the existing schedules and events on its next ticks,
and a schedule whose newest event predates this revision is counted as not compared until its
next event. SQLite has no guard.

Revision ID: 0017_pension_evidence
Revises: 0016_payment_event_digest
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_pension_evidence"
down_revision = "0016_payment_event_digest"
branch_labels = None
depends_on = None

MUTABLE = ("state", "reason", "provider", "account", "account_name", "next_period",
           "life_certificate_due_on", "died_on", "updated_at")
IMMUTABLE = ("pk", "pension_ref", "request_sha256", "partner_id", "benefit",
             "beneficiary_name", "beneficiary_id", "rail", "monthly_minor", "currency",
             "start_on", "end_on", "created_at", "claim_ref")


def upgrade() -> None:
    with op.batch_alter_table("pension_events") as batch:
        batch.add_column(sa.Column("schedule_sha256", sa.String(64), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return
    old = ", ".join(f"OLD.{c}" for c in IMMUTABLE)
    new = ", ".join(f"NEW.{c}" for c in IMMUTABLE)
    args = ", ".join(f"'{c}'" for c in MUTABLE)
    op.execute("CREATE TRIGGER px_guard_pension_schedules BEFORE UPDATE ON pension_schedules "
               f"FOR EACH ROW WHEN (({old}) IS DISTINCT FROM ({new})) "
               f"EXECUTE FUNCTION px_guard_evidence({args})")
    op.execute("CREATE TRIGGER px_guard_pension_schedules_delete BEFORE DELETE ON "
               "pension_schedules FOR EACH ROW EXECUTE FUNCTION px_guard_evidence()")
    op.execute("CREATE TRIGGER px_guard_pension_events BEFORE UPDATE OR DELETE ON "
               "pension_events FOR EACH ROW EXECUTE FUNCTION px_guard_evidence()")
    for table in ("pension_schedules", "pension_events"):
        op.execute(f"CREATE TRIGGER px_guard_{table}_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION px_guard_evidence()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table in (("pension_events_truncate", "pension_events"),
                            ("pension_schedules_truncate", "pension_schedules"),
                            ("pension_events", "pension_events"),
                            ("pension_schedules_delete", "pension_schedules"),
                            ("pension_schedules", "pension_schedules")):
            op.execute(f"DROP TRIGGER IF EXISTS px_guard_{name} ON {table}")
    with op.batch_alter_table("pension_events") as batch:
        batch.drop_column("schedule_sha256")
