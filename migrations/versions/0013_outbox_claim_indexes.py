"""The claim reads only open outbox tasks: partial indexes on the claimable and unfinished
states (issue 12 item 8).

Finished tasks are never deleted, so they outnumber the open ones more every hour. The claim
walked the primary key from the oldest task, filtering out every finished one on each call:
33 ms per claim at 100,000 finished tasks (4 ms at 5,000), growing without bound and paid on
every idle poll too. ``ix_outbox_claimable_pk`` holds only pending and leased tasks in pk
order, the claim's order; ``ix_outbox_unfinished_ordering`` holds the unfinished tasks of each
ordering key, so the "an earlier task of this case is unfinished" check reads only those, not
a long-lived case's history. The claim query names these states literally (a partial index is
used only where the planner can prove its predicate).

Plain CREATE INDEX: on a large live database build them beforehand with CREATE INDEX
CONCURRENTLY under the same names (the migration then finds them).

Revision ID: 0013_outbox_claim_indexes
Revises: 0012_payment_evidence
Create Date: 2026-12-02
"""
from __future__ import annotations

from alembic import op

revision = "0013_outbox_claim_indexes"
down_revision = "0012_payment_evidence"
branch_labels = None
depends_on = None

# (name, columns, partial WHERE): as in gateway/storage/tables/outbox.py
INDEXES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("ix_outbox_claimable_pk", ("pk",), "state IN ('pending', 'leased')"),
    ("ix_outbox_unfinished_ordering", ("ordering_key", "pk"),
     "state IN ('pending', 'leased', 'dead')"),
)


def upgrade() -> None:
    for name, columns, where in INDEXES:
        # Raw SQL (both dialects speak it) so an index built CONCURRENTLY beforehand is kept.
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON outbox ({', '.join(columns)}) "
                   f"WHERE {where}")


def downgrade() -> None:
    for name, _columns, _where in reversed(INDEXES):
        op.drop_index(name, table_name="outbox")
