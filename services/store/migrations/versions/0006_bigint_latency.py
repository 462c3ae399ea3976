"""A payment's latency is a ``bigint`` of milliseconds: an ``integer`` column
refused a settlement more than 24.8 days after its request, and wedged the sink
on it (audit finding 12).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE payments ALTER COLUMN latency_ms TYPE bigint")


def downgrade() -> None:
    op.execute("ALTER TABLE payments ALTER COLUMN latency_ms TYPE integer")
