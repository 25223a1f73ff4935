"""Payments, pension schedules and payout rails.

Revision ID: 0003_payments
Revises: 0002_partners
Create Date: 2026-11-21
"""
from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0003_payments"
down_revision = "0002_partners"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
