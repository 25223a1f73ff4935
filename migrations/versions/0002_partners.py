"""Partner adapters: delivery, inbox, tracking.

Revision ID: 0002_partners
Revises: 0001_core
Create Date: 2026-11-21
"""
from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0002_partners"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
