"""Admin lists fast at scale: an index for each admin list filter, ending in the list's keyset
order, so a page is read off an index whatever the table's size (issue 11 item 9).

Lists read newest first by pk (``pk < cursor``), or by (time, pk) when a time range is given;
each filter's index is ``(filter, pk)`` or ``(time, pk)``, partial where the rows wanted are
few among many (dead letters among finished outbox tasks: one partial index in pk order bounds a
page of them, filtered by kind or destination or not, by their number). Rare values are where an
index matters; a common one is found as fast in pk order, and the planner picks by the
statistics. ``ix_messages_correlation`` becomes
``(correlation_id, pk)``, which also serves every lookup the old one did.

These are plain CREATE INDEX: on a large live database build them beforehand with CREATE INDEX
CONCURRENTLY under the same names (the migration then finds them; see IF NOT EXISTS below).

Revision ID: 0010_admin_indexes
Revises: 0009_recon_resolution
Create Date: 2026-12-02
"""
from __future__ import annotations

from alembic import op

revision = "0010_admin_indexes"
down_revision = "0009_recon_resolution"
branch_labels = None
depends_on = None

_DEAD = "state = 'dead'"
_OPEN = "state IN ('pending', 'leased', 'dead')"

# (name, table, columns, partial WHERE or None)
INDEXES: tuple[tuple[str, str, tuple[str, ...], str | None], ...] = (
    ("ix_messages_correlation_pk", "messages", ("correlation_id", "pk"), None),
    ("ix_messages_partner_pk", "messages", ("partner_id", "pk"), None),
    ("ix_messages_type_pk", "messages", ("type", "pk"), None),
    ("ix_messages_received_at_pk", "messages", ("received_at", "pk"), None),
    ("ix_message_state_state_pk", "message_state", ("state", "message_pk"), None),
    ("ix_payments_state_pk", "payments", ("state", "pk"), None),
    ("ix_payments_rail_pk", "payments", ("rail", "pk"), None),
    ("ix_payments_partner_pk", "payments", ("partner_id", "pk"), None),
    ("ix_payments_created_at_pk", "payments", ("created_at", "pk"), None),
    ("ix_payment_discrepancies_payment_id_pk", "payment_discrepancies", ("payment_id", "pk"),
     None),
    ("ix_outbox_dead_pk", "outbox", ("pk",), _DEAD),
    ("ix_outbox_open_destination_kind", "outbox",
     ("destination", "kind", "state", "attempts", "created_at"), _OPEN),
    ("ix_admin_audit_outcome_pk", "admin_audit", ("outcome", "pk"), None),
    ("ix_admin_audit_at_pk", "admin_audit", ("at", "pk"), None),
    ("ix_admin_proposals_action_pk", "admin_proposals", ("action", "pk"), None),
)


def upgrade() -> None:
    for name, table, columns, where in INDEXES:
        # Raw SQL (both dialects speak it) so an index built CONCURRENTLY beforehand is kept.
        partial = f" WHERE {where}" if where else ""
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
                   f"({', '.join(columns)}){partial}")
    op.drop_index("ix_messages_correlation", table_name="messages")


def downgrade() -> None:
    op.create_index("ix_messages_correlation", "messages", ["correlation_id"])
    for name, table, _columns, _where in reversed(INDEXES):
        op.drop_index(name, table_name=table)
