"""The payments guard is decided by the trigger's WHEN clause, not by PL/pgSQL on every row.

0012 guarded ``payments`` with ``px_guard_evidence('state', ...)``, which turns both row
versions into JSON on every UPDATE to compare what is left after the mutable columns: about
60 µs a row, more than the UPDATE itself (``EXPLAIN ANALYZE`` of 2,000 ``paid -> reconciled``
moves: trigger 119 ms of 276 ms). A reconciliation run makes that move once per statement line
and the payout worker once per state change. The same rule is now the trigger's WHEN clause,
which PostgreSQL evaluates in the executor without calling a function: the immutable columns
of the old and new row, compared as one row value. The function runs only when one of them
changed, and refuses it (it still gets the mutable columns, so its own check agrees).

The immutable columns are written out here (what was true at this revision, as 0012's
mutable list): every column of ``payments`` that is not in
``gateway.payments.repository._UPDATABLE``. A test changes each column the code does not list
as updatable and expects a refusal, so a column added later without a guard migration fails
it. DELETE is refused by a trigger of its own (no WHEN); TRUNCATE's is unchanged.

Revision ID: 0014_payment_guard_when
Revises: 0013_outbox_claim_indexes
Create Date: 2026-12-02
"""
from __future__ import annotations

from alembic import op

revision = "0014_payment_guard_when"
down_revision = "0013_outbox_claim_indexes"
branch_labels = None
depends_on = None

MUTABLE = ("state", "rail_reference", "reason", "paid_at", "updated_at", "provider", "account",
           "account_name", "confirmed", "instruction")
IMMUTABLE = ("pk", "payment_id", "idempotency_key", "request_sha256", "rail", "partner_id",
             "benefit", "claim_ref", "socso_claim_no", "pension_ref", "period",
             "beneficiary_name", "beneficiary_id", "amount_minor", "currency", "base_minor",
             "base_currency", "fx_rate", "fx_source", "fx_at", "fx_exact", "fx_rounding_minor",
             "created_at")


def _args() -> str:
    return ", ".join(f"'{c}'" for c in MUTABLE)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    old = ", ".join(f"OLD.{c}" for c in IMMUTABLE)
    new = ", ".join(f"NEW.{c}" for c in IMMUTABLE)
    op.execute("DROP TRIGGER px_guard_payments ON payments")
    op.execute("CREATE TRIGGER px_guard_payments BEFORE UPDATE ON payments FOR EACH ROW "
               f"WHEN (({old}) IS DISTINCT FROM ({new})) "
               f"EXECUTE FUNCTION px_guard_evidence({_args()})")
    op.execute("CREATE TRIGGER px_guard_payments_delete BEFORE DELETE ON payments "
               "FOR EACH ROW EXECUTE FUNCTION px_guard_evidence()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER px_guard_payments_delete ON payments")
    op.execute("DROP TRIGGER px_guard_payments ON payments")
    op.execute("CREATE TRIGGER px_guard_payments BEFORE UPDATE OR DELETE ON payments "
               f"FOR EACH ROW EXECUTE FUNCTION px_guard_evidence({_args()})")
