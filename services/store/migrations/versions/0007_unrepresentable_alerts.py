"""The chain listener raises an ``UNREPRESENTABLE`` alert for a log the engine
cannot represent (an amount beyond its range, a sequence naming a partition
that does not exist) and moves on past it; ``reconciliation_log`` keeps it.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KINDS = "'UNKNOWN_SEQUENCE', 'MISMATCH', 'ORPHANED', 'TIMEOUT', 'RESOLVED'"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE reconciliation_log DROP CONSTRAINT reconciliation_log_kind,
            ADD CONSTRAINT reconciliation_log_kind CHECK (kind IN ({KINDS}, 'UNREPRESENTABLE'))
        """
    )


def downgrade() -> None:
    # Fails while UNREPRESENTABLE rows exist: an alert is not deleted to downgrade.
    op.execute(
        f"""
        ALTER TABLE reconciliation_log DROP CONSTRAINT reconciliation_log_kind,
            ADD CONSTRAINT reconciliation_log_kind CHECK (kind IN ({KINDS}))
        """
    )
