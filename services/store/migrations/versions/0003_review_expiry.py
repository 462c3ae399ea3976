"""Holds for review: when a payment held for review expires
(``payments.review_expires_at``, set while its status is REVIEW), so that
``paystream review list`` can show it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE payments ADD COLUMN review_expires_at timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE payments DROP COLUMN review_expires_at")
